"""Without OPENAI_API_KEY every example model still answers (MockChatGenerator), the agent with its tool."""

from __future__ import annotations

import pytest
from support import ServiceProcess, user

MODELS = ("chat", "chat_stream", "agent")


@pytest.mark.parametrize("model", MODELS)
def test_offline_non_stream(offline_service: ServiceProcess, model: str) -> None:
    completion = offline_service.client().chat.completions.create(model=model, messages=user("What time is it?"))
    choice = completion.choices[0]
    assert choice.message.content and choice.message.content.strip()
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_offline_stream(offline_service: ServiceProcess, model: str) -> None:
    stream = offline_service.client().chat.completions.create(
        model=model, messages=user("What time is it?"), stream=True
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    assert not any(chunk.choices[0].delta.tool_calls for chunk in chunks if chunk.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]

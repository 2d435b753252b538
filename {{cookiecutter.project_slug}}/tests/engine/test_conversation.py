"""Realistic request histories (as Open WebUI and SDK users send them) reach the LLM intact."""

from __future__ import annotations

import pytest

from support import ServiceProcess
from upstream import ScriptedUpstream, last_user_text

TEXT = "Noted."
HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_w1", "content": "Sunny, 21 C"},
    {"role": "assistant", "content": "It is sunny and 21 C in Paris."},
    {"role": "user", "content": "And tomorrow?"},
]


def test_chat_stream_forwards_tool_history(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Client-side tool calls and their results in the history survive the trip to the LLM."""
    upstream.script(text=TEXT)
    completion = service.client().chat.completions.create(model="chat_stream", messages=HISTORY)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == TEXT
    sent = upstream.requests[-1]["messages"]
    assert last_user_text(sent) == "And tomorrow?"
    tool_messages = [m for m in sent if m.get("role") == "tool"]
    assert [m.get("tool_call_id") for m in tool_messages] == ["call_w1"]
    assert "Sunny, 21 C" in str(tool_messages[0].get("content"))
    calls = [c for m in sent if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [("call_w1", "get_weather")]


@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
def test_content_parts_and_images(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Text given as content parts (with an image part the pipeline cannot use) is still understood."""
    upstream.script(text=TEXT)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this picture."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    completion = service.client().chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == TEXT
    assert "Describe this picture." in str(upstream.requests[-1]["messages"])


@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
def test_developer_role_and_multi_turn(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """`developer` messages (newer SDKs) and earlier turns do not break a request."""
    upstream.script(text=TEXT)
    messages = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    completion = service.client().chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == TEXT
    assert last_user_text(upstream.requests[-1]["messages"]) == "Bye"

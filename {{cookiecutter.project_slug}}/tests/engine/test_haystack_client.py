"""Haystack's own OpenAIChatGenerator as a client: a pipeline can call a service built from this template."""

from __future__ import annotations

import json

import pytest
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.components.generators.utils import print_streaming_chunk
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.utils import Secret

from support import CLIENT_TIMEOUT, ServiceProcess
from test_wrappers import events_tool_calls
from upstream import ScriptedUpstream

MODELS = ("chat", "chat_stream", "agent")
TEXT = "Answer from the scripted upstream."


def _generator(service: ServiceProcess, model: str) -> OpenAIChatGenerator:
    return OpenAIChatGenerator(
        api_key=Secret.from_token("x"),
        model=model,
        api_base_url=f"{service.base_url}/v1",
        timeout=CLIENT_TIMEOUT,
        max_retries=0,
    )


@pytest.mark.parametrize("model", MODELS)
def test_non_stream(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    upstream.script(text=TEXT)
    result = _generator(service, model).run(messages=[ChatMessage.from_user("Hi")])
    replies = result["replies"]
    assert len(replies) == 1
    assert replies[0].text == TEXT
    assert not replies[0].tool_calls
    assert replies[0].meta.get("finish_reason") == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_stream(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Haystack asserts at most one choice per chunk and reads finish_reason from the stream."""
    upstream.script(text=TEXT)
    chunks: list[StreamingChunk] = []
    result = _generator(service, model).run(messages=[ChatMessage.from_user("Hi")], streaming_callback=chunks.append)
    reply = result["replies"][0]
    assert reply.text == TEXT
    assert not reply.tool_calls
    assert reply.meta.get("finish_reason") == "stop"
    assert "".join(chunk.content for chunk in chunks) == TEXT
    assert [chunk.finish_reason for chunk in chunks if chunk.finish_reason] == ["stop"]


@pytest.mark.parametrize("model", MODELS)
def test_print_streaming_chunk_prints_the_answer_cleanly(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Haystack's own printer, as docs/getting-started.md uses it: it takes the chunk after the first one as the
    start of the text and prints its header there, so a first chunk with role and text printed the header inside
    the answer (`Answer [ASSISTANT]\nfrom...`)."""
    upstream.script(text=TEXT)
    _generator(service, model).run(messages=[ChatMessage.from_user("Hi")], streaming_callback=print_streaming_chunk)
    assert capsys.readouterr().out == f"[ASSISTANT]\n{TEXT}\n\n"


def test_stream_tool_calls(test_service: ServiceProcess) -> None:
    """Haystack starts a tool call when `function.name` is set: id and name must come once per call."""
    chunks: list[StreamingChunk] = []
    result = _generator(test_service, "events_tool_calls").run(
        messages=[ChatMessage.from_user("Hi")], streaming_callback=chunks.append
    )
    reply = result["replies"][0]
    calls = [(call.id, call.tool_name, call.arguments) for call in reply.tool_calls]
    expected = [(c["id"], c["name"], json.loads(c["arguments"])) for c in events_tool_calls.CALLS]
    assert calls == expected
    assert reply.text == events_tool_calls.TEXT
    assert reply.meta.get("finish_reason") == "tool_calls"


def test_non_stream_tool_calls(test_service: ServiceProcess) -> None:
    result = _generator(test_service, "events_tool_calls").run(messages=[ChatMessage.from_user("Hi")])
    reply = result["replies"][0]
    calls = [(call.id, call.tool_name, call.arguments) for call in reply.tool_calls]
    assert calls == [(c["id"], c["name"], json.loads(c["arguments"])) for c in events_tool_calls.CALLS]

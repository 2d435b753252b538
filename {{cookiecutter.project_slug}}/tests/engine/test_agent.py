"""The agent example: its internal tool calls run server-side and never reach the client."""

from __future__ import annotations

import json

import pytest

from support import ServiceProcess, stream_raw, user
from upstream import ScriptedUpstream

TOOL = "get_current_time"
CALL_ID = "call_time_1"
FINAL = "It is tea time."


def _script_tool_then_text(upstream: ScriptedUpstream) -> None:
    upstream.script(text="", tool_calls=[{"id": CALL_ID, "name": TOOL, "arguments": "{}"}], usage=(10, 5))
    upstream.script(text=FINAL, usage=(20, 6))


def _check_upstream_saw_tool_round_trip(upstream: ScriptedUpstream) -> None:
    requests = upstream.requests
    assert len(requests) == 2, [r.get("messages") for r in requests]
    tool_names = [tool["function"]["name"] for tool in requests[0].get("tools") or []]
    assert TOOL in tool_names
    second = requests[1]["messages"]
    assert any(
        m.get("role") == "assistant" and any(c.get("id") == CALL_ID for c in m.get("tool_calls") or []) for m in second
    ), second
    tool_results = [m for m in second if m.get("role") == "tool"]
    assert [m.get("tool_call_id") for m in tool_results] == [CALL_ID], second
    assert tool_results[0].get("content"), "the tool result should reach the model"


def test_agent_non_stream(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Only the final text; usage adds up both LLM calls."""
    _script_tool_then_text(upstream)
    completion = service.client().chat.completions.create(model="agent", messages=user("What time is it?"))
    choice = completion.choices[0]
    assert choice.message.content == FINAL
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (30, 11)
    _check_upstream_saw_tool_round_trip(upstream)


def test_agent_stream_sdk(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """No tool_calls in any chunk; one finish_reason, `stop`."""
    _script_tool_then_text(upstream)
    chunks = list(
        service.client().chat.completions.create(
            model="agent", messages=user("What time is it?"), stream=True, stream_options={"include_usage": True}
        )
    )
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert not any(delta.tool_calls for delta in deltas)
    assert "".join(delta.content or "" for delta in deltas) == FINAL
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (30, 11)
    _check_upstream_saw_tool_round_trip(upstream)


def test_agent_stream_raw_has_no_tool_traces(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Raw bytes: no tool_calls key, no Haystack-only finish reason, no tool name leaking as a call."""
    _script_tool_then_text(upstream)
    with service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": "agent", "messages": user("time?"), "stream": True})
    for chunk in sse.chunks():
        for choice in chunk["choices"]:
            assert "tool_calls" not in choice["delta"], chunk
            assert choice["finish_reason"] in (None, "stop"), chunk
    assert "tool_call_results" not in sse.raw
    assert sse.data[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
def test_agent_helper_final_message(service: ServiceProcess, upstream: ScriptedUpstream, stream: bool) -> None:
    """Through the SDK stream helper (or plain create), the final message has no tool calls."""
    _script_tool_then_text(upstream)
    client = service.client()
    if stream:
        with client.chat.completions.stream(model="agent", messages=user("What time is it?")) as events:
            final = events.get_final_completion()
    else:
        final = client.chat.completions.create(model="agent", messages=user("What time is it?"))
    assert final.choices[0].message.content == FINAL
    assert not final.choices[0].message.tool_calls
    json.dumps(final.model_dump())

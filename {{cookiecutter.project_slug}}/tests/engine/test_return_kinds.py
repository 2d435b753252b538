"""Whatever a wrapper returns (str, generators, StreamingChunks, events) works streamed and not."""

from __future__ import annotations

import pytest

from support import ServiceProcess, stream_raw, user
from test_wrappers import events_tool_calls

TEXT_WRAPPERS = {
    "plain_sync": "plain sync answer",
    "sync_gen": "sync gen answer",
    "async_gen": "async gen answer",
    "chunks": "chunk answer",
}


@pytest.mark.parametrize("model", sorted(TEXT_WRAPPERS))
def test_text_non_stream(test_service: ServiceProcess, model: str) -> None:
    """`stream: false` drains the wrapper's output into one message."""
    completion = test_service.client().chat.completions.create(model=model, messages=user("hi"))
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == TEXT_WRAPPERS[model]
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is None, "text alone has no token count: none is reported, rather than zeros"


@pytest.mark.parametrize("model", sorted(TEXT_WRAPPERS))
def test_text_stream(test_service: ServiceProcess, model: str) -> None:
    """Streamed: same text, role once, a single `stop`; no usage chunk, though asked for: nothing was counted."""
    stream = test_service.client().chat.completions.create(
        model=model, messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    deltas = [chunk.choices[0].delta for chunk in chunks]
    assert deltas[0].role == "assistant"
    assert all(delta.role is None for delta in deltas[1:])
    assert "".join(delta.content or "" for delta in deltas) == TEXT_WRAPPERS[model]
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_chunks_reasoning_and_internal_finish(test_service: ServiceProcess) -> None:
    """StreamingChunk.reasoning becomes reasoning_content; Haystack's `tool_call_results` never leaks."""
    with test_service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": "chunks", "messages": user("hi"), "stream": True})
    assert "tool_call_results" not in sse.raw
    deltas = [chunk["choices"][0]["delta"] for chunk in sse.chunks()]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "chunk reasoning"
    assert "".join(d.get("content") or "" for d in deltas) == "chunk answer"
    finishes = [chunk["choices"][0]["finish_reason"] for chunk in sse.chunks() if chunk["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]


def test_chunks_non_stream_reasoning(test_service: ServiceProcess) -> None:
    """Drained: the answer text is exact and the internal finish reason is not reported."""
    with test_service.http() as http:
        body = http.post("/v1/chat/completions", json={"model": "chunks", "messages": user("hi")}).json()
    choice = body["choices"][0]
    assert choice["message"]["content"] == "chunk answer"
    assert choice["finish_reason"] == "stop"


def _expected_calls() -> list[tuple[str, str, str]]:
    return [(c["id"], c["name"], c["arguments"]) for c in events_tool_calls.CALLS]


def test_tool_calls_non_stream(test_service: ServiceProcess) -> None:
    """Tool-call events become message.tool_calls, arguments concatenated, finish_reason tool_calls, usage kept."""
    completion = test_service.client().chat.completions.create(model="events_tool_calls", messages=user("hi"))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == events_tool_calls.TEXT
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == _expected_calls()
    assert all(c.type == "function" for c in choice.message.tool_calls or [])
    assert completion.usage is not None
    prompt, completion_tokens = events_tool_calls.USAGE
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, completion_tokens)
    assert completion.usage.total_tokens == prompt + completion_tokens


def test_tool_calls_stream_helper(test_service: ServiceProcess) -> None:
    """The SDK helper concatenates deltas: id and name must come once, arguments in pieces."""
    with test_service.client().chat.completions.stream(model="events_tool_calls", messages=user("hi")) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == events_tool_calls.TEXT
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == _expected_calls()


def test_tool_calls_stream_raw_shape(test_service: ServiceProcess) -> None:
    """First delta of a call: index, id, type, name, empty arguments; later ones: index and arguments only."""
    body = {
        "model": "events_tool_calls",
        "messages": user("hi"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with test_service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    seen: set[int] = set()
    arguments: dict[int, str] = {}
    for chunk in sse.chunks():
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                index = call["index"]
                if index not in seen:
                    seen.add(index)
                    assert call["type"] == "function"
                    assert call["id"] == events_tool_calls.CALLS[index]["id"]
                    assert call["function"]["name"] == events_tool_calls.CALLS[index]["name"]
                    assert isinstance(call["function"].get("arguments"), str)
                else:
                    assert set(call) == {"index", "function"}, call
                    assert set(call["function"]) == {"arguments"}, call
                arguments[index] = arguments.get(index, "") + call["function"].get("arguments", "")
    assert seen == {0, 1}
    assert [arguments[i] for i in (0, 1)] == [c["arguments"] for c in events_tool_calls.CALLS]
    finishes = [
        c["choices"][0]["finish_reason"] for c in sse.chunks() if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["tool_calls"]
    last = sse.chunks()[-1]
    assert last["choices"] == []
    prompt, completion_tokens = events_tool_calls.USAGE
    assert last["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }

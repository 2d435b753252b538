"""The scripted upstream itself, checked with the official SDK: every other test trusts it."""

from __future__ import annotations

import httpx
import openai
import pytest

from support import CLIENT_TIMEOUT, parse_sse, user, wait_until
from upstream import ScriptedUpstream


@pytest.fixture
def llm(upstream: ScriptedUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream.base_url}/v1", api_key="k", max_retries=0, timeout=CLIENT_TIMEOUT)


def test_default_echo_non_stream(llm: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """Without a script the answer is derived from the last user message, so multi-model tests can tell calls apart."""
    completion = llm.chat.completions.create(model="m", messages=user("ping"))
    assert completion.choices[0].message.content == "Echo: ping"
    assert completion.choices[0].finish_reason == "stop"
    assert upstream.requests[-1]["messages"] == user("ping")


def test_scripted_stream_with_reasoning_and_usage(llm: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """Role first, reasoning_content and content pieces, one finish_reason, a choices-less usage chunk."""
    upstream.script(text="Hello there friend", reasoning="hmm let me see", usage=(3, 4))
    chunks = list(
        llm.chat.completions.create(model="m", messages=user("x"), stream=True, stream_options={"include_usage": True})
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert all(d.role is None for d in deltas[1:])
    assert "".join(d.content or "" for d in deltas) == "Hello there friend"
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "hmm let me see"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    # The upstream's thread marks the stream completed just after its last write: the client can get there first.
    assert wait_until(lambda: upstream.streams[-1].completed)


def test_scripted_tool_calls_via_stream_helper(llm: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """Tool call deltas are shaped so the SDK's accumulating helper rebuilds them exactly."""
    upstream.script(text="", tool_calls=[{"id": "call_1", "name": "get_current_time", "arguments": '{"tz": "UTC"}'}])
    with llm.chat.completions.stream(model="m", messages=user("time?")) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "get_current_time", '{"tz": "UTC"}')
    assert final.choices[0].finish_reason == "tool_calls"


def test_script_queue_then_default(llm: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """Queued scripts answer in order, then the default takes over."""
    upstream.script(text="first")
    upstream.script(text="second")
    answers = [llm.chat.completions.create(model="m", messages=user("q")).choices[0].message.content for _ in range(3)]
    assert answers == ["first", "second", "Echo: q"]


def test_raw_sse_format(upstream: ScriptedUpstream) -> None:
    """Each event is one data line; the body ends with [DONE]."""
    upstream.script(text="a b c")
    with (
        httpx.Client(timeout=CLIENT_TIMEOUT, trust_env=False) as http,
        http.stream(
            "POST", f"{upstream.base_url}/chat/completions", json={"model": "m", "messages": user("x"), "stream": True}
        ) as response,
    ):
        sse = parse_sse(response.read().decode())
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse.data[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks()) == "a b c"


def test_error_script(llm: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """A scripted status turns into an OpenAI error envelope."""
    upstream.script(status=400, error_message="nope")
    with pytest.raises(openai.BadRequestError, match="nope"):
        llm.chat.completions.create(model="m", messages=user("x"))


def test_notices_client_disconnect(upstream: ScriptedUpstream) -> None:
    """Closing the response mid-stream is seen by the upstream, which then stops writing."""
    upstream.script(text="tok " * 300, token_delay=0.02)
    body = {"model": "m", "messages": user("x"), "stream": True}
    url = f"{upstream.base_url}/v1/chat/completions"
    with httpx.Client(timeout=CLIENT_TIMEOUT, trust_env=False) as http, http.stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if '"content": "tok "' in line:
                break
    record = upstream.streams[-1]
    assert wait_until(lambda: record.disconnected, timeout=10)
    assert not record.completed
    assert record.tokens_sent < record.planned_chunks


def test_keep_alive_serves_a_connection_until_a_stream_is_cut() -> None:
    """With keep_alive, requests share one connection (streamed or not); a client leaving mid-stream is still seen."""
    server = ScriptedUpstream(keep_alive=True).start()
    url = f"{server.base_url}/v1/chat/completions"

    def ask(http: httpx.Client, question: str, stream: bool = False) -> str:
        body = {"model": "m", "messages": user(question), "stream": stream}
        response = http.post(url, json=body)
        if not stream:
            return response.json()["choices"][0]["message"]["content"]
        return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in parse_sse(response.text).chunks())

    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT, trust_env=False) as http:
            assert [ask(http, "one"), ask(http, "two", stream=True), ask(http, "three")] == [
                "Echo: one",
                "Echo: two",
                "Echo: three",
            ]
            assert server.connections == 1
            assert server.streams[-1].completed

            server.script(text="tok " * 300, token_delay=0.02)
            with http.stream("POST", url, json={"model": "m", "messages": user("four"), "stream": True}) as response:
                next(line for line in response.iter_lines() if '"content": "tok "' in line)
            record = server.streams[-1]
            assert wait_until(lambda: record.disconnected, timeout=10)
            assert record.tokens_sent < record.planned_chunks
            assert ask(http, "five") == "Echo: five"
            assert server.connections == 2  # the cut stream's connection could not be reused
    finally:
        server.stop()


def test_without_keep_alive_every_request_has_its_own_connection(
    llm: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    """The default the tests rely on: one request per connection, so a hang-up belongs to exactly one call."""
    for question in ("one", "two"):
        llm.chat.completions.create(model="m", messages=user(question))
    assert upstream.connections == 2

"""Chat Completions through the official SDK, for each example model, against the scripted upstream."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import ServiceProcess, assert_error, stream_raw, user
from upstream import ScriptedUpstream, last_user_text

MODELS = ("chat", "chat_stream", "agent")
TEXT = "Hello there, general Kenobi."
USAGE = (11, 7)


def _usage_tuple(usage: object) -> tuple[int, int, int]:
    return (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", MODELS)
def test_non_stream(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """The answer is the upstream's text, with its usage, as one chat.completion."""
    upstream.script(text=TEXT, usage=USAGE)
    completion = service.client().chat.completions.create(model=model, messages=user("Hi there"))
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == model
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == TEXT
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert _usage_tuple(completion.usage) == (USAGE[0], USAGE[1], USAGE[0] + USAGE[1])
    assert len(upstream.requests) == 1
    assert upstream.requests[0]["model"] == "scripted-model"
    assert last_user_text(upstream.requests[0]["messages"]) == "Hi there"


@pytest.mark.parametrize("model", MODELS)
def test_stream_chunks(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Role in the first delta only, and alone there (as OpenAI sends it), one finish_reason after all content,
    then a choices-less usage chunk."""
    upstream.script(text=TEXT, usage=USAGE)
    chunks = list(
        service.client().chat.completions.create(
            model=model, messages=user("Hi there"), stream=True, stream_options={"include_usage": True}
        )
    )
    assert len({chunk.id for chunk in chunks}) == 1
    assert len({chunk.created for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.model == model for chunk in chunks)
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert all(len(chunk.choices) == 1 for chunk in with_choices)
    deltas = [chunk.choices[0].delta for chunk in with_choices]
    assert deltas[0].role == "assistant"
    assert (deltas[0].content, deltas[0].refusal) == ("", None), "the first delta carries the role alone"
    assert [delta.role for delta in deltas[1:]] == [None] * (len(deltas) - 1)
    assert "".join(delta.content or "" for delta in deltas) == TEXT
    assert not any(delta.tool_calls for delta in deltas)
    finishes = [chunk.choices[0].finish_reason for chunk in with_choices]
    assert [reason for reason in finishes if reason is not None] == ["stop"]
    assert finishes[-1] == "stop", "finish_reason must come after all content"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert _usage_tuple(last.usage) == (USAGE[0], USAGE[1], USAGE[0] + USAGE[1])
    assert all(chunk.usage is None for chunk in chunks[:-1])


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """The SDK's accumulating helper rebuilds the message: a repeated role would read 'assistantassistant'."""
    upstream.script(text=TEXT)
    with service.client().chat.completions.stream(model=model, messages=user("Hi there")) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.role == "assistant"
    assert message.content == TEXT
    assert not message.tool_calls
    assert final.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_stream_raw_sse(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """SSE headers, one-line `data:` events, and `[DONE]` as the very last event."""
    upstream.script(text=TEXT)
    with service.http() as http:
        response, sse = stream_raw(
            http, "/v1/chat/completions", {"model": model, "messages": user("Hi there"), "stream": True}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers.get("cache-control") == "no-cache"
    assert response.headers.get("x-accel-buffering") == "no"
    assert sse.data, sse.raw
    assert sse.data[-1] == "[DONE]"
    assert sse.data.count("[DONE]") == 1
    for payload in sse.data[:-1]:
        assert payload.strip(), "an empty data event breaks the SDK"
        json.loads(payload)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks() if c["choices"]) == TEXT


@pytest.mark.parametrize("model", MODELS)
def test_default_echo_per_model(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Without a script each call gets an answer derived from its own question."""
    client = service.client()
    for question in (f"first question for {model}", f"second question for {model}"):
        completion = client.chat.completions.create(model=model, messages=user(question))
        assert completion.choices[0].message.content == f"Echo: {question}"


def test_unknown_fields_ignored(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open WebUI and Codex send many fields the service does not use: they must not be rejected."""
    upstream.script(text=TEXT)
    completion = service.client().chat.completions.create(
        model="chat",
        messages=[{"role": "system", "content": "Be brief."}, *user("Hi there")],
        temperature=0.3,
        top_p=0.9,
        n=1,
        user="someone",
        metadata={"k": "v"},
        extra_body={"some_future_field": {"nested": True}, "keep_alive": "5m"},
    )
    assert completion.choices[0].message.content == TEXT


def test_stream_without_usage_option(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Without stream_options no chunk is a choices-less usage chunk."""
    upstream.script(text=TEXT, usage=USAGE)
    chunks = list(service.client().chat.completions.create(model="chat_stream", messages=user("Hi"), stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == TEXT


UNICODE_TEXT = "Grüße aus Köln 👋 — naïve café, 東京."


@pytest.mark.parametrize("model", ["chat", "chat_stream"])
def test_unicode_round_trip(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Non-ASCII text (multi-byte UTF-8, emoji) arrives intact, streamed and not."""
    upstream.script(text=UNICODE_TEXT)
    upstream.script(text=UNICODE_TEXT)
    client = service.client()
    completion = client.chat.completions.create(model=model, messages=user("Grüß dich"))
    assert completion.choices[0].message.content == UNICODE_TEXT
    chunks = list(client.chat.completions.create(model=model, messages=user("Grüß dich"), stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == UNICODE_TEXT
    assert last_user_text(upstream.requests[-1]["messages"]) == "Grüß dich"


def test_concurrent_requests_to_all_models(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Requests in flight together each get their own answer (no cross-talk between runs or models)."""
    client = service.client()

    def ask(job: tuple[str, bool, int]) -> tuple[str, str]:
        model, stream, number = job
        question = f"question {number} for {model}"
        if stream:
            chunks = client.chat.completions.create(model=model, messages=user(question), stream=True)
            answer = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        else:
            answer = client.chat.completions.create(model=model, messages=user(question)).choices[0].message.content
        return question, answer or ""

    jobs = [(model, stream, number) for number, model in enumerate(MODELS * 2) for stream in (False, True)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(ask, jobs))
    for question, answer in results:
        assert answer == f"Echo: {question}"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_refusal_becomes_a_400_with_its_reason(
    service: ServiceProcess, upstream: ScriptedUpstream, stream: bool
) -> None:
    """An LLM that refuses the call gives the client a 400 with the server's reason (before any byte: plain JSON),
    never a key or an address the message held."""
    reason = "context length exceeded at http://10.0.0.7:8000/v1 for key sk-upstream-secret"
    upstream.script(status=400, error_message=reason)
    with service.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": "chat_stream", "messages": user("hi"), "stream": stream}
        )
    error = assert_error(response, 400, err_type="invalid_request_error", code="upstream_rejected")
    assert "context length exceeded" in error["message"]
    assert "sk-upstream-secret" not in response.text
    assert "10.0.0.7" not in response.text
    assert response.headers["x-should-retry"] == "false"
    upstream.script(text=TEXT)
    assert (
        service.client().chat.completions.create(model="chat", messages=user("hi")).choices[0].message.content == TEXT
    )


MIDSTREAM_FAILURES = [{"error_event_after": 2}, {"drop_after": 2}]
STREAMING_MODELS = [
    ("service", "chat_stream"),
    ("test_service", "sync_pipeline_stream"),
    ("test_service", "sync_pipeline_stream_stepped"),
    ("test_service", "sync_pipeline_stream_threaded"),
    ("test_service", "sync_pipeline_stream_pulled"),
]


@pytest.mark.parametrize("failure", MIDSTREAM_FAILURES, ids=["error_event", "dropped_connection"])
@pytest.mark.parametrize(
    ("fixture", "model"), STREAMING_MODELS, ids=["async", "sync", "sync_stepped", "sync_threaded", "sync_pulled"]
)
def test_upstream_failing_midstream_ends_in_an_error_event(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, fixture: str, model: str, failure: dict[str, int]
) -> None:
    """What streamed before the failure arrives, then an error event and no [DONE]: never a clean-looking cut."""
    service: ServiceProcess = request.getfixturevalue(fixture)
    upstream.script(text=TEXT, error_message="upstream broke: key sk-upstream-secret", **failure)
    with service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": model, "messages": user("hi"), "stream": True})
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in sse.chunks() if chunk["choices"])
    assert text and TEXT.startswith(text) and text != TEXT, text
    errors = [event["error"] for event in sse.json_events() if "error" in event]
    assert len(errors) == 1 and errors[0]["type"] == "server_error", sse.raw[-500:]
    assert "[DONE]" not in sse.data
    assert "sk-upstream-secret" not in sse.raw
    upstream.script(text=TEXT)
    reply = service.client().chat.completions.create(model=model, messages=user("again"))
    assert reply.choices[0].message.content == TEXT, "the service must serve the next request normally"

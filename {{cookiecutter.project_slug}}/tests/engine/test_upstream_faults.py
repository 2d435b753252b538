"""When the LLM server behind a wrapper misbehaves, the client gets an error it can act on, soon.

- rate limited (429): 429 with the server's Retry-After, passed on at once unless the wait is short;
- refused credentials (401): 502 saying so, and one loud line in the log;
- stalled: every run has a deadline (FIRST_OUTPUT_TIMEOUT_SECONDS, RUN_TIMEOUT_SECONDS), then a 504 or,
  once streaming began, the protocol's in-stream error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from support import ServiceProcess, assert_error, base_env, user, wait_until
from upstream import ScriptedUpstream

ENDLESS = 10**9


@pytest.fixture(scope="module")
def strict_service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The examples with short deadlines: 2 s to the first output, 4 s in all."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        FIRST_OUTPUT_TIMEOUT_SECONDS="2",
        RUN_TIMEOUT_SECONDS="4",
        KEEPALIVE_SECONDS="1",
    )
    service = ServiceProcess(name="strict_service", workdir=tmp_path_factory.mktemp("strict"), env=env).start()
    yield service
    service.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_a_long_rate_limit_goes_to_the_client_at_once(
    strict_service: ServiceProcess, upstream: ScriptedUpstream, stream: bool
) -> None:
    """Retry-After: 20 is not waited out inside the service (the SDK would, on each of its retries)."""
    upstream.script(status=429, error_message="slow down", headers={"Retry-After": "20"})
    with strict_service.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": "chat_stream", "messages": user("hi"), "stream": stream}
        )
    assert_error(response, 429, err_type="rate_limit_error", code="rate_limit_exceeded")
    assert response.headers["retry-after"] == "20"
    assert response.headers["x-should-retry"] == "true"
    assert len(upstream.requests) == 1, "the service retried a call whose server asked for a long wait"


def test_the_sdk_sees_a_rate_limit_error(strict_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(status=429, headers={"Retry-After": "20"})
    with pytest.raises(openai.RateLimitError):
        strict_service.client().responses.create(model="chat_stream", input="hi")


def test_a_short_rate_limit_is_retried_once_inside(strict_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(status=429, headers={"Retry-After": "0.2"})
    upstream.script(text="after the wait")
    completion = strict_service.client().chat.completions.create(model="chat_stream", messages=user("hi"))
    assert completion.choices[0].message.content == "after the wait"
    assert len(upstream.requests) == 2


def test_a_failing_server_is_retried_once_then_a_502(
    strict_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script(status=500)
    upstream.script(status=503)
    with strict_service.http() as http:
        response = http.post("/v1/chat/completions", json={"model": "chat_stream", "messages": user("hi")})
    assert_error(response, 502, err_type="server_error", code="upstream_error")
    assert len(upstream.requests) == 2


def test_refused_credentials_are_a_502_logged_once(strict_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    for _ in range(2):
        upstream.script(status=401, error_message="Incorrect API key provided: test-key")
        with strict_service.http() as http:
            response = http.post("/v1/responses", json={"model": "chat_stream", "input": "hi"})
        error = assert_error(response, 502, code="upstream_authentication_failed")
        assert "OPENAI_API_KEY" in error["message"]
        assert "test-key" not in response.text
    assert len(upstream.requests) == 2, "a 401 is not worth a retry"
    assert strict_service.log_tail().count("refused the service's credentials") == 1


def test_an_upstream_that_sends_nothing_is_a_504(strict_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="too late", first_token_delay=25)
    with strict_service.http() as http:
        response = http.post("/v1/responses", json={"model": "chat_stream", "input": "hi"})
    error = assert_error(response, 504, code="timeout")
    assert "FIRST_OUTPUT_TIMEOUT_SECONDS" in error["message"]


def test_a_stream_that_gets_nothing_fails_in_stream(strict_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The stream started after KEEPALIVE_SECONDS (1 s, with a ping): the deadline ends it with `response.failed`."""
    upstream.script(text="too late", first_token_delay=25)
    body = {"model": "chat_stream", "input": "hi", "stream": True}
    with strict_service.http() as http, http.stream("POST", "/v1/responses", json=body) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert ": ping" in lines
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "timeout"
    assert "FIRST_OUTPUT_TIMEOUT_SECONDS" in events[-1]["response"]["error"]["message"]


def test_a_stream_past_its_deadline_ends_with_the_in_stream_error(
    strict_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.1)
    body = {"model": "chat_stream", "messages": user("hi"), "stream": True}
    with strict_service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    # the first chunk names the role only; the text follows
    texts = [e["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert texts[0] == "" and texts[1].startswith("tick"), events[:3]
    assert events[-1]["error"]["code"] == "timeout", events[-1]
    assert "RUN_TIMEOUT_SECONDS" in events[-1]["error"]["message"]
    # the upstream sees the hang-up a moment after the client's stream ends: a bounded wait, not a race
    assert wait_until(lambda: upstream.streams[-1].disconnected), "the run kept reading its LLM past the deadline"

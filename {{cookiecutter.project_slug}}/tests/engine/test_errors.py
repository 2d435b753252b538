"""Every failure is OpenAI's JSON envelope with the right status, and the server stays up after it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from quart import Quart

from support import TEST_MAX_BODY_BYTES, ServiceProcess, assert_error, iter_sse_lines, user, wait_until

LEAKS = ("secret internal detail", "Traceback", "RuntimeError(")


def _assert_alive(service: ServiceProcess) -> None:
    """The next request after a failure is answered normally."""
    completion = service.client().chat.completions.create(model="plain_sync", messages=user("still there?"))
    assert completion.choices[0].message.content == "plain sync answer"


def _post(service: ServiceProcess, path: str, content: bytes | str, **headers: str) -> httpx.Response:
    with service.http() as http:
        return http.post(path, content=content, headers={"Content-Type": "application/json", **headers})


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_stalled_request_body_times_out(app: Quart, path: str) -> None:
    """In process, with a short BODY_TIMEOUT: a JSON body that stops halfway gets 408 instead of a wait forever."""
    app.config["BODY_TIMEOUT"] = 0.5
    body = json.dumps({"model": "plain_sync", "messages": user("x"), "input": "x"}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    async with (
        asyncio.timeout(30),
        app.test_client().request(path, method="POST", headers=headers) as connection,
    ):
        await connection.send(body[: len(body) // 2])
        reply = json.loads(await connection.receive())
        assert connection.status_code == 408
    assert reply["error"]["code"] == "request_timeout"
    assert reply["error"]["message"] == "The request body stopped arriving for 0.5 s."


def test_bad_json(test_service: ServiceProcess) -> None:
    assert_error(_post(test_service, "/v1/chat/completions", b'{"model": "plain_sync", "messages": ['), 400)
    _assert_alive(test_service)


def test_body_not_an_object(test_service: ServiceProcess) -> None:
    assert_error(_post(test_service, "/v1/chat/completions", b'["plain_sync"]'), 400)


@pytest.mark.parametrize("model", [None, "", 123, ["plain_sync"]])
def test_missing_or_bad_model(test_service: ServiceProcess, model: object) -> None:
    """`model` absent, empty or not a string: 400 naming the field."""
    body = json.dumps({"messages": user("hi")} if model is None else {"model": model, "messages": user("hi")})
    assert_error(
        _post(test_service, "/v1/chat/completions", body), 400, err_type="invalid_request_error", param="model"
    )
    _assert_alive(test_service)


def test_missing_messages(test_service: ServiceProcess) -> None:
    body = json.dumps({"model": "plain_sync"})
    response = _post(test_service, "/v1/chat/completions", body)
    assert_error(response, 400, err_type="invalid_request_error", param="messages")


def test_messages_not_a_list(test_service: ServiceProcess) -> None:
    body = json.dumps({"model": "plain_sync", "messages": "hello"})
    assert_error(_post(test_service, "/v1/chat/completions", body), 400, param="messages")


def test_sdk_maps_400_to_bad_request(test_service: ServiceProcess) -> None:
    """What a user of the SDK sees for a bad field."""
    with pytest.raises(openai.BadRequestError) as caught:
        test_service.client().chat.completions.create(model="plain_sync", messages="hello")  # type: ignore[arg-type]
    assert caught.value.status_code == 400


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_unknown_model(test_service: ServiceProcess, path: str) -> None:
    body = json.dumps({"model": "no-such-model", "messages": user("hi")})
    assert_error(_post(test_service, path, body), 404, code="model_not_found")


def test_unknown_model_in_path(test_service: ServiceProcess) -> None:
    body = json.dumps({"messages": user("hi")})
    assert_error(_post(test_service, "/no-such-model/chat", body), 404, code="model_not_found")


def test_unknown_model_sdk(test_service: ServiceProcess) -> None:
    with pytest.raises(openai.NotFoundError):
        test_service.client().chat.completions.create(model="no-such-model", messages=user("hi"))


@pytest.mark.parametrize("stream", [False, True])
def test_responses_only_model_is_a_400_for_chat(test_service: ServiceProcess, stream: bool) -> None:
    """The model exists but does not serve Chat Completions: the client's mistake, named as OpenAI names it.

    A 5xx would reach users of every client as a server error (and some retry it); the SDK raises
    BadRequestError, whose message says which API the model serves.
    """
    body = json.dumps({"model": "responses_only", "messages": user("hi"), "stream": stream})
    response = _post(test_service, "/v1/chat/completions", body)
    error = assert_error(response, 400, err_type="invalid_request_error", param="model", code="unsupported_api")
    assert "responses_only" in error["message"] and "Responses (/v1/responses)" in error["message"], error
    assert response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.BadRequestError):
        test_service.client().chat.completions.create(model="responses_only", messages=user("hi"), stream=stream)
    _assert_alive(test_service)


def test_body_too_large(test_service: ServiceProcess) -> None:
    """Over MAX_BODY_BYTES: 413 as JSON, not Quart's HTML page."""
    big = "x" * (TEST_MAX_BODY_BYTES + 10_000)
    body = json.dumps({"model": "plain_sync", "messages": user(big)})
    assert_error(_post(test_service, "/v1/chat/completions", body), 413)
    _assert_alive(test_service)


def test_body_just_under_limit_is_accepted(test_service: ServiceProcess) -> None:
    """The limit is the configured one, not something smaller."""
    text = "x" * (TEST_MAX_BODY_BYTES - 1_000)
    body = json.dumps({"model": "plain_sync", "messages": user(text)})
    response = _post(test_service, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize("method,path", [("GET", "/no/such/route"), ("POST", "/v1/nothing-here")])
def test_unknown_route(test_service: ServiceProcess, method: str, path: str) -> None:
    with test_service.http() as http:
        response = http.request(method, path)
    assert_error(response, 404)


@pytest.mark.parametrize("method,path", [("GET", "/v1/chat/completions"), ("DELETE", "/v1/models")])
def test_wrong_method(test_service: ServiceProcess, method: str, path: str) -> None:
    with test_service.http() as http:
        response = http.request(method, path)
    assert_error(response, 405)


def _calls(state_dir: Path) -> int:
    path = state_dir / "fails_before_calls.count"
    return int(path.read_text()) if path.exists() else 0


@pytest.mark.parametrize("stream", [False, True])
def test_fails_before_output(test_service: ServiceProcess, wrapper_state_dir: Path, stream: bool) -> None:
    """500 server_error as JSON (even when streaming was asked), no retry, no internals."""
    body = json.dumps({"model": "fails_before", "messages": user("hi"), "stream": stream})
    response = _post(test_service, "/v1/chat/completions", body)
    assert_error(response, 500, err_type="server_error")
    assert response.headers.get("x-should-retry") == "false"
    for leak in LEAKS:
        assert leak not in response.text
    _assert_alive(test_service)


def test_fails_before_runs_once_with_sdk_retries(test_service: ServiceProcess, wrapper_state_dir: Path) -> None:
    """With the SDK's default two retries the pipeline still runs once: x-should-retry is honoured."""
    before = _calls(wrapper_state_dir)
    client = test_service.client(max_retries=2)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fails_before", messages=user("hi"))
    assert _calls(wrapper_state_dir) == before + 1


def test_fails_midstream_stream_raw(test_service: ServiceProcess) -> None:
    """After the first byte the error travels in the stream as `data: {"error": {...}}`, and the stream ends."""
    body = {"model": "fails_midstream", "messages": user("hi"), "stream": True}
    with test_service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        lines = list(iter_sse_lines(response))
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    errors = [json.loads(item) for item in data if item != "[DONE]" and "error" in json.loads(item)]
    assert len(errors) == 1, lines
    assert set(errors[0]) == {"error"}
    assert set(errors[0]["error"]) == {"message", "type", "param", "code"}
    assert errors[0]["error"]["message"]
    assert data[-1] != "[DONE]" and "error" in json.loads(data[-1]), "the error is the last event"
    content = "".join(
        (json.loads(item)["choices"][0]["delta"].get("content") or "")
        for item in data
        if "choices" in json.loads(item) and json.loads(item)["choices"]
    )
    assert content == "partial answer"
    _assert_alive(test_service)


def test_fails_midstream_error_hides_internals(test_service: ServiceProcess) -> None:
    """The in-stream error names no exception text: it may hold secrets."""
    body = {"model": "fails_midstream", "messages": user("hi"), "stream": True}
    with test_service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = response.read().decode()
    for leak in LEAKS:
        assert leak not in raw


def test_fails_midstream_sdk_raises(test_service: ServiceProcess) -> None:
    """The SDK raises APIError while iterating, after the text that did arrive."""
    received: list[str] = []
    stream = test_service.client().chat.completions.create(model="fails_midstream", messages=user("hi"), stream=True)
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "partial answer"
    _assert_alive(test_service)


def test_fails_midstream_non_stream(test_service: ServiceProcess) -> None:
    """Without streaming the whole answer fails: 500 JSON, no partial text presented as a success."""
    body = json.dumps({"model": "fails_midstream", "messages": user("hi")})
    response = _post(test_service, "/v1/chat/completions", body)
    assert_error(response, 500, err_type="server_error")
    assert response.headers.get("x-should-retry") == "false"
    for leak in LEAKS:
        assert leak not in response.text
    _assert_alive(test_service)


def test_server_survives_error_burst(test_service: ServiceProcess) -> None:
    """A run of failures leaves nothing stuck: the pool and loop still answer."""
    for _ in range(5):
        _post(test_service, "/v1/chat/completions", json.dumps({"model": "fails_before", "messages": user("x")}))
    assert wait_until(lambda: test_service.process is not None and test_service.process.poll() is None, timeout=1)
    _assert_alive(test_service)


def test_stream_not_boolean(test_service: ServiceProcess) -> None:
    """`stream` is a boolean in OpenAI's API; anything else is a 400 naming the field."""
    body = json.dumps({"model": "plain_sync", "messages": user("hi"), "stream": "yes"})
    assert_error(_post(test_service, "/v1/chat/completions", body), 400, param="stream")


def test_body_too_large_chunked(test_service: ServiceProcess) -> None:
    """A body sent without Content-Length (chunked) is held to the same limit."""
    piece = b"x" * 10_000

    def body() -> Iterator[bytes]:
        yield b'{"model": "plain_sync", "messages": [{"role": "user", "content": "'
        for _ in range(TEST_MAX_BODY_BYTES // len(piece) + 2):
            yield piece
        yield b'"}]}'

    with test_service.http() as http:
        response = http.post("/v1/chat/completions", content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413)
    _assert_alive(test_service)

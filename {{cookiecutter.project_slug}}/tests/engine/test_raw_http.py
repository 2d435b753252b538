"""What a curl user does: plain HTTP without the SDK, the path without /v1, and the model in the URL."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from support import CLIENT_TIMEOUT, ServiceProcess, parse_sse, stream_raw, user
from upstream import ScriptedUpstream

TEXT = "Plain HTTP works."


def test_chat_completions_without_v1(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text=TEXT)
    with service.http() as http:
        response = http.post("/chat/completions", json={"model": "chat", "messages": user("hi")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == TEXT
    assert body["choices"][0]["finish_reason"] == "stop"


def test_model_in_path_non_stream(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """POST /<model>/chat needs no `model` in the body."""
    upstream.script(text=TEXT)
    with service.http() as http:
        response = http.post("/chat_stream/chat", json={"messages": user("hi")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "chat_stream"
    assert body["choices"][0]["message"]["content"] == TEXT


def test_model_in_path_stream(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text=TEXT)
    with service.http() as http:
        response, sse = stream_raw(http, "/chat_stream/chat", {"messages": user("hi"), "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse.data[-1] == "[DONE]"
    chunks = sse.chunks()
    assert all(chunk["model"] == "chat_stream" for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == TEXT


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    command = [curl, "--silent", "--show-error", "--noproxy", "*", "--max-time", str(int(CLIENT_TIMEOUT)), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT + 10, check=False)


def test_real_curl(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The README's curl command, for real."""
    upstream.script(text=TEXT)
    upstream.script(text=TEXT)
    url = f"{service.base_url}/v1/chat/completions"
    body = json.dumps({"model": "chat", "messages": user("hi")})
    done = _curl("-H", "Content-Type: application/json", "-d", body, url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["message"]["content"] == TEXT
    stream_body = json.dumps({"model": "chat_stream", "messages": user("hi"), "stream": True})
    streamed = _curl("-N", "-H", "Content-Type: application/json", "-d", stream_body, url)
    assert streamed.returncode == 0, streamed.stderr
    sse = parse_sse(streamed.stdout)
    assert sse.data[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks() if c["choices"]) == TEXT

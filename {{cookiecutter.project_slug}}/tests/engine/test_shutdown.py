"""SIGTERM with long runs open: each ends the way its protocol ends a failed run, marked retryable, then the process exits.

SHUTDOWN_GRACE_SECONDS=1 here (hypercorn.toml gives 10 s of grace): runs still going after 1 s are ended by the
service, instead of being cut mid-body when hypercorn's grace runs out.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import CLIENT_TIMEOUT, ServiceProcess, base_env, user, wait_until
from upstream import ScriptedUpstream

ENDLESS = 10**9


def _read_lines_until(response: httpx.Response, lines: list[str], wanted: str, started: threading.Event) -> None:
    """Collect the stream's lines; set `started` once `wanted` arrived."""
    for line in response.iter_lines():
        lines.append(line)
        if wanted in line:
            started.set()


@pytest.fixture
def graceful_service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        SHUTDOWN_GRACE_SECONDS="1",
    )
    service = ServiceProcess(name="graceful_service", workdir=tmp_path_factory.mktemp("graceful"), env=env).start()
    yield service
    service.stop()


def test_sigterm_ends_long_runs_with_a_retryable_failure(
    graceful_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    service = graceful_service
    assert service.process is not None
    for _ in range(2):
        upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.05)
    # The non-streamed run asks its LLM for a whole answer, which is still being made at SIGTERM.
    upstream.script(text="too late", first_token_delay=60)
    bodies = {
        "chat": ("/v1/chat/completions", {"model": "chat_stream", "messages": user("chat"), "stream": True}),
        "responses": ("/v1/responses", {"model": "chat_stream", "input": "responses", "stream": True}),
    }
    lines: dict[str, list[str]] = {name: [] for name in bodies}
    started = {name: threading.Event() for name in bodies}
    outcome: dict[str, Any] = {}

    with httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT, trust_env=False) as http:

        def stream(name: str) -> None:
            path, body = bodies[name]
            with http.stream("POST", path, json=body) as response:
                outcome[name] = response.status_code
                _read_lines_until(response, lines[name], "tick", started[name])

        def whole() -> None:
            response = http.post("/v1/chat/completions", json={"model": "chat_stream", "messages": user("whole")})
            outcome["whole"] = response

        threads = [threading.Thread(target=stream, args=(name,)) for name in bodies]
        for thread in threads:
            thread.start()
        assert all(event.wait(CLIENT_TIMEOUT) for event in started.values()), lines
        threads.append(threading.Thread(target=whole))
        threads[-1].start()
        assert wait_until(lambda: len(upstream.requests) == 3), "the non-streamed run never started"
        service.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(CLIENT_TIMEOUT)

    assert outcome["chat"] == outcome["responses"] == 200
    chat_events = [json.loads(line.removeprefix("data: ")) for line in lines["chat"] if line.startswith("data: ")]
    assert chat_events[-1]["error"]["code"] == "server_shutting_down", chat_events[-1]
    assert "data: [DONE]" not in lines["chat"]

    responses_events = [
        json.loads(line.removeprefix("data: ")) for line in lines["responses"] if line.startswith("data: ")
    ]
    failed = responses_events[-1]
    assert failed["type"] == "response.failed", failed
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_shutting_down"
    assert [event["sequence_number"] for event in responses_events] == list(range(len(responses_events)))

    whole = outcome["whole"]
    assert whole.status_code == 503, whole.text
    assert whole.json()["error"]["code"] == "server_shutting_down"
    assert whole.headers["x-should-retry"] == "true"

    assert service.process.wait(timeout=30) == 0, service.log_tail()
    assert all(record.disconnected for record in upstream.streams), "a run kept reading its LLM"
    log = service.log_tail()
    assert "Traceback" not in log and "Error in ASGI" not in log, log

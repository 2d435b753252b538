"""Request ids: every response carries `x-request-id` (the client's own when usable), every log line of the request
carries it too, and an error that sends the client to the server log names it. With LOG_FORMAT=json every line the
service prints is one JSON object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from support import TESTS_DIR, ServiceProcess, base_env, user, wait_until
from test_wrappers import logs_as_it_runs

GENERATED_ID = re.compile(r"req_[0-9a-f]{32}")


def test_every_response_carries_an_id(test_service: ServiceProcess) -> None:
    client = test_service.client()
    completion = client.chat.completions.with_raw_response.create(model="plain_sync", messages=user("x"))
    assert GENERATED_ID.fullmatch(completion.headers["x-request-id"])
    with client.chat.completions.with_streaming_response.create(
        model="async_gen", messages=user("x"), stream=True
    ) as stream:
        assert GENERATED_ID.fullmatch(stream.headers["x-request-id"])
        assert stream.headers["content-type"].startswith("text/event-stream")
    with client.responses.with_streaming_response.create(model="responses_only", input="x", stream=True) as stream:
        assert GENERATED_ID.fullmatch(stream.headers["x-request-id"])
    with test_service.http() as http:
        ids = set()
        for response in (
            http.get("/no/such/route"),
            http.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}),
            http.post("/v1/chat/completions", json={"model": "no_such_model", "messages": user("x")}),
            http.get("/health/live"),
            http.get("/status"),
        ):
            assert GENERATED_ID.fullmatch(response.headers["x-request-id"]), (response.status_code, response.headers)
            ids.add(response.headers["x-request-id"])
        assert len(ids) == 5, "each request gets an id of its own"


def test_the_clients_own_id_is_kept_when_usable(test_service: ServiceProcess) -> None:
    with test_service.http() as http:
        body = {"model": "plain_sync", "messages": user("x")}
        mine = http.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "client-id.42:a/b=c+d"})
        assert mine.headers["x-request-id"] == "client-id.42:a/b=c+d"
        for unusable in ("has spaces in it", "x" * 129, "new\tline", ""):
            replaced = http.post("/v1/chat/completions", json=body, headers={"X-Request-Id": unusable})
            assert GENERATED_ID.fullmatch(replaced.headers["x-request-id"]), unusable


def test_a_failure_names_the_request_to_look_up(test_service: ServiceProcess) -> None:
    """The client reads the id in the error; the server log has it on the failure's line and the access line."""
    request_id = "req-failure-lookup-1"
    with pytest.raises(openai.InternalServerError) as raised:
        test_service.client().chat.completions.create(
            model="fails_before", messages=user("x"), extra_headers={"X-Request-Id": request_id}
        )
    assert raised.value.request_id == request_id
    assert raised.value.message.endswith(f"see the server log for request {request_id}.")
    assert wait_until(lambda: '"POST /v1/chat/completions 1.1" 500' in _lines_with(test_service, request_id))
    lines = _lines_with(test_service, request_id)
    # The line names the model: every wrapper class is called PipelineWrapper.
    assert "The run of model 'fails_before' (PipelineWrapper.run_chat_completion) failed" in lines, lines


def test_a_wrappers_own_log_lines_carry_the_id(test_service: ServiceProcess) -> None:
    """Lines logged from inside the run (here from the worker thread of a sync wrapper) name the request."""
    for request_id in ("req-wrapper-lines-1", "req-wrapper-lines-2"):
        completion = test_service.client().chat.completions.create(
            model="logs_as_it_runs", messages=user(request_id), extra_headers={"X-Request-Id": request_id}
        )
        assert completion.choices[0].message.content == "".join(logs_as_it_runs.PIECES)
        working = [line for line in test_service.log_tail(200_000).splitlines() if f"working on {request_id}" in line]
        assert len(working) == len(logs_as_it_runs.PIECES), test_service.log_tail()
        assert all(f"[{request_id}]" in line for line in working), working


def _lines_with(service: ServiceProcess, text: str) -> str:
    return "\n".join(line for line in service.log_tail(200_000).splitlines() if text in line)


@pytest.fixture(scope="module")
def json_log_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = base_env(WRAPPERS_PACKAGE="test_wrappers", PYTHONPATH=str(TESTS_DIR), LOG_FORMAT="json")
    service = ServiceProcess(name="json_log_service", workdir=tmp_path_factory.mktemp("json_logs"), env=env).start()
    yield service
    service.stop()


def _json_lines(service: ServiceProcess) -> list[dict[str, Any]]:
    """Every line of the service's output, each of which must be one JSON object."""
    lines = [line for line in service.log_tail(1_000_000).splitlines() if line.strip()]
    for line in lines:
        assert line.startswith("{") and line.endswith("}"), f"not a JSON line: {line!r}"
    return [json.loads(line) for line in lines]


def test_json_lines_for_log_shippers(json_log_service: ServiceProcess) -> None:
    service = json_log_service
    client = service.client()
    answered = client.chat.completions.with_raw_response.create(
        model="logs_as_it_runs", messages=user("json"), extra_headers={"X-Request-Id": "req-json-run"}
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="fails_before", messages=user("x"), extra_headers={"X-Request-Id": "req-json-failure"}
        )

    def access_line(request_id: str) -> dict[str, Any] | None:
        return next(
            (
                line
                for line in _json_lines(service)
                if line["logger"] == "hypercorn.access" and line["request_id"] == request_id
            ),
            None,
        )

    assert wait_until(lambda: access_line("req-json-failure")), service.log_tail()
    run = access_line("req-json-run")
    assert run is not None
    assert (run["level"], run["method"], run["path"], run["status"]) == ("INFO", "POST", "/v1/chat/completions", 200)
    assert (run["model"], run["route"]) == ("logs_as_it_runs", "/v1/chat/completions")
    assert isinstance(run["duration_ms"], float) and run["duration_ms"] > 0
    assert run["bytes"] == len(answered.http_response.content)
    assert run["client"].startswith("127.0.0.1:")
    assert run["message"].startswith(f'{run["client"]} "POST /v1/chat/completions 1.1" 200 {run["bytes"]} ')
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", run["time"])

    lines = _json_lines(service)
    working = [line for line in lines if line["message"].startswith("working on json")]
    assert len(working) == len(logs_as_it_runs.PIECES)
    assert all(
        (line["request_id"], line["model"], line["level"]) == ("req-json-run", "logs_as_it_runs", "WARNING")
        for line in working
    )
    failure = next(
        line
        for line in lines
        if line["message"].startswith("The run of model 'fails_before' (PipelineWrapper.run_chat_completion) failed")
    )
    assert failure["request_id"] == "req-json-failure"
    assert failure["level"] == "ERROR" and "RuntimeError: secret internal detail" in failure["exception"]
    assert access_line("req-json-failure")["status"] == 500
    assert any(line["logger"] == "hypercorn.error" for line in lines), "hypercorn's own lines are JSON too"

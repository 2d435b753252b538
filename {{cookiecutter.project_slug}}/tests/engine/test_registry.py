"""Wrapper discovery: broken wrappers are left out of the list and say why they failed; the rest are served
(WRAPPERS_PACKAGE=test_wrappers)."""

from __future__ import annotations

import openai
import pytest

from support import ServiceProcess, assert_error, user
from test_wrappers.startup_objects import INDEX_SIZE

SERVED = (
    "plain_sync",
    "sync_gen",
    "async_gen",
    "chunks",
    "events_tool_calls",
    "fails_before",
    "fails_midstream",
    "slow_start",
    "responses_only",
    "endless_sync",
    "endless_async",
)


def test_models_listed_and_broken_ones_absent(test_service: ServiceProcess) -> None:
    """Every working wrapper is a model; one whose import or setup() fails is not."""
    with test_service.http() as http:
        ids = {model["id"] for model in http.get("/v1/models").json()["data"]}
    assert set(SERVED) <= ids
    assert "broken_setup" not in ids
    assert "broken_import" not in ids
    assert not any(model_id.startswith("_") for model_id in ids)


def test_status_reports_failed_setup(test_service: ServiceProcess) -> None:
    """/status tells an operator which wrappers failed to load, and why, in one line each."""
    with test_service.http() as http:
        status = http.get("/status").json()
    assert status["status"] == "degraded"
    assert status["failed"]["broken_setup"] == "RuntimeError: setup failed on purpose"
    assert status["failed"]["broken_import"] == "ImportError: broken_import fails on purpose"
    assert "broken_setup" not in status["models"]
    assert "broken_import" not in status["models"]
    assert set(SERVED) <= set(status["models"])


@pytest.mark.parametrize("model", ["broken_setup", "broken_import"])
def test_a_model_that_failed_to_load_says_so(test_service: ServiceProcess, model: str) -> None:
    """Its own error on both APIs and by id, not the 404 of a typo: 503 `model_failed_to_load`, the reason in one
    line and the request id that leads to the traceback in the log; not retried (the operator must fix it)."""
    client = test_service.client()
    reason = "setup failed on purpose" if model == "broken_setup" else "broken_import fails on purpose"
    calls = (
        lambda: client.chat.completions.create(model=model, messages=user("x")),
        lambda: client.responses.create(model=model, input="x"),
        lambda: client.models.retrieve(model),
    )
    for call in calls:
        with pytest.raises(openai.InternalServerError) as raised:
            call()
        error = raised.value
        assert error.status_code == 503
        assert error.code == "model_failed_to_load"
        assert error.param == "model"
        assert reason in error.message and "\n" not in error.message
        assert error.response.headers["x-request-id"] in error.message
        assert error.response.headers["x-should-retry"] == "false"
    log = test_service.log_tail(200_000)
    assert f"Model '{model}' failed to load" in log
    assert "Traceback" in log


def test_an_unknown_model_names_the_models_that_exist(test_service: ServiceProcess) -> None:
    """A typo's 404 lists the models (the first ten), so the right name is one look away."""
    with pytest.raises(openai.NotFoundError) as raised:
        test_service.client().chat.completions.create(model="plain_snyc", messages=user("x"))
    error = raised.value
    assert error.code == "model_not_found"
    assert error.param == "model"
    message = error.body["message"]  # type: ignore[index]
    listed = message.split("The models are: ", 1)[1]
    served = sorted(model.id for model in test_service.client().models.list())
    assert listed == ", ".join(served[:10]) + f" and {len(served) - 10} more."
    with test_service.http() as http:
        by_id = assert_error(http.get("/v1/models/plain_snyc"), 404, code="model_not_found")
    assert by_id["message"] == message


def test_what_setup_built_is_left_out_of_full_collections(test_service: ServiceProcess) -> None:
    """Once every wrapper is set up, the service freezes what exists, the wrappers' indexes included: full
    garbage collections then skip objects that live as long as the process instead of stalling requests."""
    answer = test_service.client().chat.completions.create(model="startup_objects", messages=user("count"))
    frozen = int(answer.choices[0].message.content or "0")
    assert frozen > INDEX_SIZE, f"only {frozen} objects frozen; the index alone has {INDEX_SIZE}"

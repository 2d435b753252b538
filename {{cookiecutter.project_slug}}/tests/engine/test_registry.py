"""Wrapper discovery: broken wrappers are left out, the rest are served (WRAPPERS_PACKAGE=test_wrappers)."""

from __future__ import annotations

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
    """/status tells an operator which wrappers failed to load."""
    with test_service.http() as http:
        status = http.get("/status").json()
    assert status["status"] == "ready"
    assert "broken_setup" in status["failed"]
    assert "broken_setup" not in status["models"]
    assert "broken_import" not in status["models"]
    assert set(SERVED) <= set(status["models"])


def test_broken_models_are_unknown(test_service: ServiceProcess) -> None:
    """Asking for a model that failed to load is an unknown model, not a crash."""
    with test_service.http() as http:
        for model in ("broken_setup", "broken_import"):
            assert_error(http.get(f"/v1/models/{model}"), 404, code="model_not_found")
            response = http.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
            assert_error(response, 404, code="model_not_found")


def test_what_setup_built_is_left_out_of_full_collections(test_service: ServiceProcess) -> None:
    """Once every wrapper is set up, the service freezes what exists, the wrappers' indexes included: full
    garbage collections then skip objects that live as long as the process instead of stalling requests."""
    answer = test_service.client().chat.completions.create(model="startup_objects", messages=user("count"))
    frozen = int(answer.choices[0].message.content or "0")
    assert frozen > INDEX_SIZE, f"only {frozen} objects frozen; the index alone has {INDEX_SIZE}"

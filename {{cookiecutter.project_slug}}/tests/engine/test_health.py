"""Health probes: the port opens at once, /health/live answers throughout, /health/ready (and /status) only once every
wrapper is loaded; meanwhile requests for models not loaded yet get a retryable 503. A wrapper that failed to load
keeps /health/ready at 503 (`"wrappers": "failed"`), unless READY_WITH_FAILED_WRAPPERS says to serve the others.

`gated_setup`'s setup() waits for a file the test creates, so "while it loads" is a state the test holds, not a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import TESTS_DIR, ServiceProcess, assert_error, base_env, user, wait_until
from test_wrappers import async_gen, gated_setup

KEY = "health-key"


@pytest.fixture
def loading_service(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServiceProcess, Path]]:
    """The test wrappers behind an API key, `gated_setup` held in its setup() until the gate file exists; more
    settings in the test's indirect parameter."""
    gate = tmp_path / "gate"
    env = base_env(WRAPPERS_PACKAGE="test_wrappers", PYTHONPATH=str(TESTS_DIR), SETUP_GATE=str(gate), API_KEYS=KEY)
    env.update(getattr(request, "param", {}))
    service = ServiceProcess(name="loading_service", workdir=tmp_path / "service", env=env, ready_path="/health/live")
    service.start()
    try:
        yield service, gate
    finally:
        service.stop()


def _chat(http: httpx.Client, model: str) -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": model, "messages": user("x")})


def test_ready_only_once_every_wrapper_is_loaded(loading_service: tuple[ServiceProcess, Path]) -> None:
    service, gate = loading_service
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=service.base_url, timeout=30, headers=headers, trust_env=False) as http:
        # async_gen sorts before gated_setup, so it loads first; wait for it (not for a time).
        assert wait_until(lambda: _chat(http, "async_gen").status_code == 200, timeout=60), service.log_tail()
        assert _chat(http, "async_gen").json()["choices"][0]["message"]["content"] == "".join(async_gen.PIECES)

        ready = http.get("/health/ready", headers={"Authorization": ""})
        assert ready.status_code == 503, ready.text
        assert ready.json() == {"status": "not ready", "checks": {"wrappers": "loading", "store": "ok"}}
        live = http.get("/health/live", headers={"Authorization": ""})
        assert (live.status_code, live.json()) == (200, {"status": "live"})
        assert http.get("/status").status_code == 503

        for model in ("gated_setup", "plain_sync"):  # the slow one, and one that loads after it
            response = _chat(http, model)
            assert_error(response, 503, code="model_loading")
            assert response.headers["x-should-retry"] == "true"
        assert_error(http.get("/v1/models"), 503, code="model_loading")
        assert_error(http.get("/v1/models/plain_sync"), 503, code="model_loading")

        gate.write_text("open")
        assert wait_until(lambda: http.get("/status").status_code == 200, timeout=60), service.log_tail()
        # broken_setup and broken_import failed to load: a rollout of this build must not take traffic.
        ready = http.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json() == {"status": "not ready", "checks": {"wrappers": "failed", "store": "ok"}}
        assert http.get("/health/live").status_code == 200
        assert http.get("/status").json()["status"] == "degraded"
        assert _chat(http, "gated_setup").json()["choices"][0]["message"]["content"] == gated_setup.ANSWER
        assert "plain_sync" in {model["id"] for model in http.get("/v1/models").json()["data"]}
        assert_error(_chat(http, "no_such_model"), 404, code="model_not_found")  # loading over: unknown is unknown


@pytest.mark.parametrize("loading_service", [{"READY_WITH_FAILED_WRAPPERS": "true"}], indirect=True)
def test_probes_need_no_key_and_name_no_model(loading_service: tuple[ServiceProcess, Path]) -> None:
    """Load balancers probe without keys; only a key shows /status's models and failed wrappers. With
    READY_WITH_FAILED_WRAPPERS the service is ready with broken wrappers, and /status still tells them apart."""
    service, gate = loading_service
    gate.write_text("open")
    with httpx.Client(base_url=service.base_url, timeout=30, trust_env=False) as http:
        assert wait_until(lambda: http.get("/health/ready").status_code == 200, timeout=60), service.log_tail()
        assert http.get("/health/ready").json() == {"status": "ready", "checks": {"wrappers": "ok", "store": "ok"}}
        for path in ("/health/live", "/health/ready"):
            assert "gated_setup" not in http.get(path).text
        assert http.get("/status").json() == {"status": "degraded"}
        keyed = http.get("/status", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert keyed["status"] == "degraded"
        assert "gated_setup" in keyed["models"]
        assert keyed["failed"]["broken_setup"] == "RuntimeError: setup failed on purpose"
        assert keyed["store"] == {"engine": "sqlite", "reachable": True}
        assert_error(_chat(http, "plain_sync"), 401, code="invalid_api_key")

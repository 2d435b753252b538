"""Service-wide options and guarantees: API keys, refusals from wrappers, and the thread pool's bounds."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from support import TESTS_DIR, ServiceProcess, assert_error, base_env, parse_sse, user
from test_wrappers import async_gen, refuses
from upstream import ScriptedUpstream

KEYS = ("first-key", "second-key")
ALLOWED_ORIGIN = "https://chat.example"


def client_with_key(service: ServiceProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.base_url}/v1", api_key=key, max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def keyed_service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The test wrappers behind API keys, with a single worker thread for sync wrappers."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        API_KEYS=" , ".join(KEYS),
        CORS_ALLOW_ORIGINS=ALLOWED_ORIGIN,
        THREAD_POOL_SIZE="1",
        TEST_WRAPPERS_DIR=str(tmp_path_factory.mktemp("keyed_state")),
    )
    service = ServiceProcess(name="keyed_service", workdir=tmp_path_factory.mktemp("keyed"), env=env).start()
    yield service
    service.stop()


def test_api_keys_are_required(keyed_service: ServiceProcess) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        client_with_key(keyed_service, "wrong").models.list()
    assert raised.value.code == "invalid_api_key"
    with httpx.Client(base_url=keyed_service.base_url, timeout=10) as http:
        assert_error(http.get("/v1/models"), 401, err_type="authentication_error", code="invalid_api_key")
        assert_error(
            http.post("/v1/chat/completions", json={"model": "plain_sync", "messages": user("x")}),
            401,
            code="invalid_api_key",
        )
        assert_error(http.post("/v1/conversations", json={}), 401, code="invalid_api_key")
        assert http.get("/status").status_code == 200, "health checks need no key"
    for key in KEYS:
        completion = client_with_key(keyed_service, key).chat.completions.create(model="plain_sync", messages=user("x"))
        assert completion.choices[0].message.content
        assert client_with_key(keyed_service, key).conversations.create().id.startswith("conv_")


def test_refused_requests_leave_their_connection_usable(keyed_service: ServiceProcess) -> None:
    """A 401 or 404 answered before the body was read: the client's next request on that connection is served
    (it used to find the connection closed now and then, a race with the body's arrival)."""
    body = {"model": "plain_sync", "messages": user("x" * 4000)}
    with httpx.Client(base_url=keyed_service.base_url, timeout=10) as http:
        for _ in range(150):
            assert http.post("/v1/chat/completions", json=body).status_code == 401
            assert http.post("/v1/no/such/route", json=body).status_code in (401, 404)
            assert http.get("/health/live").status_code == 200


def test_wrapper_refusal_keeps_its_status(keyed_service: ServiceProcess) -> None:
    with httpx.Client(base_url=keyed_service.base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {KEYS[0]}"}
        for stream in (False, True):
            body = {"model": "refuses", "messages": user("Paris and Rome?"), "stream": stream}
            reply = http.post("/v1/chat/completions", json=body, headers=headers)
            error = assert_error(reply, 400, param="messages", code="too_many_cities")
            assert error["message"] == refuses.MESSAGE
            assert reply.headers["x-should-retry"] == "false"


def test_async_generator_wrapper_does_not_wait_for_the_pool(keyed_service: ServiceProcess, tmp_path: Path) -> None:
    """With the single worker thread busy streaming a sync wrapper, an `async def` with `yield` still answers."""
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    body = {"model": "endless_sync", "messages": user(f"hold-{tmp_path.name}"), "stream": True}
    first_tick = threading.Event()
    release = threading.Event()

    def hold_the_pool() -> None:
        with (
            httpx.Client(base_url=keyed_service.base_url, timeout=30, headers=headers) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            for line in response.iter_lines():
                if "tick" in line:
                    first_tick.set()
                    release.wait(timeout=30)
                    return

    holder = threading.Thread(target=hold_the_pool, daemon=True)
    holder.start()
    try:
        assert first_tick.wait(timeout=30), "the sync stream never started"
        completion = client_with_key(keyed_service, KEYS[0]).chat.completions.create(
            model="async_gen", messages=user("x")
        )
        assert completion.choices[0].message.content == "".join(async_gen.PIECES)
    finally:
        release.set()
        holder.join(timeout=30)


@pytest.mark.parametrize(
    "model",
    ["sync_pipeline_stream", "sync_pipeline_stream_stepped", "sync_pipeline_stream_callback", "sync_agent_stream"],
)
def test_sync_streams_of_an_async_llm_do_not_wait_for_the_pool(
    keyed_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    """A sync wrapper streaming an LLM that streams asynchronously (alone, after a sync step, with callbacks of
    its own, or in an Agent) holds no worker thread while the LLM talks: with one worker, two streams run at once."""
    words = " ".join(f"word{i}" for i in range(200))
    for _ in range(2):
        upstream.script(text=words, token_delay=0.05)  # 10 s each
    body = {"model": model, "messages": user("Talk a lot"), "stream": True}
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    with (
        httpx.Client(base_url=keyed_service.base_url, timeout=30, headers=headers) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as first,
    ):
        first_lines = first.iter_lines()  # kept: closing the iterator would close the connection and end the stream
        assert any('"content"' in line for line in first_lines), "the first stream never started"
        with http.stream("POST", "/v1/chat/completions", json=body) as second:
            second_lines = second.iter_lines()
            assert any('"content"' in line for line in second_lines)
            assert len(upstream.streams) == 2 and not any(s.disconnected or s.completed for s in upstream.streams), (
                "the second stream started only after the first had ended"
            )


def test_cors_for_allowed_origins_only(keyed_service: ServiceProcess) -> None:
    """A browser page from an allowed origin may call the API; a preflight needs no key; others get no CORS."""
    with httpx.Client(base_url=keyed_service.base_url, timeout=10) as http:
        preflight = http.options(
            "/v1/chat/completions",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"

        body = {"model": "plain_sync", "messages": user("x")}
        headers = {"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {KEYS[0]}"}
        allowed = http.post("/v1/chat/completions", json=body, headers=headers)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

        headers["Origin"] = "https://elsewhere.example"
        other = http.post("/v1/chat/completions", json=body, headers=headers)
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers


def test_sigterm_lets_open_streams_finish(tmp_path_factory: pytest.TempPathFactory) -> None:
    """hypercorn.toml serves in-process (`workers = 0`): that process itself must shut down gracefully."""
    env = base_env(WRAPPERS_PACKAGE="test_wrappers", PYTHONPATH=str(TESTS_DIR))
    service = ServiceProcess(name="sigterm_service", workdir=tmp_path_factory.mktemp("sigterm"), env=env).start()
    try:
        assert service.process is not None
        body = {"model": "slow_start", "messages": user("x"), "stream": True}
        with service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200  # the stream is open: its wrapper sleeps before the first chunk
            service.process.send_signal(signal.SIGTERM)
            sse = parse_sse(response.read().decode())
        assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in sse.chunks()) == "slow start"
        assert sse.data[-1] == "[DONE]"
        assert service.process.wait(timeout=30) == 0, service.log_tail()
    finally:
        service.stop()

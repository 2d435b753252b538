"""Fixtures of the engine's tests: a scripted upstream LLM and the app served by hypercorn, as a user runs it.

These tests (everything under tests/engine/) are the template's, updated with it. They serve the frozen copies
of the examples in `examples/` or the edge cases in `test_wrappers/`, never your `wrappers/` nor your `llm.py`;
your wrappers are tested by tests/test_wrappers_load.py. These fixtures apply only under tests/engine/.

Tests talk to hypercorn over real HTTP with the official SDK. The few that need to reach inside (a client
that stops halfway through a body, a disconnect at an exact point) use `app`: the same app in-process.
Services are session-scoped (starting one imports Haystack, which takes seconds) and started
only when a test asks for them. Their logs go to files and are attached to failing tests.

Run: `pip install -e '.[dev]'` then `pytest`. Schema tests also need OPENAI_OPENAPI_SPEC=<path to
OpenAI's openapi.yaml>; without it they skip. Nothing here reaches the internet.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from quart import Quart

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))  # upstream, support, examples and test_wrappers, whatever the import mode

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

from engines import RedisServer, SeaweedFS  # noqa: E402
from support import PACKAGE, TEST_MAX_BODY_BYTES, ServiceProcess, base_env, serve, until_ready  # noqa: E402
from upstream import ScriptedUpstream  # noqa: E402

# Imported by name so the import block sorts the same whatever the package is called.
create_app = importlib.import_module(f"{PACKAGE}.engine.app").create_app
Settings = importlib.import_module(f"{PACKAGE}.engine.settings").Settings
state = importlib.import_module(f"{PACKAGE}.engine.state")

SERVICE_FIXTURES = ("service", "offline_service", "test_service", "real_model_service", "llama_server")


_started_upstreams: list[ScriptedUpstream] = []


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedUpstream]:
    """One scripted OpenAI-compatible LLM on loopback for the whole session."""
    server = ScriptedUpstream().start()
    _started_upstreams.append(server)
    yield server
    _started_upstreams.remove(server)
    server.stop()


@pytest.fixture(autouse=True)
def _reset_upstream() -> None:
    """Each test starts from a clean upstream, even one that only reaches it through a service."""
    for server in _started_upstreams:
        server.reset()


@pytest.fixture(scope="session")
def service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The frozen examples (tests/engine/examples: chat, chat_stream, agent, ...) talking to the scripted upstream."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
    )
    yield from serve(tmp_path_factory.mktemp("service"), "service", env)


@pytest.fixture(scope="session")
def offline_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The frozen examples without OPENAI_API_KEY: the offline MockChatGenerator mode."""
    yield from serve(tmp_path_factory.mktemp("offline_service"), "offline_service", base_env())


@pytest.fixture(scope="session")
def wrapper_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the edge-case wrappers in the subprocess record what they did (TEST_WRAPPERS_DIR)."""
    return tmp_path_factory.mktemp("wrapper_state")


@pytest.fixture(scope="session")
def test_service(
    upstream: ScriptedUpstream, wrapper_state_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The edge-case wrappers of tests/engine/test_wrappers, a small body limit and a 1 s keep-alive."""
    env = base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        MAX_BODY_BYTES=str(TEST_MAX_BODY_BYTES),
        KEEPALIVE_SECONDS="1",
        TEST_WRAPPERS_DIR=str(wrapper_state_dir),
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
    )
    yield from serve(tmp_path_factory.mktemp("test_service"), "test_service", env)


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    """What `app` is built with: the edge-case wrappers, a 1 s keep-alive, 4 worker threads, data in a temp dir.

    A module that needs other settings overrides this fixture with its own.
    """
    return Settings(
        wrappers_package="test_wrappers", keepalive_seconds=1.0, thread_pool_size=4, data_dir=tmp_path / "data"
    )


@pytest_asyncio.fixture
async def app(app_settings: Settings) -> AsyncIterator[Quart]:
    """The app in-process, started (its before_serving ran, its wrappers loaded) and shut down after the test.

    Talk to it with `app.test_client()`; Quart config such as BODY_TIMEOUT may be changed before a request.
    """
    quart_app = create_app(app_settings)
    async with quart_app.test_app():
        await until_ready(quart_app)
        yield quart_app


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test (it starts in milliseconds), persisting with AOF across `restart()`."""
    server = RedisServer(tmp_path / "redis", persist=True).start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function making a state store of the engine with the given limits (a fresh database each test)."""
    redis_server = RedisServer(tmp_path / "redis").start() if request.param == "redis" else None
    url = redis_server.url if redis_server is not None else None

    def make(
        max_count: int = 100, max_bytes: int = 10_000_000, ttl_seconds: int = 3600, conversations: Any = None
    ) -> Any:
        limits = state.ResponseLimits(max_count, max_bytes, ttl_seconds)
        return state.open_state_store(
            url, tmp_path / "data", limits, conversations or state.ConversationLimits(100, 10**7, 50, 10**6, 3600)
        )

    make.redis_url = url  # type: ignore[attr-defined]  # for index_entries
    yield make
    if redis_server is not None:
        redis_server.close()


@pytest.fixture
async def store(open_store: Any) -> AsyncIterator[Any]:
    opened = open_store()
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One S3-compatible server for the session (it takes a second or two to start); tests use their own prefix."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the log of every service a failing test used, so a failure explains itself."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name in SERVICE_FIXTURES:
            service = funcargs.get(name)
            if hasattr(service, "log_tail"):  # a ServiceProcess, or an engine's LlamaServer
                report.sections.append((f"{name} log (tail)", service.log_tail()))
        for service in funcargs.get("replicas", []):  # the services a test of test_state.py started
            report.sections.append((f"{service.name} log (tail)", service.log_tail()))
    return report

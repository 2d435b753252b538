"""What an entry point of the user's own gives `create_app` (docs/openwebui.md, docs/operations.md): client adapters,
tried before Open WebUI's, and readiness checks beside the built-in ones; extending the service needs no edit of the
engine. The app runs in-process, as the user's entry point would build it, and is asked over Quart's test client.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest_asyncio
from quart import Quart

from support import PACKAGE
from test_wrappers.plain_sync import ANSWER

create_app = importlib.import_module(f"{PACKAGE}.engine.app").create_app
Settings = importlib.import_module(f"{PACKAGE}.engine.settings").Settings

CLIENT_HEADER = "x-my-client"


class MyClient:
    """A client adapter as a user writes one: it answers the requests of its client itself."""

    def recognises(self, headers: Mapping[str, str]) -> bool:
        return CLIENT_HEADER in headers

    async def answer_itself(self, body: dict[str, Any], wrapper: object) -> str | None:
        return "answered by my adapter" if body.get("metadata", {}).get("from") == "my client" else None

    def show_tool_call_start(self, name: str, arguments: str, call_id: str | None) -> None:
        return None

    def show_tool_call_end(self, name: str, arguments: str, result: str, error: bool) -> None:
        return None

    def stream_form(self, event: Any) -> str:
        return ""

    def show_sources(self, sources: list[tuple[str, str]]) -> None:
        return None


class Database:
    """A part the wrappers need, warming up until the test says it is ready."""

    def __init__(self) -> None:
        self.state: str | None = "warming"

    async def check(self) -> str | None:
        return self.state


@pytest_asyncio.fixture
async def extended_app(tmp_path: Path) -> AsyncIterator[tuple[Quart, Database]]:
    database = Database()
    # The test wrappers that fail to load on purpose would keep the built-in `wrappers` check at "failed".
    settings = Settings(wrappers_package="test_wrappers", data_dir=tmp_path / "data", ready_with_failed_wrappers=True)
    app = create_app(settings, client_adapters=[MyClient()], readiness_checks={"database": database.check})
    async with app.test_app():
        await until_ready_but(app, "database")
        yield app, database


async def until_ready_but(app: Quart, waiting: str) -> None:
    """Wait (bounded) until every built-in part is ready; the test's own check stays as it is."""
    client = app.test_client()
    checks: dict[str, str] = {}
    for _ in range(600):
        checks = (await (await client.get("/health/ready")).get_json())["checks"]
        if all(state == "ok" for name, state in checks.items() if name != waiting):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the built-in parts never got ready: {checks}")


async def test_a_readiness_check_of_the_users_holds_readiness_until_it_passes(
    extended_app: tuple[Quart, Database],
) -> None:
    app, database = extended_app
    client = app.test_client()
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert (await response.get_json())["checks"] == {"wrappers": "ok", "store": "ok", "database": "warming"}
    database.state = None
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert (await response.get_json())["checks"]["database"] == "ok"


async def test_a_client_adapter_of_the_users_answers_its_clients_requests(extended_app: tuple[Quart, Database]) -> None:
    app, _ = extended_app
    client = app.test_client()
    body = {"model": "plain_sync", "messages": [{"role": "user", "content": "hi"}], "metadata": {"from": "my client"}}
    answered = await client.post("/v1/chat/completions", json=body)
    assert answered.status_code == 200
    assert (await answered.get_json())["choices"][0]["message"]["content"] == "answered by my adapter"
    body["metadata"] = {"from": "someone else"}
    ran = await client.post("/v1/chat/completions", json=body)
    assert ran.status_code == 200
    assert (await ran.get_json())["choices"][0]["message"]["content"] == ANSWER, "other requests run the wrapper"

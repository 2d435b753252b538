"""A client that goes away stops the work done for it: no pipeline keeps running for nobody."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from haystack import Pipeline, component
from haystack.dataclasses import ChatMessage, StreamingChunk
from quart import Quart

import test_wrappers
from examples import _streaming as streaming
from support import ServiceProcess, user, wait_until
from test_wrappers import endless_async, endless_sync
from upstream import ScriptedUpstream

ENDLESS = {"endless_sync": endless_sync.CAP, "endless_async": endless_async.CAP}
STOP_TIMEOUT = 10.0


async def _eventually(predicate: Callable[[], object], timeout: float = STOP_TIMEOUT) -> bool:
    """Bounded async poll."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return bool(predicate())


async def _read_first_tick_then_disconnect(app: Quart, model: str, key: str) -> None:
    body = json.dumps({"model": model, "messages": user(key), "stream": True}).encode()
    client = app.test_client()
    async with asyncio.timeout(30):
        async with client.request(
            "/v1/chat/completions", method="POST", headers={"Content-Type": "application/json"}
        ) as connection:
            await connection.send(body)
            await connection.send_complete()
            received = b""
            while b"tick 0" not in received:
                received += await connection.receive()
            assert connection.status_code == 200
            await connection.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize("model", sorted(ENDLESS))
async def test_disconnect_stops_wrapper_in_process(app: Quart, model: str) -> None:
    """Read one chunk, hang up: the generator is closed (sync) or cancelled (async) and produces no more."""
    key = f"{model}-{uuid.uuid4().hex}"
    await _read_first_tick_then_disconnect(app, model, key)
    assert await _eventually(lambda: key in test_wrappers.STOPPED), f"{model} still running after the disconnect"
    produced = test_wrappers.COUNTS[key]
    assert produced < ENDLESS[model], "the wrapper ran to its cap: nothing stopped it"
    await asyncio.sleep(0.2)
    assert test_wrappers.COUNTS[key] == produced


@pytest.mark.asyncio
@pytest.mark.parametrize("model", sorted(ENDLESS))
async def test_disconnect_during_non_stream_request(app: Quart, model: str) -> None:
    """A client that gives up waiting for a `stream: false` answer also stops the run."""
    key = f"{model}-non-stream-{uuid.uuid4().hex}"
    body = json.dumps({"model": model, "messages": user(key)}).encode()
    client = app.test_client()
    async with asyncio.timeout(30):
        async with client.request(
            "/v1/chat/completions", method="POST", headers={"Content-Type": "application/json"}
        ) as connection:
            await connection.send(body)
            await connection.send_complete()
            assert await _eventually(lambda: test_wrappers.COUNTS.get(key, 0) >= 3), "the run never started"
            await connection.disconnect()
    assert await _eventually(lambda: key in test_wrappers.STOPPED), f"{model} kept running for a client that left"
    assert test_wrappers.COUNTS[key] < ENDLESS[model]


@pytest.mark.asyncio
async def test_app_serves_after_disconnects(app: Quart) -> None:
    """Abandoned streams leave the app (and its thread pool of 4) able to answer."""
    keys = [f"pool-{index}-{uuid.uuid4().hex}" for index in range(6)]
    for key in keys:
        await _read_first_tick_then_disconnect(app, "endless_sync", key)
    assert await _eventually(lambda: all(key in test_wrappers.STOPPED for key in keys))
    client = app.test_client()
    async with asyncio.timeout(30):
        response = await client.post("/v1/chat/completions", json={"model": "sync_gen", "messages": user("hi")})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["choices"][0]["message"]["content"] == "sync gen answer"


@component
class FailsAfterOneChunk:
    """A lone async LLM whose upstream breaks right after the first chunk."""

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
        raise NotImplementedError("only run_async is used here")

    @component.output_types(replies=list[ChatMessage])
    async def run_async(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
        await streaming_callback(StreamingChunk(content="first"))
        raise RuntimeError("the upstream went away")


@pytest.mark.asyncio
async def test_a_run_failing_as_its_reader_leaves_is_not_reported_as_unhandled() -> None:
    """The reader takes one piece and leaves after the run failed: asyncio must not log a lost task error."""
    reported: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: reported.append(context["message"]))
    pipeline = Pipeline()
    pipeline.add_component("llm", FailsAfterOneChunk())
    pieces = streaming.async_streaming_generator(pipeline, {"llm": {"messages": [ChatMessage.from_user("hi")]}})
    assert (await anext(pieces)).content == "first"
    await asyncio.sleep(0.1)  # the run fails meanwhile; nobody reads its end
    await pieces.aclose()
    del pieces
    gc.collect()
    await asyncio.sleep(0.1)  # what the collection hands back to the loop (async generators to close) runs
    gc.collect()
    assert reported == []


def _state(directory: Path, key: str, suffix: str) -> str | None:
    path = directory / f"{key}.{suffix}"
    return path.read_text() if path.exists() else None


@pytest.mark.parametrize("model", sorted(ENDLESS))
def test_disconnect_stops_wrapper_over_http(test_service: ServiceProcess, wrapper_state_dir: Path, model: str) -> None:
    """Same over real HTTP through hypercorn: closing the connection stops the wrapper."""
    key = f"{model}-{uuid.uuid4().hex}"
    body = {"model": model, "messages": user(key), "stream": True}
    with test_service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if "tick 0" in line:
                break
    assert wait_until(lambda: _state(wrapper_state_dir, key, "stopped"), timeout=STOP_TIMEOUT), (
        f"{model} kept running after its client went away"
    )
    produced = int(_state(wrapper_state_dir, key, "count") or 0)
    assert produced < ENDLESS[model]


@pytest.mark.parametrize("model", ["chat_stream", "agent"])
def test_disconnect_stops_upstream_stream(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Streaming examples: when the client hangs up, the service hangs up on the LLM too (no paid tokens wasted)."""
    total = 400
    # 0.2 s per token: "at most 20 more tokens" leaves the service 4 s to notice, even on a loaded machine.
    upstream.script(text="tok " * total, token_delay=0.2)
    body = {"model": model, "messages": user("count slowly"), "stream": True}
    with service.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if "tok" in line:
                break
        sent_when_client_left = upstream.tokens_sent
    assert wait_until(lambda: upstream.streams, timeout=STOP_TIMEOUT)
    record = upstream.streams[-1]
    assert wait_until(lambda: record.disconnected or record.completed, timeout=15), (
        "the upstream stream is still running 15 s after the client left"
    )
    assert record.disconnected and not record.completed
    assert record.tokens_sent - sent_when_client_left <= 20, (sent_when_client_left, record.tokens_sent)

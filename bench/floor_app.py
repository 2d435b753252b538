"""The floors: bare Quart apps that do only what is physically needed, to measure every target against.

Served under hypercorn with the baked project's hypercorn.toml, exactly like our service, so the
difference between the two is our code and nothing else. One app, one model per floor:

- `fixed`: parse the request and return the same chat.completion bytes our `fixed` model returns,
  without Haystack: what serving alone costs.
- `fixed_pipeline`: the same, but running the shared `fixed_pipeline()` in a thread first, to split
  a target's overhead into Haystack's part and the serving layer's.
- `llm`: the shared `llm_pipeline()` run in a thread, its reply as JSON.
- `async_stream`: the same Haystack code our streaming wrapper runs (`Pipeline.stream`), in the
  plainest SSE loop: what Haystack itself costs per stream, with no serving layer around it.
- `sync_stream`: the same pipeline run with `Pipeline.run` in a thread (a pool of 2000, so nothing
  queues), chunks handed to the loop with `call_soon_threadsafe`.
- `relay`: the upstream's stream relayed with httpx and no Haystack at all.
- `agent_stream`: the shared `agent()` run with `Agent.run_async` and a streaming callback, in the same loop.
"""

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from bench_config import FIXED_ANSWER, UPSTREAM_MODEL
from bench_shared import agent, agent_run_args, fixed_pipeline, llm_pipeline, reply_text, run_args
from haystack import Pipeline
from haystack.components.agents import Agent
from haystack.dataclasses import StreamingChunk
from quart import Quart, Response, request

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
DONE = "data: [DONE]\n\n"

app = Quart(__name__)
pipelines: dict[str, Pipeline] = {}
agents: dict[str, Agent] = {}
pool = ThreadPoolExecutor(max_workers=2000, thread_name_prefix="floor")
http: httpx.AsyncClient | None = None


@app.before_serving
async def setup() -> None:
    global http
    pipelines["fixed_pipeline"] = fixed_pipeline()
    for name in ("llm", "async_stream", "sync_stream"):
        pipelines[name] = llm_pipeline()
    agents["agent_stream"] = agent()
    agents["agent_stream"].warm_up()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    http = httpx.AsyncClient(base_url=os.environ["OPENAI_BASE_URL"], timeout=600.0, limits=limits, trust_env=False)


def completion(model: str, text: str) -> bytes:
    message = {"role": "assistant", "content": text, "refusal": None}
    return json.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        },
        separators=(",", ":"),
    ).encode()


class ChunkFormat:
    """chat.completion.chunk SSE lines with the shared part of the JSON built once."""

    def __init__(self, model: str) -> None:
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk"}
        head |= {"created": int(time.time()), "model": model}
        self.prefix = "data: " + json.dumps(head, separators=(",", ":"))[:-1] + ',"choices":[{"index":0,"delta":'
        self.first = True

    def content(self, text: str) -> str:
        role = '"role":"assistant",' if self.first else ""
        self.first = False
        return f'{self.prefix}{{{role}"content":{json.dumps(text)}}},"finish_reason":null}}]}}\n\n'

    def finish(self) -> str:
        return f'{self.prefix}{{}},"finish_reason":"stop"}}]}}\n\n{DONE}'


@app.post("/v1/chat/completions")
async def chat() -> Response:
    body = json.loads(await request.get_data())
    model = body["model"]
    messages = body["messages"]
    if model == "fixed":
        return Response(completion(model, FIXED_ANSWER), content_type="application/json")
    if model in ("llm", "fixed_pipeline"):
        result = await asyncio.get_running_loop().run_in_executor(pool, pipelines[model].run, run_args(messages))
        return Response(completion(model, reply_text(result)), content_type="application/json")
    streams = {
        "async_stream": haystack_stream,
        "sync_stream": haystack_thread_stream,
        "agent_stream": agent_stream,
        "relay": relay_stream,
    }
    if model not in streams or not body.get("stream"):
        return Response(b'{"error":{"message":"unknown model or not streamed"}}', status=400)
    response = Response(streams[model](model, messages), headers=SSE_HEADERS)
    response.timeout = None
    return response


async def haystack_stream(model: str, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
    """`Pipeline.stream` in a bare loop: the Haystack cost of one async stream and nothing more."""
    out = ChunkFormat(model)
    handle = pipelines["async_stream"].stream(run_args(messages))
    try:
        async for chunk in handle:
            if chunk.content:
                yield out.content(chunk.content)
    finally:
        await handle.aclose()
    yield out.finish()


async def haystack_thread_stream(model: str, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
    """`Pipeline.run` with a streaming callback in a worker thread, chunks passed to the loop one by one."""
    out = ChunkFormat(model)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[StreamingChunk | None] = asyncio.Queue()
    stop = threading.Event()

    def on_chunk(chunk: StreamingChunk) -> None:
        if stop.is_set():
            raise RuntimeError("client gone")
        loop.call_soon_threadsafe(queue.put_nowait, chunk)

    def run() -> None:
        data: dict[str, Any] = run_args(messages)
        data["llm"]["streaming_callback"] = on_chunk
        try:
            pipelines["sync_stream"].run(data)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    loop.run_in_executor(pool, run)
    try:
        while (chunk := await queue.get()) is not None:
            if chunk.content:
                yield out.content(chunk.content)
    finally:
        stop.set()
    yield out.finish()


async def agent_stream(model: str, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
    """`Agent.run_async` with an async streaming callback feeding the plainest SSE loop."""
    out = ChunkFormat(model)
    chunks: asyncio.Queue[StreamingChunk | None] = asyncio.Queue()

    async def on_chunk(chunk: StreamingChunk) -> None:
        chunks.put_nowait(chunk)

    async def run() -> None:
        try:
            await agents["agent_stream"].run_async(**agent_run_args(messages), streaming_callback=on_chunk)
        finally:
            chunks.put_nowait(None)

    task = asyncio.create_task(run())
    try:
        while (chunk := await chunks.get()) is not None:
            if chunk.content:
                yield out.content(chunk.content)
        await task  # a failed run fails the stream
    finally:
        task.cancel()
    yield out.finish()


async def relay_stream(model: str, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
    """The upstream's SSE relayed without Haystack or the openai SDK: what is left of streaming at all."""
    assert http is not None
    out = ChunkFormat(model)
    payload = {"model": UPSTREAM_MODEL, "messages": messages, "stream": True}
    async with http.stream("POST", "/chat/completions", json=payload) as upstream:
        async for line in upstream.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices") or ():
                if text := (choice.get("delta") or {}).get("content"):
                    yield out.content(text)
    yield out.finish()

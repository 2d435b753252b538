"""Streaming helpers for your wrappers. This file is yours: read it, edit it.

`streaming_generator` (for `run_chat_completion`) and `async_streaming_generator` (for the
`_async` methods) run a Haystack `Pipeline` or `Agent` and yield what it streams, ready to return
from a wrapper:

    def run_chat_completion(self, model, messages, body):
        return streaming_generator(
            pipeline=self.pipeline,
            pipeline_run_args={"prompt_builder": {"question": get_last_user_message(messages)}},
        )

For a Pipeline, give `pipeline_run_args` per component, as in `Pipeline.run`; for an Agent, give
`Agent.run`'s keyword arguments (`{"messages": [...]}`).

Callbacks let you react to what happens inside the run. Each may return text or events (or a
list of them) to put into the stream at that point, or None:

- `on_tool_call_start(name, arguments, id)`: the LLM asked for a tool call (arguments as JSON text).
- `on_tool_call_end(name, arguments, result, error)`: a tool the agent runs itself has answered.
  By default these two show the agent's tool calls in Open WebUI: a status while the tool runs, then
  a block with its arguments and result (`openwebui.show_tool_call_start` / `show_tool_call_end`;
  other clients get nothing). Pass None to show nothing, or your own functions.
- `on_reasoning(text, extra)`: a piece of the model's reasoning. Without this callback the
  reasoning is passed on as reasoning; with it, what you return replaces it.
- `on_pipeline_end(result)`: the run's final output, when everything has streamed. It holds what
  `Pipeline.run` returns: the last components' outputs, plus those of the components named in
  `include_outputs_from` (e.g. `{"retriever"}`, for the documents an answer drew on).

Tool calls that an Agent runs itself are internal: they are never sent to the client as tool
calls, or an agentic client such as Codex would run them again, and loop. The tool calls of a
pipeline without an Agent are for the client to run (tools it declared), so they are forwarded.
Force either with `forward_tool_calls=True` or `False`.
"""

import asyncio
import contextvars
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from haystack import Pipeline, tracing
from haystack.components.agents import Agent
from haystack.core.pipeline.pipeline import PipelineStreamHandle
from haystack.dataclasses import ChatMessage, StreamingChunk

from .events import Event, Usage
from .openwebui import show_tool_call_end, show_tool_call_start
from .runner import PushIterator, RunStopped, current_stop_flag

# Five yields are what the first token needs to pass the hand-offs to the socket (see `_Pacing`).
FIRST_CHUNKS_SENT_AT_ONCE = 5
# Chunks a run may be ahead of its reader before it waits for it.
CHUNKS_AHEAD = 128
# How often a pipeline thread waiting for its reader looks whether the reader left.
STOP_CHECK_SECONDS = 0.5

Injected = str | Event | list[str | Event] | None
Piece = str | StreamingChunk | Event

OnToolCallStart = Callable[[str, str, str | None], Injected]
OnToolCallEnd = Callable[[str, str, str, bool], Injected]
OnReasoning = Callable[[str, dict[str, Any]], Injected]
OnPipelineEnd = Callable[[dict[str, Any]], Injected]
AsyncChunkCallback = Callable[[StreamingChunk], Awaitable[None]]


def streaming_generator(
    pipeline: Pipeline | Agent,
    pipeline_run_args: dict[str, Any],
    *,
    on_tool_call_start: OnToolCallStart | None = show_tool_call_start,
    on_tool_call_end: OnToolCallEnd | None = show_tool_call_end,
    on_reasoning: OnReasoning | None = None,
    on_pipeline_end: OnPipelineEnd | None = None,
    forward_tool_calls: bool | None = None,
    include_outputs_from: set[str] | None = None,
) -> Iterator[Piece]:
    """Run `pipeline` and yield its chunks as they arrive (see `PipelineStream`)."""
    shaper = _ChunkShaper(on_tool_call_start, on_tool_call_end, on_reasoning, on_pipeline_end)
    shaper.forward_tool_calls = _forwards_tool_calls(pipeline, forward_tool_calls)
    shaper.callbacks_may_block = True  # a sync wrapper's: if the run goes to the event loop, they do not
    return PipelineStream(pipeline, pipeline_run_args, shaper, include_outputs_from)


class PipelineStream(PushIterator):
    """What `streaming_generator` returns: the pieces of one run, made on the event loop, pushed or pulled.

    When your wrapper returns this object as it is, the service does not iterate over it. A pipeline whose
    LLMs all stream asynchronously needs no thread for its stream: the service runs it on the event loop
    (`on_event_loop`, see `streams_on_event_loop`), and each call of a callback of yours, which may block, in
    a thread. Any other pipeline runs in the service's worker thread (`push_to`), which hands over each piece
    as its chunk arrives. Iterating over it yourself (pulling) runs the pipeline in a thread of its own, since
    a pipeline pushes its chunks into a callback.
    """

    def __init__(
        self,
        pipeline: Pipeline | Agent,
        run_args: dict[str, Any],
        shaper: "_ChunkShaper",
        include_outputs_from: set[str] | None = None,
    ) -> None:
        self.pipeline, self.run_args, self.shaper = pipeline, run_args, shaper
        self.include_outputs_from = include_outputs_from
        self._pulled: Iterator[Piece] | None = None

    def push_to(self, emit: Callable[[Piece], None]) -> None:
        client_gone = current_stop_flag()  # set by the service when the client disconnects

        def on_chunk(chunk: StreamingChunk) -> None:
            if client_gone is not None and client_gone.is_set():
                raise RunStopped("nobody is reading this stream any more")
            for piece in self.shaper.pieces(chunk):
                emit(piece)

        result = _run_blocking(self.pipeline, self.run_args, on_chunk, self.include_outputs_from)
        for piece in self.shaper.finish(result):
            emit(piece)

    def on_event_loop(self) -> AsyncIterator[Piece] | None:
        """The same pieces made on the event loop, when nothing of the run would block it there."""
        if not streams_on_event_loop(self.pipeline, self.run_args):
            return None
        return _pieces_on_loop(self.pipeline, self.run_args, self.shaper, self.include_outputs_from)

    def __next__(self) -> Piece:
        if self._pulled is None:
            self._pulled = self._pull()
        return next(self._pulled)

    def close(self) -> None:
        if self._pulled is not None:
            self._pulled.close()  # stops the pipeline's thread at its next chunk

    def _pull(self) -> Iterator[Piece]:
        """Run the pipeline in a thread of its own and yield its pieces as its chunks arrive."""
        # Bounded, so a reader that falls behind holds the pipeline (and its LLM) back in `on_chunk`.
        chunks: queue.Queue[StreamingChunk | None] = queue.Queue(maxsize=CHUNKS_AHEAD)
        client_gone = current_stop_flag()
        closed = threading.Event()  # set when whoever iterates this stops early
        outcome: dict[str, Any] = {}

        def stop_requested() -> bool:
            return closed.is_set() or (client_gone is not None and client_gone.is_set())

        def hand_over(chunk: StreamingChunk | None) -> bool:
            """Wait for room in `chunks`; False when nobody will read it any more."""
            while not stop_requested():
                try:
                    chunks.put(chunk, timeout=STOP_CHECK_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False

        def on_chunk(chunk: StreamingChunk) -> None:
            # A closure, not a bound method: Pipeline.run deep-copies its inputs.
            if not hand_over(chunk):
                raise RunStopped("nobody is reading this stream any more")

        def run() -> None:
            try:
                outcome["result"] = _run_blocking(self.pipeline, self.run_args, on_chunk, self.include_outputs_from)
            except BaseException as error:
                # Keep the error only for a reader: a stopped run's traceback would keep its upstream connection open.
                if not stop_requested():
                    outcome["error"] = error
            finally:
                hand_over(None)

        # In a copy of this context, so the pipeline sees the request's (`request_context.current_request()`), its
        # log lines name the request's id, and its spans go under the request's.
        threading.Thread(target=contextvars.copy_context().run, args=(run,), name="pipeline-run", daemon=True).start()
        try:
            while (chunk := chunks.get()) is not None:
                yield from self.shaper.pieces(chunk)
            if "error" in outcome:
                raise outcome.pop("error")
            if "result" in outcome:
                yield from self.shaper.finish(outcome["result"])
        finally:
            closed.set()


def async_streaming_generator(
    pipeline: Pipeline | Agent,
    pipeline_run_args: dict[str, Any],
    *,
    on_tool_call_start: OnToolCallStart | None = show_tool_call_start,
    on_tool_call_end: OnToolCallEnd | None = show_tool_call_end,
    on_reasoning: OnReasoning | None = None,
    on_pipeline_end: OnPipelineEnd | None = None,
    forward_tool_calls: bool | None = None,
    include_outputs_from: set[str] | None = None,
) -> AsyncIterator[Piece]:
    """Run `pipeline` on the event loop and yield its chunks; stopping the iteration cancels the run."""
    shaper = _ChunkShaper(on_tool_call_start, on_tool_call_end, on_reasoning, on_pipeline_end)
    shaper.forward_tool_calls = _forwards_tool_calls(pipeline, forward_tool_calls)
    return _pieces_on_loop(pipeline, pipeline_run_args, shaper, include_outputs_from)


async def _pieces_on_loop(
    pipeline: Pipeline | Agent,
    run_args: dict[str, Any],
    shaper: "_ChunkShaper",
    include_outputs_from: set[str] | None = None,
) -> AsyncIterator[Piece]:
    """One run on the event loop, by the shortest way its shape allows."""
    pacing = _Pacing()
    if isinstance(pipeline, Agent):
        run: _CallbackRun | PipelineStreamHandle = _CallbackRun(
            lambda on_chunk: pipeline.run_async(**run_args, streaming_callback=on_chunk), pacing
        )
    elif (name := lone_async_streamer(pipeline, run_args)) is not None:
        run = _CallbackRun(lambda on_chunk: _run_lone_component(pipeline, name, run_args[name], on_chunk), pacing)
    else:
        run = pipeline.stream(_with_pacing(pipeline, run_args, pacing), include_outputs_from=include_outputs_from)
    try:
        async for chunk in run:
            pacing.chunk_taken()
            for piece in await shaper.pieces_on_loop(chunk):
                yield piece
    finally:
        await run.aclose()
    for piece in await shaper.finish_on_loop(run.result):
        yield piece


def streams_on_event_loop(pipeline: Pipeline | Agent, run_args: dict[str, Any]) -> bool:
    """Whether a sync wrapper's pipeline can stream on the event loop instead of in a worker thread.

    It can when every component that streams does so asynchronously (for an Agent: its chat generator),
    as Haystack's async runs then send everything that may block to a thread of asyncio's default pool:
    the sync steps of a `Pipeline.stream` (a retriever, a prompt builder), an Agent's sync tools and hooks.
    A stream then holds a thread only while such a step runs, not while the LLM talks, so `THREAD_POOL_SIZE`
    does not bound how many are open. It cannot with a component that streams only synchronously (its chunks
    would not stream) or a `streaming_callback` of yours in the run args (it may block). The callbacks you
    give the helper, such as `on_pipeline_end`, do not count: each call of one runs in a thread.
    """
    if isinstance(pipeline, Agent):
        return _streams_asynchronously(pipeline) and "streaming_callback" not in run_args
    streaming = _streaming_components(pipeline)
    return bool(streaming) and all(
        _streams_asynchronously(pipeline.get_component(name)) and "streaming_callback" not in (run_args.get(name) or {})
        for name in streaming
    )


def _streams_asynchronously(component: Any) -> bool:
    """Whether a component can stream on the event loop: it has `run_async` (an Agent: its chat generator too)."""
    if isinstance(component, Agent) and not getattr(component.chat_generator, "__haystack_supports_async__", False):
        return False
    return getattr(component, "__haystack_supports_async__", False)


def lone_async_streamer(pipeline: Pipeline, run_args: dict[str, Any]) -> str | None:
    """The name of the pipeline's only component when it can stream asynchronously (an LLM and nothing else).

    Such a run needs none of `Pipeline`'s scheduling, so the helpers call the component's `run_async`
    directly: a few milliseconds less to the first token. Anything else goes through the pipeline: other
    shapes, an Agent, inputs the component does not take (for Haystack's own error), your own
    `streaming_callback`, and traced runs (for their spans).
    """
    if len(pipeline.graph) != 1 or tracing.is_tracing_enabled():
        return None
    (name,) = pipeline.graph.nodes
    component = pipeline.get_component(name)
    if set(run_args) != {name} or isinstance(component, Agent) or not _streams_asynchronously(component):
        return None
    accepted = pipeline.inputs(include_components_with_connected_inputs=True)[name]
    given = run_args[name]
    if "streaming_callback" not in accepted or "streaming_callback" in given or not set(given) <= set(accepted):
        return None
    return name


async def _run_lone_component(
    pipeline: Pipeline, name: str, inputs: dict[str, Any], on_chunk: AsyncChunkCallback
) -> dict[str, Any]:
    """What `Pipeline.run` returns for a one-component pipeline, without the scheduling around it."""
    pipeline.warm_up()  # as Pipeline.run does on every run; components warm up once
    return {name: await pipeline.get_component(name).run_async(**inputs, streaming_callback=on_chunk)}


class _CallbackRun:
    """A run that streams through a callback, iterated like `Pipeline.stream`'s handle.

    `async for` gives the chunks as they arrive; `result` holds the run's output afterwards; `aclose`
    cancels a run nobody reads any more. `pacing` holds the run back in its callback (see `_Pacing`).
    """

    def __init__(self, start: Callable[[AsyncChunkCallback], Awaitable[dict[str, Any]]], pacing: "_Pacing") -> None:
        self._chunks: asyncio.Queue[StreamingChunk | None] = asyncio.Queue()  # bounded by `pacing`
        self._pacing = pacing
        self._task = asyncio.ensure_future(start(self._on_chunk))
        self._task.add_done_callback(lambda _: self._chunks.put_nowait(None))
        self.result: dict[str, Any] = {}

    async def _on_chunk(self, chunk: StreamingChunk) -> None:
        self._chunks.put_nowait(chunk)
        await self._pacing.chunk_made(chunk)

    async def __aiter__(self) -> AsyncIterator[StreamingChunk]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk
        self.result = self._task.result()  # the run's own error, if it failed

    async def aclose(self) -> None:
        """Cancel the run if it is still going, and give it a moment to close its connection."""
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        if self._task.done() and not self._task.cancelled():
            # A run that failed just as its reader left: nobody waits for that error, so asyncio need not log it.
            self._task.exception()


def _run_blocking(
    pipeline: Pipeline | Agent,
    run_args: dict[str, Any],
    on_chunk: Callable[[StreamingChunk], None],
    include_outputs_from: set[str] | None = None,
) -> dict[str, Any]:
    """One run with `on_chunk` as the streaming callback of every component that can stream."""
    if isinstance(pipeline, Agent):
        return pipeline.run(**run_args, streaming_callback=on_chunk)
    data = {name: dict(inputs) for name, inputs in run_args.items()}
    for name in _streaming_components(pipeline):
        data.setdefault(name, {})["streaming_callback"] = on_chunk
    return pipeline.run(data, include_outputs_from=include_outputs_from)


def _streaming_components(pipeline: Pipeline, *, async_only: bool = False) -> list[str]:
    """Names of the components that take a `streaming_callback` (`Pipeline.stream` streams only async ones)."""
    return [
        name
        for name, sockets in pipeline.inputs(include_components_with_connected_inputs=True).items()
        if "streaming_callback" in sockets and (not async_only or _streams_asynchronously(pipeline.get_component(name)))
    ]


def _with_pacing(pipeline: Pipeline, run_args: dict[str, Any], pacing: "_Pacing") -> dict[str, Any]:
    """The run args, plus `pacing` as the streaming callback of each async streaming component.

    `Pipeline.stream` queues chunks without pausing and without limit; it awaits the component's own callback
    after queueing each, which is where `pacing` holds the run. A callback of yours in the run args is kept
    instead (it is then yours to pace).
    """
    data = {name: dict(inputs) for name, inputs in run_args.items()}
    for name in _streaming_components(pipeline, async_only=True):
        data.setdefault(name, {}).setdefault("streaming_callback", pacing.callback())
    return data


class _Pacing:
    """How far a run on the event loop may get ahead of whoever reads its chunks; awaited in its streaming callback.

    - When the LLM sends a burst, the whole burst would be read before the first chunk goes out. Yielding to
      the event loop after each of the first few chunks sends the first token at once (measured: 11 ms instead
      of 18 ms on a 2-core machine); later chunks are left to batch, which keeps throughput.
    - A reader that falls CHUNKS_AHEAD chunks behind (a client that stopped reading: see `runner.EventStream`)
      holds the run here, so the LLM is read no faster than the client takes the answer.
    """

    def __init__(self) -> None:
        self._first_chunks_left = FIRST_CHUNKS_SENT_AT_ONCE
        self._unread = 0
        self._caught_up = asyncio.Event()

    async def chunk_made(self, chunk: StreamingChunk) -> None:
        self._unread += 1
        if self._first_chunks_left:
            self._first_chunks_left -= 1
            await asyncio.sleep(0)
        while self._unread > CHUNKS_AHEAD:
            self._caught_up.clear()
            await self._caught_up.wait()

    def chunk_taken(self) -> None:
        self._unread -= 1
        if self._unread <= CHUNKS_AHEAD:
            self._caught_up.set()

    def callback(self) -> AsyncChunkCallback:
        """`chunk_made` as a closure: Pipeline.run deep-copies its inputs, and a bound method with them."""

        async def chunk_made(chunk: StreamingChunk) -> None:
            await self.chunk_made(chunk)

        return chunk_made


def _forwards_tool_calls(pipeline: Pipeline | Agent, forward_tool_calls: bool | None) -> bool:
    """Unless told otherwise, forward tool calls only when no Agent is there to run them."""
    if forward_tool_calls is not None:
        return forward_tool_calls
    if isinstance(pipeline, Agent):
        return False
    return not any(isinstance(instance, Agent) for _, instance in pipeline.walk())


def _injected(value: Injected) -> list[Piece]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class _ChunkShaper:
    """Applies the callbacks and the tool-call rule to each chunk, and notes whether usage streamed."""

    def __init__(
        self,
        on_tool_call_start: OnToolCallStart | None,
        on_tool_call_end: OnToolCallEnd | None,
        on_reasoning: OnReasoning | None,
        on_pipeline_end: OnPipelineEnd | None,
    ) -> None:
        self.on_tool_call_start = on_tool_call_start
        self.on_tool_call_end = on_tool_call_end
        self.on_reasoning = on_reasoning
        self.on_pipeline_end = on_pipeline_end
        self.forward_tool_calls = False
        # True for a sync wrapper's callbacks: on the event loop, each call of one then runs in a thread.
        self.callbacks_may_block = False
        self.calls_being_streamed: dict[int, dict[str, str]] = {}
        self.saw_usage = False

    def calls_only_builtin_callbacks(self) -> bool:
        """True when no callback of yours is set: the defaults (which never block) or none."""
        return (
            self.on_reasoning is None
            and self.on_pipeline_end is None
            and self.on_tool_call_start in (None, show_tool_call_start)
            and self.on_tool_call_end in (None, show_tool_call_end)
        )

    async def pieces_on_loop(self, chunk: StreamingChunk) -> list[Piece]:
        """`pieces`, called from the event loop: in a thread when it may call a callback of yours that may block."""
        if self.callbacks_may_block and self._may_call_yours(chunk):
            return await asyncio.to_thread(self.pieces, chunk)
        return self.pieces(chunk)

    async def finish_on_loop(self, result: dict[str, Any]) -> list[Piece]:
        """`finish`, called from the event loop: in a thread when `on_pipeline_end` is set and may block."""
        if self.callbacks_may_block and self.on_pipeline_end is not None:
            return await asyncio.to_thread(self.finish, result)
        return self.finish(result)

    def _may_call_yours(self, chunk: StreamingChunk) -> bool:
        """Whether `pieces(chunk)` may call a callback other than the built-in ones, which never block."""
        if chunk.reasoning is not None and self.on_reasoning is not None:
            return True
        at_tool_calls = chunk.finish_reason == "tool_calls" or chunk.tool_call_result is not None
        return at_tool_calls and not self.calls_only_builtin_callbacks()

    def pieces(self, chunk: StreamingChunk) -> list[Piece]:
        """What to yield for one chunk: usually just the chunk."""
        if isinstance(chunk.meta.get("usage"), dict):
            self.saw_usage = True
        if chunk.reasoning is not None and self.on_reasoning is not None:
            return _injected(self.on_reasoning(chunk.reasoning.reasoning_text, chunk.reasoning.extra))
        out: list[Piece] = []
        if chunk.tool_calls:
            self._collect_tool_call_pieces(chunk)
            if self.forward_tool_calls:
                out.append(chunk)
        elif chunk.tool_call_result is None:
            out.append(chunk)
        if chunk.finish_reason == "tool_calls" or chunk.tool_call_result is not None:
            out.extend(self._announce_tool_calls())
        if chunk.tool_call_result is not None and self.on_tool_call_end is not None:
            result = chunk.tool_call_result
            arguments = json.dumps(result.origin.arguments)
            out.extend(
                _injected(self.on_tool_call_end(result.origin.tool_name, arguments, result.result, result.error))
            )
        return out

    def _collect_tool_call_pieces(self, chunk: StreamingChunk) -> None:
        for delta in chunk.tool_calls or ():
            call = self.calls_being_streamed.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.id or ""
            call["name"] = call["name"] or delta.tool_name or ""
            call["arguments"] += delta.arguments or ""

    def _announce_tool_calls(self) -> list[Piece]:
        """on_tool_call_start for each call the LLM has finished streaming."""
        calls, self.calls_being_streamed = self.calls_being_streamed, {}
        if self.on_tool_call_start is None:
            return []
        if self.forward_tool_calls and self.on_tool_call_start is show_tool_call_start:
            return []  # the default display is for tools run here: a client shows the calls it runs itself
        out: list[Piece] = []
        for call in calls.values():
            out.extend(_injected(self.on_tool_call_start(call["name"], call["arguments"], call["id"] or None)))
        return out

    def finish(self, result: dict[str, Any]) -> list[Piece]:
        """Usage from the final output when no chunk carried it, then whatever on_pipeline_end adds."""
        out: list[Piece] = []
        if not self.saw_usage and (usage := usage_from_result(result)):
            out.append(usage)
        if self.on_pipeline_end is not None:
            out.extend(_injected(self.on_pipeline_end(result)))
        return out


def usage_from_result(result: dict[str, Any]) -> Usage | None:
    """Token usage from an Agent's `token_usage`, or from the replies' meta in a Pipeline's output.

    None when nothing was counted: an Agent whose LLM server reported no usage has an empty `token_usage`,
    which is no count at all, not zero tokens.
    """
    totals = [result["token_usage"]] if _has_counts(result.get("token_usage")) else []
    if not totals:
        for output in (result, *(value for value in result.values() if isinstance(value, dict))):
            for reply in output.get("replies") or ():
                if isinstance(reply, ChatMessage) and _has_counts(reply.meta.get("usage")):
                    totals.append(reply.meta["usage"])
    if not totals:
        return None
    return Usage(
        prompt_tokens=sum(usage.get("prompt_tokens") or 0 for usage in totals),
        completion_tokens=sum(usage.get("completion_tokens") or 0 for usage in totals),
    )


def _has_counts(usage: object) -> bool:
    return isinstance(usage, dict) and ("prompt_tokens" in usage or "completion_tokens" in usage)

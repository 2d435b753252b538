"""How the streaming helpers run a pipeline: on the event loop, in the service's worker thread, or pulled.

This is the service's machinery behind `streaming.py` (which holds the policy: callbacks, the tool-call
rule). A run starts the shortest way its shape allows:

- an async helper, or a sync one whose LLMs all stream asynchronously (`streams_on_event_loop`), runs on the
  event loop and holds no thread while the LLM talks;
- a pipeline that is one async LLM and nothing else skips `Pipeline`'s scheduling (`lone_async_streamer`);
- any other sync run runs in the service's worker thread and pushes each piece as its chunk arrives;
- a wrapper that iterates a sync helper's stream itself runs the pipeline in a thread of its own.

The first three are fast paths, as is yielding to the loop after each of the first chunks (`Pacing`).
`STREAMING_FAST_PATHS=off` turns them off for debugging: every sync run then goes to the worker thread, every
async run through `Pipeline.stream` (or `Agent.run_async`), with the same backpressure.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

from haystack import Pipeline, tracing
from haystack.components.agents import Agent
from haystack.core.pipeline.pipeline import PipelineStreamHandle
from haystack.dataclasses import ChatMessage, StreamingChunk

from ..services import current_services
from .base_wrapper import Piece
from .events import Usage
from .remote_mcp import agent_calls_before
from .runner import RunStopped, current_stop_flag
from .token_usage import total_usage, usage_from

# Five yields are what the first token needs to pass the hand-offs to the socket (see `Pacing`).
FIRST_CHUNKS_SENT_AT_ONCE = 5
# Chunks a run may be ahead of its reader before it waits for it, and characters of text in them (see
# `runner.MAX_BUFFERED_CHARS`: 128 long chunks would hold megabytes).
CHUNKS_AHEAD = 128
CHARS_AHEAD = 64 * 1024
# How often a pipeline thread waiting for its reader looks whether the reader left.
STOP_CHECK_SECONDS = 0.5

AsyncChunkCallback = Callable[[StreamingChunk], Awaitable[None]]
OutputNames = set[str] | None


def fast_paths() -> bool:
    """STREAMING_FAST_PATHS of the serving app (off: every run takes the general path); on outside one."""
    serving = current_services()
    return serving is None or serving.settings.streaming_fast_paths


class ChunkPolicy(Protocol):
    """The policy a streaming helper applies to a run's chunks; the user's `streaming.py` implements it.

    The engine calls it and never imports it: a user may reshape their helpers as they like while these three
    methods keep their meaning.
    """

    def pieces(self, chunk: StreamingChunk) -> list[Piece]:
        """What to yield for one chunk the pipeline streamed (often just the chunk)."""
        ...

    def finish(self, result: dict[str, Any]) -> list[Piece]:
        """What to yield once the run has ended, from its final output."""
        ...

    def may_block(self, chunk: StreamingChunk | None) -> bool:
        """Whether `pieces(chunk)` (`finish` for None) may block, so that the engine calls it off the event loop."""
        ...


class PipelineStream(Iterator[Piece]):
    """What `streaming_generator` returns: the pieces of one run, made on the event loop, pushed or pulled.

    It is a `runner.CallbackStream`: the service does not iterate over it but asks `on_event_loop()` for an
    async form (then no thread is held) or else calls `push_to` in its worker thread. Iterating over it yourself
    (pulling) runs the pipeline in a thread of its own, since a pipeline pushes its chunks into a callback.
    """

    def __init__(
        self, pipeline: Pipeline | Agent, run_args: dict[str, Any], shaper: ChunkPolicy, outputs: OutputNames
    ) -> None:
        self.pipeline, self.run_args, self.shaper, self.outputs = pipeline, run_args, shaper, outputs
        self._pulled: Iterator[Piece] | None = None

    def push_to(self, emit: Callable[[Piece], None]) -> None:
        client_gone = current_stop_flag()  # set by the service when the client disconnects

        def on_chunk(chunk: StreamingChunk) -> None:
            if client_gone is not None and client_gone.is_set():
                raise RunStopped("nobody is reading this stream any more")
            for event in agent_calls_before(chunk):
                emit(event)
            for piece in self.shaper.pieces(chunk):
                emit(piece)

        result = run_blocking(self.pipeline, self.run_args, on_chunk, self.outputs)
        for piece in self.shaper.finish(result):
            emit(piece)

    def on_event_loop(self) -> AsyncIterator[Piece] | None:
        """The same pieces made on the event loop, when nothing of the run would block it there."""
        if not fast_paths() or not streams_on_event_loop(self.pipeline, self.run_args):
            return None
        return pieces_on_loop(self.pipeline, self.run_args, self.shaper, self.outputs)

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
                outcome["result"] = run_blocking(self.pipeline, self.run_args, on_chunk, self.outputs)
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
                yield from agent_calls_before(chunk)
                yield from self.shaper.pieces(chunk)
            if "error" in outcome:
                raise outcome.pop("error")
            if "result" in outcome:
                yield from self.shaper.finish(outcome["result"])
        finally:
            closed.set()


async def pieces_on_loop(
    pipeline: Pipeline | Agent, run_args: dict[str, Any], shaper: ChunkPolicy, outputs: OutputNames
) -> AsyncIterator[Piece]:
    """One run on the event loop, by the shortest way its shape allows."""
    pacing = Pacing()
    if isinstance(pipeline, Agent):
        run: CallbackRun | PipelineStreamHandle = CallbackRun(
            lambda on_chunk: pipeline.run_async(**run_args, streaming_callback=on_chunk), pacing
        )
    elif fast_paths() and (name := lone_async_streamer(pipeline, run_args)) is not None:
        run = CallbackRun(lambda on_chunk: _run_lone_component(pipeline, name, run_args[name], on_chunk), pacing)
    else:
        run = pipeline.stream(_with_pacing(pipeline, run_args, pacing), include_outputs_from=outputs)
    try:
        async for chunk in run:
            pacing.chunk_taken(chunk)
            for piece in agent_calls_before(chunk):
                yield piece
            for piece in await _in_thread_if_it_may_block(shaper.pieces, chunk, shaper.may_block(chunk)):
                yield piece
    finally:
        await run.aclose()
    for piece in await _in_thread_if_it_may_block(shaper.finish, run.result, shaper.may_block(None)):
        yield piece


async def _in_thread_if_it_may_block(
    function: Callable[[Any], list[Piece]], value: Any, may_block: bool
) -> list[Piece]:
    """Call a shaper step from the event loop: in a thread when it may call a callback of a sync wrapper."""
    return await asyncio.to_thread(function, value) if may_block else function(value)


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
    """What `Pipeline.run` returns for a one-component pipeline (its own output, whatever the
    `include_outputs_from`), without the scheduling around it."""
    pipeline.warm_up()  # as Pipeline.run does on every run; components warm up once
    return {name: await pipeline.get_component(name).run_async(**inputs, streaming_callback=on_chunk)}


class CallbackRun:
    """A run that streams through a callback, iterated like `Pipeline.stream`'s handle.

    `async for` gives the chunks as they arrive; `result` holds the run's output afterwards; `aclose`
    cancels a run nobody reads any more. `pacing` holds the run back in its callback (see `Pacing`).
    """

    def __init__(self, start: Callable[[AsyncChunkCallback], Awaitable[dict[str, Any]]], pacing: "Pacing") -> None:
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


def run_blocking(
    pipeline: Pipeline | Agent,
    run_args: dict[str, Any],
    on_chunk: Callable[[StreamingChunk], None],
    outputs: OutputNames = None,
) -> dict[str, Any]:
    """One run with `on_chunk` as the streaming callback of every component that can stream."""
    if isinstance(pipeline, Agent):
        return pipeline.run(**run_args, streaming_callback=on_chunk)
    data = {name: dict(inputs) for name, inputs in run_args.items()}
    for name in _streaming_components(pipeline):
        data.setdefault(name, {})["streaming_callback"] = on_chunk
    return pipeline.run(data, include_outputs_from=outputs)


def _streaming_components(pipeline: Pipeline, *, async_only: bool = False) -> list[str]:
    """Names of the components that take a `streaming_callback` (`Pipeline.stream` streams only async ones)."""
    return [
        name
        for name, sockets in pipeline.inputs(include_components_with_connected_inputs=True).items()
        if "streaming_callback" in sockets and (not async_only or _streams_asynchronously(pipeline.get_component(name)))
    ]


def _with_pacing(pipeline: Pipeline, run_args: dict[str, Any], pacing: "Pacing") -> dict[str, Any]:
    """The run args, plus `pacing` as the streaming callback of each async streaming component.

    `Pipeline.stream` queues chunks without pausing and without limit; it awaits the component's own callback
    after queueing each, which is where `pacing` holds the run. A callback of yours in the run args is kept
    instead (it is then yours to pace).
    """
    data = {name: dict(inputs) for name, inputs in run_args.items()}
    for name in _streaming_components(pipeline, async_only=True):
        data.setdefault(name, {}).setdefault("streaming_callback", pacing.callback())
    return data


class Pacing:
    """How far a run on the event loop may get ahead of whoever reads its chunks; awaited in its streaming callback.

    - When the LLM sends a burst, the whole burst would be read before the first chunk goes out. Yielding to
      the event loop after each of the first few chunks sends the first token at once (measured: 11 ms instead
      of 18 ms on a 2-core machine); later chunks are left to batch, which keeps throughput. A fast path: off
      with the others.
    - A reader that falls CHUNKS_AHEAD chunks or CHARS_AHEAD characters behind (a client that stopped reading: see
      `runner.EventStream`) holds the run here, so the LLM is read no faster than the client takes the answer.
    """

    def __init__(self) -> None:
        self._first_chunks_left = FIRST_CHUNKS_SENT_AT_ONCE if fast_paths() else 0
        self._unread = 0
        self._unread_chars = 0
        self._caught_up = asyncio.Event()

    async def chunk_made(self, chunk: StreamingChunk) -> None:
        self._unread += 1
        self._unread_chars += _chunk_chars(chunk)
        if self._first_chunks_left:
            self._first_chunks_left -= 1
            await asyncio.sleep(0)
        while self._behind():
            self._caught_up.clear()
            await self._caught_up.wait()

    def chunk_taken(self, chunk: StreamingChunk) -> None:
        self._unread -= 1
        self._unread_chars -= _chunk_chars(chunk)
        if not self._behind():
            self._caught_up.set()

    def _behind(self) -> bool:
        return self._unread > CHUNKS_AHEAD or self._unread_chars > CHARS_AHEAD

    def callback(self) -> AsyncChunkCallback:
        """`chunk_made` as a closure: Pipeline.run deep-copies its inputs, and a bound method with them."""

        async def chunk_made(chunk: StreamingChunk) -> None:
            await self.chunk_made(chunk)

        return chunk_made


def _chunk_chars(chunk: StreamingChunk) -> int:
    """Characters of text a chunk holds (its answer and reasoning; tool-call arguments are rarely long)."""
    reasoning = chunk.reasoning
    return len(chunk.content) + (len(reasoning.reasoning_text) if reasoning is not None else 0)


def usage_from_result(result: dict[str, Any]) -> Usage | None:
    """Token usage from an Agent's `token_usage`, or from the replies' meta in a Pipeline's output.

    None when nothing was counted: an Agent whose LLM server reported no usage has an empty `token_usage`,
    which is no count at all, not zero tokens.
    """
    if (usage := usage_from(result.get("token_usage"))) is not None:
        return usage
    outputs = (result, *(value for value in result.values() if isinstance(value, dict)))
    return total_usage(
        [reply.meta for output in outputs for reply in output.get("replies") or () if isinstance(reply, ChatMessage)]
    )

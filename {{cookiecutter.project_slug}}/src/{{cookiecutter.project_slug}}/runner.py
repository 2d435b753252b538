"""Runs a wrapper method and turns whatever it returns into one stream of events.

Async methods run on the event loop. Sync methods run in a bounded thread pool, never on the loop,
and a sync generator is drained in that same worker thread. Both feed an `EventStream` that the
HTTP layer reads in batches. Closing the stream (the client went away) cancels an async run and
sets the stop flag a sync run checks at its next chunk.
"""

import asyncio
import contextvars
import inspect
import json
import logging
import threading
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from haystack.dataclasses import ChatMessage, StreamingChunk

from .errors import OpenAIError, refusal_by_llm_server
from .events import FINISH_REASONS, Event, Finish, ReasoningDelta, StreamError, TextDelta, ToolCallDelta, Usage

logger = logging.getLogger(__name__)

_stop_flag: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stop_flag", default=None)


def current_stop_flag() -> threading.Event | None:
    """The flag that is set when the client of the current sync run has gone away.

    Code that runs a pipeline in its own thread (see `streaming.streaming_generator`) checks it at each chunk.
    """
    return _stop_flag.get()


class PushIterator(Iterator[Any]):
    """An iterator that can also push its items to a function, for sources that produce by callback.

    A sync wrapper may return one (as `streaming.streaming_generator` does): the service then calls
    `push_to` in its worker thread instead of iterating, which spares the source a thread of its own;
    or, when `on_event_loop` offers an async form, iterates that on the event loop and holds no thread.
    """

    @abstractmethod
    def push_to(self, emit: Callable[[Any], None]) -> None:
        """Produce every item, calling `emit` with each as soon as it exists."""

    def on_event_loop(self) -> AsyncIterator[Any] | None:
        """The same items made on the event loop, for a source that can run there: then no thread waits on it."""
        return None


class RunStopped(Exception):
    """Raised inside a pipeline to abandon a run nobody is listening to any more."""


def events_from(piece: object) -> list[Event]:
    """Translate one thing a wrapper produced into events."""
    if isinstance(piece, str):
        return [TextDelta(piece)] if piece else []
    if isinstance(piece, StreamingChunk):
        return _events_from_chunk(piece)
    if isinstance(piece, ChatMessage):
        return _events_from_message(piece)
    if isinstance(piece, Event):
        return [piece]
    raise TypeError(f"A wrapper produced {type(piece).__name__}; expected str, StreamingChunk, ChatMessage or an event")


def _events_from_chunk(chunk: StreamingChunk) -> list[Event]:
    events: list[Event] = []
    if chunk.reasoning is not None and chunk.reasoning.reasoning_text:
        events.append(ReasoningDelta(chunk.reasoning.reasoning_text))
    if chunk.content:
        events.append(TextDelta(chunk.content))
    for call in chunk.tool_calls or ():
        events.append(ToolCallDelta(index=call.index, id=call.id, name=call.tool_name, arguments=call.arguments or ""))
    if usage := _usage_from_meta(chunk.meta):
        events.append(usage)
    # "stop" and "tool_calls" follow from what was sent; Haystack's "tool_call_results" is internal.
    if chunk.finish_reason in ("length", "content_filter"):
        events.append(Finish(chunk.finish_reason))
    return events


def _events_from_message(message: ChatMessage) -> list[Event]:
    events: list[Event] = []
    if message.reasoning is not None and message.reasoning.reasoning_text:
        events.append(ReasoningDelta(message.reasoning.reasoning_text))
    if message.text:
        events.append(TextDelta(message.text))
    for index, call in enumerate(message.tool_calls):
        events.append(ToolCallDelta(index=index, id=call.id, name=call.tool_name, arguments=json.dumps(call.arguments)))
    if usage := _usage_from_meta(message.meta):
        events.append(usage)
    if message.meta.get("finish_reason") in FINISH_REASONS - {"stop", "tool_calls"}:
        events.append(Finish(message.meta["finish_reason"]))
    return events


def _usage_from_meta(meta: dict[str, Any]) -> Usage | None:
    usage = meta.get("usage")
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    return Usage(prompt_tokens=usage.get("prompt_tokens") or 0, completion_tokens=usage.get("completion_tokens") or 0)


class EventStream:
    """What one run produces, read in batches so a burst of chunks costs one write."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: deque[Event] = deque()
        # Events from a worker thread wait here until the loop takes them: one wake-up of the loop per batch.
        # Not empty means a hand-off to the loop is already scheduled.
        self._from_thread: list[Event] = []
        self._from_thread_lock = threading.Lock()
        self._finished = False
        self._waiter: asyncio.Future[None] | None = None
        self.stop_flag = threading.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, events: list[Event]) -> None:
        if events:  # an empty chunk (e.g. a role-only delta) must not wake the reader for nothing
            self._events.extend(events)
            self._wake()

    def put_from_thread(self, events: list[Event]) -> None:
        """`put` from a worker thread. A fast sync stream makes many chunks while the loop is busy elsewhere;
        they travel as one batch, instead of one cross-thread wake-up of the loop each."""
        if not events:
            return
        with self._from_thread_lock:
            handoff_scheduled = bool(self._from_thread)
            self._from_thread.extend(events)
        if not handoff_scheduled:
            self._loop.call_soon_threadsafe(self._take_from_thread)

    def _take_from_thread(self) -> None:
        with self._from_thread_lock:
            events, self._from_thread = self._from_thread, []
        self.put(events)

    def finish(self) -> None:
        self._finished = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next_batch(self, timeout: float | None = None) -> list[Event] | None:
        """The events produced since the last call; [] when `timeout` passed first; None at the end."""
        if not self._events and not self._finished:
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(timeout, self._wake) if timeout is not None else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self._events:
            batch = list(self._events)
            self._events.clear()
            return batch
        return None if self._finished else []

    def close(self) -> None:
        """Stop the run: nobody reads it any more."""
        self.stop_flag.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()


class Runner:
    """Starts wrapper runs; owns the thread pools that sync code runs in. Create it on the running event loop."""

    def __init__(self, thread_pool_size: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=thread_pool_size, thread_name_prefix="wrapper")
        # asyncio's default pool runs the sync steps of pipelines that stream on the event loop (Haystack sends
        # them there), as well as file reads. Python sizes it to the cores + 4, which would quietly cap how many
        # retrievers run at once; give it as many threads as the wrappers' own pool. Threads start only when needed.
        self._step_pool = ThreadPoolExecutor(max_workers=thread_pool_size, thread_name_prefix="step")
        asyncio.get_running_loop().set_default_executor(self._step_pool)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._step_pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a wrapper function that is not a run (e.g. `run_file_upload`): async on the loop, sync in the pool."""
        if inspect.iscoroutinefunction(function):
            return await function(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def start(self, method: Callable[..., Any], *args: Any) -> EventStream:
        """Begin running `method(*args)` in the background; read its output from the returned stream."""
        loop = asyncio.get_running_loop()
        stream = EventStream(loop)
        stream._task = loop.create_task(self._produce(stream, method, args))
        return stream

    async def collect(self, method: Callable[..., Any], *args: Any) -> list[Event]:
        """Everything `method(*args)` produces, for `stream: false`.

        No background task and no hand-off per chunk: the request itself awaits the run, so a client that
        leaves cancels it as usual (and a sync run stops at its next chunk).
        """
        events: list[Event] = []
        output = _Output(events.extend, events.extend, threading.Event())
        try:
            await self._run(method, args, output)
        finally:
            output.stop_flag.set()
        return events

    async def _produce(self, stream: EventStream, method: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            await self._run(method, args, _Output(stream.put, stream.put_from_thread, stream.stop_flag))
        finally:
            stream.finish()

    async def _run(self, method: Callable[..., Any], args: tuple[Any, ...], output: "_Output") -> None:
        """Call the wrapper method and emit events for whatever it returns; failures become a StreamError."""
        loop = asyncio.get_running_loop()
        try:
            if inspect.isasyncgenfunction(method):
                result = method(*args)  # `async def` with `yield`: nothing to await, iterate it below
            elif inspect.iscoroutinefunction(method):
                result = _on_event_loop_if_it_can(await method(*args))
            else:
                result = await loop.run_in_executor(
                    self._pool, contextvars.copy_context().run, _call_in_thread, output, method, args
                )
            if isinstance(result, Iterator):
                # An async method handed back a sync generator: drain it off the loop too.
                await loop.run_in_executor(self._pool, contextvars.copy_context().run, _drain_in_thread, output, result)
            elif isinstance(result, AsyncIterator):
                async for piece in result:
                    output.emit(events_from(piece))
            elif result is not None:
                output.emit(events_from(result))
        except asyncio.CancelledError:
            raise
        except OpenAIError as error:
            # A wrapper may refuse a request on purpose (e.g. 400 for input it cannot use): pass that on as is.
            output.emit([StreamError(error.message, error.type, error.code, error.status, error.param)])
        except Exception as error:
            if (refusal := refusal_by_llm_server(error)) is not None:
                # Not a failure of the service: the client learns why (e.g. its conversation is too long).
                logger.warning("%s", refusal.message)
                output.emit([StreamError(refusal.message, refusal.type, refusal.code, refusal.status)])
            elif not output.stop_flag.is_set():
                logger.exception("Wrapper %s failed", getattr(method, "__qualname__", method))
                output.emit([StreamError(f"The pipeline failed ({type(error).__name__}); see the server log.")])


@dataclass(slots=True)
class _Output:
    """Where a run's events go: `emit` on the event loop, `emit_from_thread` from a worker thread."""

    emit: Callable[[list[Event]], None]
    emit_from_thread: Callable[[list[Event]], None]
    stop_flag: threading.Event


def _call_in_thread(output: _Output, method: Callable[..., Any], args: tuple[Any, ...]) -> object:
    """Call a sync wrapper method; drain a sync generator right here so the run keeps its worker."""
    _stop_flag.set(output.stop_flag)
    result = _on_event_loop_if_it_can(method(*args))
    if isinstance(result, Iterator):
        _drain_in_thread(output, result)
        return None
    return result


def _on_event_loop_if_it_can(result: object) -> object:
    """Run a stream on the event loop when it can run there, freeing the worker at once (see `PushIterator`)."""
    if isinstance(result, PushIterator) and (on_loop := result.on_event_loop()) is not None:
        return on_loop
    return result


def _drain_in_thread(output: _Output, pieces: Iterator[object]) -> None:
    _stop_flag.set(output.stop_flag)
    if isinstance(pieces, PushIterator):
        pieces.push_to(lambda piece: output.emit_from_thread(events_from(piece)))
        return
    try:
        for piece in pieces:
            if output.stop_flag.is_set():
                break
            output.emit_from_thread(events_from(piece))
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()

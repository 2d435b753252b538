"""Runs a wrapper method and turns whatever it returns into one stream of events.

Async methods run on the event loop. Sync methods run in a bounded thread pool, never on the loop,
and a sync generator is drained in that same worker thread. Both feed an `EventStream` that the
HTTP layer reads in batches. Closing the stream (the client went away) cancels an async run and
sets the stop flag a sync run checks at its next chunk.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, runtime_checkable

from haystack.dataclasses import ChatMessage, StreamingChunk

from ..generators.upstream_errors import failure_event
from ..http.errors import OpenAIError
from ..observability import metrics
from ..observability.request_tracking import RequestInfo, current_request_info
from .events import FINISH_REASONS, Event, Finish, ReasoningDelta, StreamError, TextDelta, ToolCallDelta
from .memory_release import MemoryRelease
from .token_usage import usage_from

logger = logging.getLogger(__name__)

_stop_flag: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stop_flag", default=None)
_read_whole: contextvars.ContextVar[bool] = contextvars.ContextVar("read_whole", default=False)


def current_stop_flag() -> threading.Event | None:
    """The flag that is set when the client of the current sync run has gone away.

    Code that runs a pipeline in its own thread (see `pipeline_runs.py`) checks it at each chunk.
    """
    return _stop_flag.get()


def answer_read_whole() -> bool:
    """Whether the current run's answer is read only once it is whole (`stream: false`, see `Runner.collect`).

    Nobody reads its chunks as they come, so its LLM may be asked for a whole answer: such an answer carries the
    server's token count where a stream may carry none (llama-cpp-python's server counts no stream). The
    engine's OpenAI generator does so (`generators/openai_generator.py`).
    """
    return _read_whole.get()


@runtime_checkable
class CallbackStream(Protocol):
    """What a sync method may return for a source that produces by callback (a pipeline's `streaming_callback`).

    The service then does not iterate over it: it iterates `on_event_loop()` on the event loop when that offers
    an async form (then no thread waits on it), or else calls `push_to` in its worker thread, which spares the
    source a thread of its own. Any object with these two methods is one (`pipeline_runs.PipelineStream` is).
    """

    def push_to(self, emit: Callable[[Any], None]) -> None:
        """Produce every item, calling `emit` with each as soon as it exists."""
        ...

    def on_event_loop(self) -> AsyncIterator[Any] | None:
        """The same items made on the event loop, or None for a source that cannot run there."""
        ...


def is_callback_stream(value: object) -> TypeGuard[CallbackStream]:
    """`isinstance(value, CallbackStream)` at a fraction of its cost: Python 3.11 lists a protocol's members again on
    every check of a runtime protocol: 20-26 µs for each answer a sync method returns, against 0.1."""
    return getattr(value, "on_event_loop", None) is not None and getattr(value, "push_to", None) is not None


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
    if usage := usage_from(chunk.meta):
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
    if usage := usage_from(message.meta):
        events.append(usage)
    if message.meta.get("finish_reason") in FINISH_REASONS - {"stop", "tool_calls"}:
        events.append(Finish(message.meta["finish_reason"]))
    return events


# Events a run may get ahead of its reader, and characters of text among them (answer, reasoning, tool-call
# arguments): past either the run waits (an async run stops awaiting its LLM, a sync run blocks in its callback),
# so the LLM is read no faster than the client takes the answer. The count alone would let 256 long chunks hold
# megabytes; the characters alone, 64 Ki empty events.
MAX_BUFFERED_EVENTS = 256
MAX_BUFFERED_CHARS = 64 * 1024


TEXT_EVENTS = (TextDelta, ReasoningDelta)  # a tuple: isinstance with a `X | Y` union built per call is slower


def text_size(events: list[Event]) -> int:
    """Characters of text in `events`: what a run's buffered events weigh beyond their count."""
    size = 0
    for event in events:
        if isinstance(event, TEXT_EVENTS):
            size += len(event.text)
        elif isinstance(event, ToolCallDelta):
            size += len(event.arguments)
    return size


class EventStream:
    """What one run produces, read in batches so a burst of chunks costs one write.

    Bounded: a producer on the loop awaits `room()`, one in a worker thread blocks in `put_from_thread`, while
    `capacity` events or `max_chars` characters of text wait unread (a producer may pass either by the events of
    one piece: it checks before producing more). `close()` releases both.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, capacity: int = MAX_BUFFERED_EVENTS, max_chars: int = MAX_BUFFERED_CHARS
    ) -> None:
        self._loop = loop
        self._capacity = capacity
        self._max_chars = max_chars
        self._events: deque[Event] = deque()
        self._chars = 0  # of text in `_events`
        # Events from a worker thread wait here until the loop takes them: one wake-up of the loop per batch.
        # Not empty means a hand-off to the loop is already scheduled.
        self._from_thread: list[Event] = []
        self._from_thread_chars = 0
        self._from_thread_lock = threading.Lock()
        self._finished = False
        self._produced = False
        self._waiter: asyncio.Future[None] | None = None
        self._room_waiter: asyncio.Future[None] | None = None
        self._room_for_thread = threading.Event()
        self.stop_flag = threading.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, events: list[Event], chars: int | None = None) -> None:
        if events:  # an empty chunk (e.g. a role-only delta) must not wake the reader for nothing
            self._events.extend(events)
            self._chars += text_size(events) if chars is None else chars
            self._produced = True
            self._wake()

    def has_output(self) -> bool:
        """Whether the run produced anything yet (from a worker thread too)."""
        return self._produced or bool(self._from_thread)

    def _full(self) -> bool:
        return len(self._events) >= self._capacity or self._chars >= self._max_chars

    async def room(self) -> None:
        """Return once the reader is less than `capacity` events and `max_chars` characters behind (at once, usually)."""
        while self._full() and not self.stop_flag.is_set():
            self._room_waiter = self._loop.create_future()
            try:
                await self._room_waiter
            finally:
                self._room_waiter = None

    def put_from_thread(self, events: list[Event]) -> None:
        """`put` from a worker thread, blocking it while the reader is `capacity` events (or `max_chars`) behind.

        A fast sync stream makes many chunks while the loop is busy elsewhere; they travel as one batch,
        instead of one cross-thread wake-up of the loop each.
        """
        if not events:
            return
        chars = text_size(events)
        with self._from_thread_lock:
            handoff_scheduled = bool(self._from_thread)
            self._from_thread.extend(events)
            self._from_thread_chars += chars
        if not handoff_scheduled:
            self._loop.call_soon_threadsafe(self._take_from_thread)
        while self._behind() and not self.stop_flag.is_set():
            self._room_for_thread.clear()
            if not self._behind() or self.stop_flag.is_set():
                break  # the reader caught up between the check and the clear
            self._room_for_thread.wait()

    def _behind(self) -> bool:
        """From the worker thread: whether the reader is a full buffer behind, counting what is on its way."""
        unread = len(self._events) + len(self._from_thread)
        return unread >= self._capacity or self._chars + self._from_thread_chars >= self._max_chars

    def _take_from_thread(self) -> None:
        with self._from_thread_lock:
            events, self._from_thread = self._from_thread, []
            chars, self._from_thread_chars = self._from_thread_chars, 0
        self.put(events, chars)

    def finish(self) -> None:
        self._finished = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _make_room(self) -> None:
        """The reader took everything: let a waiting producer go on."""
        if self._room_waiter is not None and not self._room_waiter.done():
            self._room_waiter.set_result(None)
        if not self._room_for_thread.is_set():
            self._room_for_thread.set()

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
            self._chars = 0
            self._make_room()
            return batch
        return None if self._finished else []

    def close(self) -> None:
        """Stop the run: nobody reads it any more."""
        self.stop_flag.set()
        self._make_room()
        if self._task is not None and not self._task.done():
            self._task.cancel()


class Runner:
    """Starts wrapper runs; owns the thread pools that sync code runs in. Create it on the running event loop.

    Every run has a deadline: `first_output_timeout` seconds to produce its first event, `run_timeout` in all
    (0: none). `stop_all()`, at shutdown, ends every run with a retryable error instead of cutting it off.
    """

    def __init__(self, thread_pool_size: int, *, first_output_timeout: float = 0, run_timeout: float = 0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=thread_pool_size, thread_name_prefix="wrapper")
        # asyncio's default pool runs the sync steps of pipelines that stream on the event loop (Haystack sends
        # them there), as well as file reads. Python sizes it to the cores + 4, which would quietly cap how many
        # retrievers run at once; give it as many threads as the wrappers' own pool. Threads start only when needed.
        self._step_pool = ThreadPoolExecutor(max_workers=thread_pool_size, thread_name_prefix="step")
        asyncio.get_running_loop().set_default_executor(self._step_pool)
        self.deadlines = Deadlines(first_output_timeout, run_timeout)
        self.memory_release = MemoryRelease(asyncio.get_running_loop())
        self.stopping = False
        self._running: dict[asyncio.Task[Any], _Running] = {}  # each run's task: its stop flag, model and request
        self._spawned: dict[asyncio.Task[Any], _Running] = {}  # tasks runs started: see `follow_spawned_tasks`

    def shutdown(self) -> None:
        self.memory_release.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._step_pool.shutdown(wait=False, cancel_futures=True)

    def stop_all(self) -> None:
        """End every run now with `SHUTTING_DOWN` (the client may retry elsewhere), and refuse new ones."""
        self.stopping = True
        for task, running in list(self._running.items()):
            running.stop_flag.set()
            task.cancel()

    def run_of_task(self, task: asyncio.Task[Any] | None) -> tuple[str | None, RequestInfo | None] | None:
        """The model and request of the run `task` belongs to, if it is a run's (the loop watch asks this)."""
        running = (self._running.get(task) or self._spawned.get(task)) if task is not None else None
        return (running.model, running.request) if running is not None else None

    def follow_spawned_tasks(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count the tasks a run starts as the run's own, so that a block in one is blamed on its model and request.

        A pipeline that streams runs its steps in tasks of its own (`Pipeline.stream`, a streaming callback's
        reader): code that holds the loop there ran under no run's task. A task factory notes, for each new task,
        the run of the task that created it. Installed with the loop watch only: it costs each new task a lookup.
        """
        create = loop.get_task_factory()

        def create_task(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
            task = create(loop, coro, **options) if create is not None else asyncio.Task(coro, loop=loop, **options)
            parent = asyncio.current_task(loop)
            if parent is not None and (running := self._running.get(parent) or self._spawned.get(parent)):
                self._spawned[task] = running
                task.add_done_callback(self._spawned.pop)
            return task

        loop.set_task_factory(create_task)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a wrapper function that is not a run (e.g. `run_file_upload`): async on the loop, sync in the pool."""
        if inspect.iscoroutinefunction(function):
            return await function(*args)
        context = contextvars.copy_context()  # the request's context (`parsing/who_is_asking.py`) goes along
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, function, *args)

    def start(self, method: Callable[..., Any], *args: Any, deadlines: "Deadlines | None" = None) -> EventStream:
        """Begin running `method(*args)` in the background; read its output from the returned stream.

        `deadlines` replaces the runner's own (a background response has longer to run).
        """
        loop = asyncio.get_running_loop()
        stream = EventStream(loop)
        stream._task = loop.create_task(self._produce(stream, method, args, deadlines or self.deadlines))
        return stream

    async def collect(self, method: Callable[..., Any], *args: Any) -> list[Event]:
        """Everything `method(*args)` produces, for `stream: false`.

        No background task and no hand-off per chunk: the request itself awaits the run, so a client that
        leaves cancels it as usual (and a sync run stops at its next chunk).
        """
        events: list[Event] = []
        output = _Output(events.extend, events.extend, None, threading.Event(), lambda: bool(events))
        read_whole = _read_whole.set(True)  # the run, started from this context, inherits it
        try:
            await self._run(method, args, output, self.deadlines)
        finally:
            _read_whole.reset(read_whole)
            output.stop_flag.set()
        metrics.count_usage(events)
        return events

    async def _produce(
        self, stream: EventStream, method: Callable[..., Any], args: tuple[Any, ...], deadlines: "Deadlines"
    ) -> None:
        output = _Output(stream.put, stream.put_from_thread, stream.room, stream.stop_flag, stream.has_output)
        try:
            await self._run(method, args, output, deadlines)
        finally:
            stream.finish()

    async def _run(
        self, method: Callable[..., Any], args: tuple[Any, ...], output: "_Output", deadlines: "Deadlines"
    ) -> None:
        """Run the wrapper method under its deadline; whatever ends it early becomes a StreamError."""
        if self.stopping:
            output.emit([SHUTTING_DOWN])
            return
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._running[task] = _Running(output.stop_flag, model_of(args), current_request_info())
        deadline = asyncio.timeout(None)
        checks = _DeadlineChecks(loop, deadline, output, deadlines)
        try:
            async with deadline:
                await self._call(method, args, output)
        except TimeoutError:
            output.stop_flag.set()  # a sync run still in its thread stops at its next chunk
            output.emit([checks.timeout_error()])
        except asyncio.CancelledError:
            if self.stopping and task.uncancel() == 0:  # cancelled by stop_all, and by nothing else
                output.emit([SHUTTING_DOWN])
                return
            metrics.count_run_stopped_by_disconnect()  # nobody reads this run any more
            self.memory_release.run_abandoned()
            raise
        finally:
            checks.cancel()
            del self._running[task]

    async def _call(self, method: Callable[..., Any], args: tuple[Any, ...], output: "_Output") -> None:
        """Call the wrapper method and emit events for whatever it returns; its failures become a StreamError."""
        loop = asyncio.get_running_loop()
        try:
            function = getattr(method, "__func__", None)  # a wrapper's bound method: its class's function, cached
            kind = class_method_kind(function) if function is not None else call_kind(method)
            if kind == "async_generator":
                result = method(*args)  # `async def` with `yield`: nothing to await, iterate it below
            elif kind == "coroutine":
                result = _on_event_loop_if_it_can(await method(*args))
            else:
                result = await loop.run_in_executor(
                    self._pool, contextvars.copy_context().run, _call_in_thread, output, method, args
                )
            if isinstance(result, Iterator):
                # An async method handed back a sync generator: drain it off the loop too.
                await loop.run_in_executor(self._pool, contextvars.copy_context().run, _drain_in_thread, output, result)
            elif isinstance(result, AsyncIterator):
                try:
                    async for piece in result:
                        output.emit(events_from(piece))
                        if output.room is not None:
                            await output.room()  # a reader that fell behind pauses the run here
                finally:
                    # Cancelled while paused above, the generator sits at its `yield`: close it now, so its own
                    # cleanup (cancelling the pipeline, closing the LLM stream) runs at once, not when collected.
                    if (close := getattr(result, "aclose", None)) is not None:
                        await close()
            elif result is not None:
                output.emit(events_from(result))
        except asyncio.CancelledError:
            raise
        except OpenAIError as error:
            # A wrapper may refuse a request on purpose (e.g. 400 for input it cannot use): pass that on as is.
            output.emit([StreamError(error.message, error.type, error.code, error.status, error.param, error.headers)])
        except Exception as error:
            if not output.stop_flag.is_set():
                output.emit([failure_event(error, run_name(method, args))])


def call_kind(function: Callable[..., Any]) -> str:
    """How `Runner._call` calls `function`: iterates it, awaits it, or runs it in the pool."""
    if inspect.isasyncgenfunction(function):
        return "async_generator"
    return "coroutine" if inspect.iscoroutinefunction(function) else "sync"


# Per wrapper class's function, asked once rather than on every request (`inspect` unwraps and checks code flags
# each time: ~10 µs a request). Only class functions: they live as long as their class, a closure may hold a request.
class_method_kind = functools.lru_cache(maxsize=256)(call_kind)


def model_of(args: tuple[Any, ...]) -> str | None:
    """The model a run serves: every wrapper run method's first argument."""
    return args[0] if args and isinstance(args[0], str) else None


def run_name(method: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """How log lines name a run: its model and the wrapper method, e.g. `model 'chat'
    (PipelineWrapper.run_chat_completion_async)`; every wrapper class is called PipelineWrapper."""
    method_name = getattr(method, "__qualname__", str(method))
    model = model_of(args)
    return f"model {model!r} ({method_name})" if model is not None else method_name


# What every run still going gets when the server shuts down: clients may retry it on another replica.
SHUTTING_DOWN = StreamError(
    "The server is shutting down; retry the request.",
    code="server_shutting_down",
    status=503,
    headers={"x-should-retry": "true", "Retry-After": "1"},
)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds a run may take to its first event, and in all (0: no limit), and the settings that say so."""

    first_output: float = 0
    total: float = 0
    first_output_setting: str = "FIRST_OUTPUT_TIMEOUT_SECONDS"
    total_setting: str = "RUN_TIMEOUT_SECONDS"


class _DeadlineChecks:
    """Moves a run's deadline without touching its hot path: a timer looks whether output came, twice at most.

    Until the first event the deadline is `first_output` seconds away; once output came, `total` seconds from
    the start.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: asyncio.Timeout, output: "_Output", limits: Deadlines
    ) -> None:
        self._loop, self._deadline, self._output, self._limits = loop, deadline, output, limits
        self._started = loop.time()
        self._expired_waiting_for_output = False
        self._timer: asyncio.TimerHandle | None = None
        first_output, total = limits.first_output, limits.total
        if first_output and (not total or first_output < total):
            self._timer = loop.call_at(self._started + first_output, self._check)
        elif total:
            self._timer = loop.call_at(self._started + total, self._expire)

    def _check(self) -> None:
        if not self._output.has_output():
            self._expired_waiting_for_output = True
            self._expire()
        elif self._limits.total:
            self._timer = self._loop.call_at(self._started + self._limits.total, self._expire)

    def _expire(self) -> None:
        self._deadline.reschedule(self._loop.time())

    def timeout_error(self) -> StreamError:
        limits = self._limits
        if self._expired_waiting_for_output:
            message = f"The model produced no output within {limits.first_output:g} s ({limits.first_output_setting})."
        else:
            message = f"The run took longer than its limit of {limits.total:g} s ({limits.total_setting})."
        return StreamError(message, code="timeout", status=504)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


@dataclass(slots=True)
class _Running:
    """A run going on: how to stop it, and what the loop watch names if it holds the loop."""

    stop_flag: threading.Event
    model: str | None
    request: RequestInfo | None


@dataclass(slots=True)
class _Output:
    """Where a run's events go: `emit` on the event loop, `emit_from_thread` from a worker thread (which may block
    it while the reader is behind); `room`, when set, is awaited on the loop before producing more."""

    emit: Callable[[list[Event]], None]
    emit_from_thread: Callable[[list[Event]], None]
    room: Callable[[], Awaitable[None]] | None
    stop_flag: threading.Event
    has_output: Callable[[], bool]


def _call_in_thread(output: _Output, method: Callable[..., Any], args: tuple[Any, ...]) -> object:
    """Call a sync wrapper method; drain a sync generator right here so the run keeps its worker."""
    _stop_flag.set(output.stop_flag)
    result = _on_event_loop_if_it_can(method(*args))
    if isinstance(result, Iterator):
        _drain_in_thread(output, result)
        return None
    return result


def _on_event_loop_if_it_can(result: object) -> object:
    """Run a stream on the event loop when it can run there, freeing the worker at once (see `CallbackStream`)."""
    if is_callback_stream(result) and (on_loop := result.on_event_loop()) is not None:
        return on_loop
    return result


def _drain_in_thread(output: _Output, pieces: Iterator[object]) -> None:
    _stop_flag.set(output.stop_flag)
    if is_callback_stream(pieces):
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

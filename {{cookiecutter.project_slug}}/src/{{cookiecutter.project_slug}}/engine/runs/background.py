"""Background responses: runs that go on whatever their client does, and that any replica can report or resume.

`POST /v1/responses` with `background: true` records a run in the state store and answers at once; the run
itself goes on here, in the process that took the request, at most BACKGROUND_WORKERS at a time (the others
wait, `queued`, and start in order). Every event it streams is appended to the response's event log in the
store, so `GET /v1/responses/{id}?stream=true&starting_after=N` replays and follows it from any process: from
memory in this one, from the store elsewhere.

The process keeps a lease on each of its runs and renews it every second or so, which is also when it sees a
cancel asked on another replica. A run whose lease lapsed belongs to a process that died: any process takes it
over and ends it `failed`, or, with BACKGROUND_RESTART_LOST_RUNS, starts it again once, when no answer of it had
reached the log yet (a client that read half an answer would not get the same half again). On a normal shutdown
the runs still going are handed back the same way, their leases released, instead of being cut.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..http.errors import OpenAIError
from ..parsing.declared_tools import namespaced_functions
from ..state import BackgroundRun, History, LoggedEvent, StateStore, StoredResponse, StoreUnavailable
from ..wire.ids import new_id
from ..wire.responses import ResponseEncoder
from ..wire.sse import PING, as_stream_error
from .events import StreamError
from .runner import Deadlines, EventStream, Runner

logger = logging.getLogger(__name__)

TERMINAL_EVENTS = ("event: response.completed\n", "event: response.failed\n", "event: response.incomplete\n")
PREAMBLE_EVENTS = 2  # response.created and response.in_progress: no answer in them yet
STORE_RETRY_SECONDS = 1.0  # how often a run retries a write the store refused (it was down)
RENEW_EVERY_SECONDS = 1.0  # at most; a lease of L seconds is renewed every L/3 at least

MethodFor = Callable[[str, dict[str, Any]], Callable[..., Any]]  # what serves a model's Responses API, for a body
# What a run's end adds elsewhere (its conversation's items), from its request and final response; may refuse.
EndTurn = Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]]


def stored_response(run: BackgroundRun, response: dict[str, Any]) -> StoredResponse:
    """The run's final response with its input, and which of those items the store held when it started."""
    history = run.request.get("history")
    return StoredResponse(response, run.request["input_items"], History(**history) if history else None)


@dataclass(frozen=True, slots=True)
class BackgroundSettings:
    workers: int  # runs at once in one process
    lease_seconds: float
    restart_lost_runs: bool
    deadlines: Deadlines
    max_events: int  # per response's log
    keepalive_seconds: float


@dataclass(eq=False)
class _LocalRun:
    """A run going on in this process: its record, its encoder, and every event so far, for local followers."""

    run: BackgroundRun
    encoder: ResponseEncoder
    events: list[LoggedEvent] = field(default_factory=list)
    logged: int = 0  # how many of `events` are in the store's log
    more: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) when events are added
    stream: EventStream | None = None
    waiting_for_slot: bool = False
    cancel_requested: bool = False
    handed_back: bool = False  # shutdown, or another process took it over: end it without a word
    done: bool = False
    task: asyncio.Task[None] | None = None

    def add(self, events: list[LoggedEvent]) -> None:
        if events:
            self.events.extend(events)
            self.more.set()
            self.more = asyncio.Event()

    def stop(self) -> None:
        """End the run (a cancel, a shutdown): its LLM stream closes; one still waiting for a slot stops waiting."""
        if self.stream is not None:
            self.stream.close()  # its events end, and `_execute` goes on to the end
        elif self.waiting_for_slot and self.task is not None:
            self.task.cancel()  # caught where it waits


class BackgroundRuns:
    """The background runs of this process, and the loops that keep their leases and take over lapsed ones."""

    def __init__(
        self, runner: Runner, store: StateStore, method_for: MethodFor, end_turn: EndTurn, settings: BackgroundSettings
    ) -> None:
        self._runner, self._store, self._method_for, self._settings = runner, store, method_for, settings
        self._end_turn = end_turn
        self.owner = new_id(f"{socket.gethostname()}:{os.getpid()}:", 8)
        self._slots = asyncio.Semaphore(settings.workers)  # waiters get in in the order they came
        self._local: dict[str, _LocalRun] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._releasing: asyncio.Task[None] | None = None

    # --- starting, cancelling, following ---

    async def start(
        self,
        response: dict[str, Any],
        model: str,
        input_items: list[dict[str, Any]],
        body: dict[str, Any],
        conversation: dict[str, Any] | None,
        history: History | None = None,
    ) -> None:
        """Record the run (status `queued`) and start it; returns once the store has it. `conversation`: the turn
        it is in (`Turn.record`), added to when it ends; `history`: which input items the store holds already."""
        response["background"] = True
        response["status"] = "queued"
        request = {"model": model, "input_items": input_items, "body": body, "conversation": conversation}
        if history is not None:
            request["history"] = asdict(history)
        run = BackgroundRun(response, request, self.owner)
        await self._store.create_run(run, self._settings.lease_seconds)
        self._begin(run, ResponseEncoder(response, keep_events=True, namespaced=namespaced_functions(body)))

    def _begin(self, run: BackgroundRun, encoder: ResponseEncoder) -> None:
        local = _LocalRun(run, encoder)
        if run.attempts == 1:
            encoder.created()
            local.add(encoder.take_events())
        self._local[run.id] = local
        local.task = asyncio.create_task(self._execute(local), name=f"background {run.id}")

    async def cancel(self, response_id: str) -> dict[str, Any] | None:
        """Ask for the run to stop, wherever it runs; the response as it stands, or None when no run has that id."""
        local = self._local.get(response_id)
        if local is not None and not local.done:
            local.cancel_requested = True
            local.stop()
            if local.task is not None:
                await asyncio.wait([local.task])  # ended: its final response is stored
            stored = await self._store.get_response(response_id)
            return stored.response if stored is not None else local.encoder.response
        run = await self._store.request_cancel(response_id)
        if run is None:
            return None
        response = dict(run.response)
        response["status"] = "cancelled"  # as it will be once its owner sees the request, within a second or so
        return response

    async def follow(self, response_id: str, after: int) -> AsyncIterator[str]:
        """The response's events after sequence number `after` as SSE text, then the live ones, to its last."""
        local = self._local.get(response_id)
        if local is not None:
            async for text in self._follow_here(local, after):
                yield text
            return
        while True:
            events = await self._store.read_events(response_id, after, 1000)
            if not events:
                events = await self._store.wait_for_events(response_id, after, self._settings.keepalive_seconds)
            if not events:
                if await self._store.get_run(response_id) is None and (
                    await self._store.last_sequence_number(response_id) <= after
                ):
                    return  # the run ended, and nothing is left to send
                yield PING
                continue
            for seq, text in events:
                yield text
                after = seq
                if text.startswith(TERMINAL_EVENTS):
                    return

    async def _follow_here(self, local: _LocalRun, after: int) -> AsyncIterator[str]:
        position = next((index for index, (seq, _) in enumerate(local.events) if seq > after), len(local.events))
        while True:
            for seq, text in local.events[position:]:
                if seq > after:
                    yield text
                    after = seq
            position = len(local.events)
            if local.done or local.handed_back:
                return  # handed back: the client resumes from another replica
            more = local.more
            try:
                await asyncio.wait_for(more.wait(), self._settings.keepalive_seconds)
            except TimeoutError:
                yield PING

    # --- one run ---

    async def _execute(self, local: _LocalRun) -> None:
        run, encoder = local.run, local.encoder
        try:
            if await self._take_slot(local):
                try:
                    if not (local.cancel_requested or local.handed_back):
                        encoder.in_progress()
                        local.add(encoder.take_events())
                        await self._write(self._store.update_run, replace(run, response=encoder.response))
                        method = self._method_for(run.request["model"], run.request["body"])
                        args = (run.request["model"], run.request["input_items"], run.request["body"])
                        local.stream = self._runner.start(method, *args, deadlines=self._settings.deadlines)
                        if local.cancel_requested or local.handed_back:  # asked while the record was written
                            local.stop()
                        await self._relay(local)
                finally:
                    self._slots.release()
            if local.handed_back:
                return
            if local.cancel_requested:
                encoder.cancel()
            elif encoder.error is None:
                encoder.finish()
            final = encoder.take_events()
            if encoder.error is None and not local.cancel_requested:
                try:
                    await self._write(self._end_turn, run.request, encoder.response)
                except OpenAIError as refusal:  # its conversation was deleted or is full: it fails, as in foreground
                    final.pop()  # the completion `finish` announced
                    encoder.encode([as_stream_error(refusal)])
                    final += encoder.take_events()
            # Stored before its last event is heard, so that a client that hears it finds the response.
            if not await self._write(self._store.finish_run, run, stored_response(run, encoder.response)):
                logger.warning("Background response %s was taken over by another process before it ended", run.id)
                return
            local.add(final)
            await self._log(local)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Background response %s failed in the service", run.id)
        finally:
            local.done = True
            local.more.set()
            self._local.pop(run.id, None)

    async def _take_slot(self, local: _LocalRun) -> bool:
        """Wait for one of the BACKGROUND_WORKERS slots; False when the run was cancelled or handed back meanwhile."""
        local.waiting_for_slot = True
        try:
            await self._slots.acquire()
        except asyncio.CancelledError:
            if local.cancel_requested or local.handed_back:
                return False
            raise
        finally:
            local.waiting_for_slot = False
        return True

    async def _relay(self, local: _LocalRun) -> None:
        """Encode the run's events as they come, into memory and the log; a log past its bound fails the run."""
        assert local.stream is not None
        encoder = local.encoder
        while (batch := await local.stream.next_batch()) is not None:
            encoder.encode(batch)
            local.add(encoder.take_events())
            if len(local.events) > self._settings.max_events and encoder.error is None:
                message = f"The response's event log is full ({self._settings.max_events} events)."
                encoder.encode([StreamError(message, code="event_log_full")])
                local.add(encoder.take_events())
                local.stop()
            await self._log(local)
            if encoder.error is not None:
                local.stop()
                return

    async def _log(self, local: _LocalRun) -> None:
        """Append what the log lacks; a store that is down gets it later (the next batch, or the end)."""
        if local.logged == len(local.events):
            return
        unlogged = local.events[local.logged :]
        try:
            await self._store.append_events(local.run.id, unlogged)
        except StoreUnavailable as error:
            logger.warning("Background response %s: its events wait for the store: %s", local.run.id, error.message)
            return
        local.logged += len(unlogged)

    async def _write(self, write: Callable[..., Any], *args: Any) -> Any:
        """A write that must happen: retried while the store is down, for as long as the lease would last."""
        for _ in range(max(1, int(self._settings.lease_seconds / STORE_RETRY_SECONDS))):
            try:
                return await write(*args)
            except StoreUnavailable as error:
                logger.warning("Background response: the store is unavailable (%s); retrying", error.message)
                await asyncio.sleep(STORE_RETRY_SECONDS)
        raise StoreUnavailable("state store", "it stayed unavailable for the whole lease")

    # --- leases ---

    def start_loops(self) -> None:
        self._loops = [asyncio.create_task(self._keep_leases()), asyncio.create_task(self._take_over_lapsed())]

    async def _keep_leases(self) -> None:
        """Renew this process's leases; a cancel asked elsewhere, or a run taken over, is seen here."""
        every = min(RENEW_EVERY_SECONDS, self._settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            running = [run_id for run_id, local in self._local.items() if not local.done]
            try:
                ours = await self._store.renew_leases(self.owner, running, self._settings.lease_seconds)
            except StoreUnavailable:
                continue  # logged by the store; the lease may lapse, and then the run is another's to end
            for run_id in running:
                local = self._local.get(run_id)
                if local is None:
                    continue
                if run_id not in ours:
                    logger.warning("Background response %s was taken over by another process", run_id)
                    local.handed_back = True
                    local.stop()
                elif ours[run_id] and not local.cancel_requested:
                    local.cancel_requested = True
                    local.stop()

    async def _take_over_lapsed(self) -> None:
        """Find the runs whose process died; end them failed, or start them again once (a setting)."""
        while True:
            try:
                for run in await self._store.take_over_lapsed(self.owner, self._settings.lease_seconds):
                    await self._recover(run)
            except StoreUnavailable:
                pass  # logged by the store
            except Exception:
                logger.exception("Taking over lapsed background runs failed")
            await asyncio.sleep(self._settings.lease_seconds / 2)

    async def _recover(self, run: BackgroundRun) -> None:
        last = await self._store.last_sequence_number(run.id)
        answer_sent = last >= PREAMBLE_EVENTS
        if self._settings.restart_lost_runs and run.attempts < 2 and not answer_sent and not run.cancel_requested:
            logger.warning("Background response %s lost its process; starting it again here", run.id)
            run = replace(run, attempts=run.attempts + 1)
            await self._store.update_run(run)
            namespaced = namespaced_functions(run.request["body"])
            encoder = ResponseEncoder(
                run.response, keep_events=True, first_sequence_number=last + 1, namespaced=namespaced
            )
            self._begin(run, encoder)
            return
        logger.warning("Background response %s lost its process: it ends failed", run.id)
        encoder = ResponseEncoder(run.response, keep_events=True, first_sequence_number=last + 1)
        if run.cancel_requested:
            encoder.cancel()
        else:
            message = "The server running this response stopped before it finished; send the request again."
            encoder.encode([StreamError(message)])
        events = encoder.take_events()
        if await self._store.finish_run(run, stored_response(run, encoder.response)):
            await self._store.append_events(run.id, events)

    # --- shutdown ---

    def hand_back(self) -> None:
        """At shutdown: stop the runs still going without ending them, and release their leases for another process."""
        going = [local for local in self._local.values() if not local.done]
        for local in going:
            local.handed_back = True
            local.stop()
        if going:
            ids = [local.run.id for local in going]
            logger.info("Handing %d background responses back to the other replicas", len(ids))
            self._releasing = asyncio.create_task(self._store.release_runs(self.owner, ids))

    async def close(self) -> None:
        """After serving: the loops stop; leases handed back are released before the store closes."""
        for task in self._loops:
            task.cancel()
        if self._releasing is not None:
            await asyncio.gather(self._releasing, return_exceptions=True)
        tasks = [local.task for local in self._local.values() if local.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*self._loops, *tasks, return_exceptions=True)

"""Finds code that holds the event loop (LOOP_BLOCKED_WARN_SECONDS) and logs it with its model, request and line.

An `async def` wrapper that calls `time.sleep()`, a blocking HTTP client or a long computation stops every other
request of the process, health probes included, and nothing else would say which wrapper did it. Two cheap parts
find it: a timer on the loop notes each time it runs (every WATCH_INTERVAL_SECONDS, so a lateness of the timer is
a block), and a watcher thread that, once the timer is overdue by half the threshold, looks at what the loop's thread
is running: the current task (the runner knows the model and request of each run's task) and its innermost line
of the service's own code. When the loop runs again, the timer logs one warning with the time it was held. Nothing
is added to a request's path.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .request_tracking import RequestInfo, as_request

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.1  # how often the timer runs and the watcher looks: the error on the time reported
SERVICE_DIR = Path(__file__).resolve().parents[2]  # the service's package: the wrappers, llm.py, streaming.py
ENGINE_DIR = SERVICE_DIR / "engine"


@dataclass(frozen=True, slots=True)
class Holder:
    """What held the loop, as the watcher saw it: the run (model and request), when it knew, and the line; and
    the beat the block came after, so that a look taken just as the block ended is not blamed for the next one."""

    model: str | None
    request: RequestInfo | None
    where: str | None
    after_beat: float


# Given the task the loop runs, the model and request of the run it belongs to (the runner's), if it is one.
RunOfTask = Callable[[asyncio.Task[object] | None], tuple[str | None, RequestInfo | None] | None]


class LoopWatch:
    """Watches one event loop from a thread of its own; `stop()` ends both parts."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, threshold: float, wrappers_package: str, run_of_task: RunOfTask
    ) -> None:
        self._loop = loop
        self._threshold = threshold
        self._wrappers_prefix = wrappers_package + "."
        self._run_of_task = run_of_task
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._holder: Holder | None = None  # set by the watcher during a block, taken by the timer after it
        self._stopped = threading.Event()
        self._timer = loop.call_later(WATCH_INTERVAL_SECONDS, self._beat)
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._timer.cancel()

    def _beat(self) -> None:
        """On the loop: note that it runs; after a block, log what held it."""
        now = time.monotonic()
        held = now - self._last_beat - WATCH_INTERVAL_SECONDS
        holder, self._holder = self._holder, None
        if holder is not None and holder.after_beat != self._last_beat:
            holder = None
        self._last_beat = now
        if held >= self._threshold:
            report(held, holder)
        if not self._stopped.is_set():
            self._timer = self._loop.call_later(WATCH_INTERVAL_SECONDS, self._beat)

    def _watch(self) -> None:
        """In the watcher thread: once the timer is overdue by half the threshold (a block only just over it is
        seen too), see what the loop's thread runs."""
        while not self._stopped.wait(WATCH_INTERVAL_SECONDS):
            last_beat = self._last_beat
            overdue = time.monotonic() - last_beat - WATCH_INTERVAL_SECONDS
            if overdue >= self._threshold / 2 and self._holder is None:
                self._holder = self._look(last_beat)

    def _look(self, last_beat: float) -> Holder:
        run = self._run_of_task(asyncio.current_task(self._loop))  # a dict lookup: safe from another thread
        model, where = self._own_code(sys._current_frames().get(self._loop_thread))
        if run is not None:
            return Holder(run[0] or model, run[1], where, last_beat)
        return Holder(model, None, where, last_beat)

    def _own_code(self, frame: FrameType | None) -> tuple[str | None, str | None]:
        """The innermost line of the user's code (a wrapper, llm.py, streaming.py) on a stack, and its model if
        it is in a wrapper; else the innermost line of all. That line is where to look, whatever library was
        blocking below it."""
        innermost = frame
        while frame is not None:
            module = str(frame.f_globals.get("__name__", ""))
            if module.startswith(self._wrappers_prefix):
                return module.removeprefix(self._wrappers_prefix).split(".")[0], describe(frame)
            path = Path(frame.f_code.co_filename).resolve()
            if path.is_relative_to(SERVICE_DIR) and not path.is_relative_to(ENGINE_DIR):
                return None, describe(frame)
            frame = frame.f_back
        return None, describe(innermost) if innermost is not None else None


def describe(frame: FrameType) -> str:
    path = Path(frame.f_code.co_filename).resolve()
    shown = path.relative_to(SERVICE_DIR) if path.is_relative_to(SERVICE_DIR) else path
    return f"{shown}:{frame.f_lineno} in {frame.f_code.co_name}"


def report(held: float, holder: Holder | None) -> None:
    """One warning for a block, on the request's log line when a run held the loop."""
    if holder is None or (holder.model is None and holder.where is None):
        # The watcher could not look: a long call into C held the interpreter's lock, in any thread.
        logger.warning(
            "The event loop was held for %.2f s by a call that held Python's interpreter lock (in a worker thread "
            "too: a long C call such as a huge str.split or regex); every request of this process waited meanwhile",
            held,
        )
        return
    culprit = f"model {holder.model!r}" if holder.model is not None else "code"
    details = [f"request {holder.request.id}"] if holder.request is not None else []
    details += [f"at {holder.where}"] if holder.where is not None else []
    with as_request(holder.request):
        logger.warning(
            "The event loop was held for %.2f s by %s (%s); every request of this process waited meanwhile. "
            "An async wrapper must not block: await, move blocking calls to a thread (asyncio.to_thread), or "
            "write the method without async (it then runs in a worker thread)",
            held,
            culprit,
            "; ".join(details),
        )

"""Giving back the memory of runs whose clients left, so that a burst of them does not raise the service for good.

Measured (bench/hostile.py, 100 clients that stopped reading, then closed): once they closed, ~30 MB stayed in
reference cycles (a cancelled run's exception, its frames, the text they hold) until Python's next full
collection, and ~120 MB of freed memory stayed in glibc's heap: an answer's pieces over 512 bytes are glibc's
allocations, and glibc returns freed memory below the top of its heap to the system only when `malloc_trim` is
called. So a few seconds after the first of such runs ended, one full collection runs on the event loop (the
startup objects are frozen out of it: see `app.py`) and `malloc_trim` in a thread (ctypes releases the GIL). At
most once per `delay` seconds, and only after runs stopped because their client went away.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

RELEASE_DELAY_SECONDS = 5.0


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None (musl, macOS: nothing to call)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _find_malloc_trim()


class MemoryRelease:
    """Collects garbage and trims the C heap `delay` seconds after a run was abandoned (once per `delay`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float = RELEASE_DELAY_SECONDS) -> None:
        self._loop = loop
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None

    def run_abandoned(self) -> None:
        """A run stopped because nobody reads it any more: release memory soon, with the others that follow."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._delay, self._release)

    def _release(self) -> None:
        self._timer = None
        started = time.perf_counter()
        collected = gc.collect()
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug("Collected %d objects in %.1f ms after abandoned runs", collected, elapsed)
        if MALLOC_TRIM is not None:
            with contextlib.suppress(RuntimeError):  # the pool is shut down: the process is ending anyway
                self._loop.run_in_executor(None, MALLOC_TRIM, 0)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

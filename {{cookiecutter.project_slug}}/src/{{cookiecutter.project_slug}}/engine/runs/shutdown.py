"""Ending open runs cleanly when the server is told to stop (SIGTERM, or SIGINT from Ctrl-C).

Hypercorn then stops accepting connections and gives open requests `graceful_timeout` seconds (in
hypercorn.toml) before it cancels them; a stream cut off that way ends mid-body, which a client cannot
tell from a network fault. So the service lets runs go on for SHUTDOWN_GRACE_SECONDS (a little less than
hypercorn's grace), then ends every run still going with its protocol's failure, marked retryable
(`runner.SHUTTING_DOWN`): clients learn why, and retry on another replica.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(callback: Callable[[], None], delay: float) -> None:
    """Call `callback` on the running event loop `delay` seconds after a stop signal; whoever handled the signal
    before still gets it at once.

    Only signals that something already handles gracefully are watched (hypercorn's own handler, when it
    serves in this process). A hypercorn worker process (`workers` > 0) gets no signal from its supervisor
    (it is told to stop another way), so there open streams are cut at the end of the grace period.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread
    loop = asyncio.get_running_loop()
    for number in STOP_SIGNALS:
        previous = signal.getsignal(number)
        if not callable(previous):
            continue  # the default action (or ignoring it) is not ours to change

        def handler(signum: int, frame: FrameType | None, previous: Callable = previous) -> None:
            # asyncio's own handlers still run: they are woken through the loop's wake-up socket, not this function.
            loop.call_soon_threadsafe(_stop_later, loop, callback, signum, delay)
            previous(signum, frame)

        signal.signal(number, handler)


def _stop_later(loop: asyncio.AbstractEventLoop, callback: Callable[[], None], signum: int, delay: float) -> None:
    name = signal.Signals(signum).name
    logger.info("%s received: runs still going in %g s end with a retryable error", name, delay)
    loop.call_later(delay, callback)

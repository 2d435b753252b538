"""Hanging up on clients that stop reading, for any response.

A client that keeps its connection open but reads nothing would hold its run (paused, see
`runner.EventStream`) and its LLM connection for ever. Each write of a response body is watched: one
that has waited `limit` seconds for the client to take data ends the response, which stops the run and
closes its LLM connection. The watch costs a dictionary entry per write; a timer looks at the writes
still waiting only while there are any.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)


class IdleClientLimit:
    """ASGI middleware: cancel the request whose response write waits longer than `limit` seconds."""

    def __init__(self, app: Any, limit: float) -> None:
        self.app = app
        self.limit = limit
        self._waiting: dict[asyncio.Task[Any], float] = {}  # the request's task, and when its write began
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """The app's coroutine with the watched `send`, handed back rather than awaited: no frame of this layer."""
        if scope["type"] != "http" or not self.limit:
            return self.app(scope, receive, send)

        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] != "http.response.body":
                return await send(message)
            task = asyncio.current_task()
            assert task is not None
            loop = asyncio.get_running_loop()
            self._waiting[task] = loop.time()
            if self._timer is None:
                self._timer = loop.call_later(self._check_interval(), self._check)
            try:
                await send(message)
            finally:
                self._waiting.pop(task, None)

        return self.app(scope, receive, watched_send)

    def _check_interval(self) -> float:
        return min(max(self.limit / 4, 0.2), 10.0)

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, since in list(self._waiting.items()):
            if now - since >= self.limit:
                del self._waiting[task]
                logger.info("A client took no data for %g s: ending its response", self.limit)
                task.cancel()  # the response generator is closed, which stops its run
        self._timer = loop.call_later(self._check_interval(), self._check) if self._waiting else None

"""The request being served, as log lines, metrics, traces and error messages name it: its id, route, API and model.

Every response carries the request's id in `x-request-id`, as OpenAI's API does: the client's own id when it sent a
usable one in that header (a proxy in front may set it), else a new `req_...`. The same id is on every log line the
request causes (`log_format.py`) and in the error messages that send the client to the server log, so a user's
report leads to its lines. `TrackRequests` sets it for each request, in a context variable: the runs a request starts
copy the context into their tasks and threads, so their log lines carry it too.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from quart import Request

# A client's id is taken as it is when it is short and made of characters that are safe in a log line and a header.
CLIENT_ID = re.compile(rb"[A-Za-z0-9._:=+/-]{1,128}")
UNMATCHED = "unmatched"  # the route of a request no route matched (a 404 or a 405)


@dataclass(slots=True)
class RequestInfo:
    """What the service knows about one request; `request` (so `route` and `api`) and `model` fill in as it is
    handled."""

    id: str
    method: str
    started: float  # time.perf_counter() when the request arrived
    model: str = ""  # the wrapper that ran (an id from the wrappers package, never the client's text)
    status: int = 0  # the response's status code; 0 until the response started
    bytes_sent: int = 0  # of the response's body, so far
    request: Request | None = None  # Quart's request while it is served (`TrackedRequest`): its route and API
    matched: tuple[str, str] = (UNMATCHED, "")  # the route and API, kept when the request ends (`let_go`)

    @property
    def route(self) -> str:
        """The route's rule (`/v1/responses/<response_id>`), never the path a client made up; UNMATCHED for none."""
        return self._matched()[0]

    @property
    def api(self) -> str:
        """The blueprint that served it: chat, responses, files, models...; "" for none."""
        return self._matched()[1]

    def _matched(self) -> tuple[str, str]:
        request = self.request
        if request is None or request.url_rule is None:
            return self.matched
        return request.url_rule.rule, request.blueprint or ""

    def let_go(self) -> None:
        """At the request's end: keep its route and API, and drop Quart's request, which refers back to this
        info (a cycle only the garbage collector's slower passes would free: measured, they cost more than
        everything this saves)."""
        self.matched = self._matched()
        self.request = None


_current: ContextVar[RequestInfo | None] = ContextVar("request_info", default=None)


def current_request_info() -> RequestInfo | None:
    """The request being served here, or None outside a request (startup, a background task of its own)."""
    return _current.get()


@contextmanager
def as_request(info: RequestInfo | None) -> Iterator[None]:
    """Log (and name in errors) as `info`'s request, from code outside it: what the loop watch reports on."""
    if info is None:
        yield
        return
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)


def see_the_server_log() -> str:
    """The end of an error message that sends the client to the server log, naming the request to look for."""
    info = _current.get()
    return f"see the server log for request {info.id}" if info is not None else "see the server log"


def note_model(model_id: str) -> None:
    """Record which wrapper serves the current request (for its metrics, log lines and trace)."""
    info = _current.get()
    if info is not None:
        info.model = model_id


class TrackedRequest(Request):
    """Quart's request, made known to its `RequestInfo`, which reads the route and API from it when asked.

    Nothing is noted as Quart matches the route: a before-request hook that did cost 1.6% of a plain request's
    CPU (Quart's hook machinery, and lookups through the `request` proxy), a property in place of `url_rule`
    0.8% (Quart reads it some 40 times a request). Metrics, log lines and traces ask once or twice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        info = _current.get()
        if info is not None:
            info.request = self


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `x-request-id` when it is usable, else a new id."""
    for name, value in headers:
        if name == b"x-request-id" and CLIENT_ID.fullmatch(value):
            return value.decode("ascii")
    return "req_" + os.urandom(16).hex()


RequestSpan = Callable[[dict[str, Any], RequestInfo], AbstractContextManager[Any]]
RequestOver = Callable[[dict[str, Any], RequestInfo, float], None]


class TrackRequests:
    """ASGI middleware: each HTTP request gets its `RequestInfo` and the `x-request-id` response header.

    When the response is over (or the client left), `access_line(scope, info, seconds)` is called, for the access
    log, then `finished(info, seconds)`, for the metrics. With tracing on, `span(scope, info)` wraps the whole
    request, so the pipelines it runs trace as its children.
    """

    def __init__(
        self,
        app: Any,
        finished: Callable[[RequestInfo, float], None] | None = None,
        span: RequestSpan | None = None,
        access_line: RequestOver | None = None,
    ) -> None:
        self.app = app
        self.finished = finished
        self.span = span
        self.access_line = access_line

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        info = RequestInfo(request_id_from(scope["headers"]), scope["method"], time.perf_counter())
        id_header = (b"x-request-id", info.id.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                info.bytes_sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                info.status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = _current.set(info)
        try:
            if self.span is None:
                await self.app(scope, receive, send_with_id)
            else:
                with self.span(scope, info):
                    await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - info.started
            info.let_go()
            try:
                if self.access_line is not None:  # still in the request's context: the line names its model and route
                    self.access_line(scope, info, seconds)
            finally:
                _current.reset(token)
            if self.finished is not None:
                self.finished(info, seconds)

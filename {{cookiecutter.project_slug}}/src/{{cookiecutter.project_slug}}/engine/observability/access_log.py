"""The access log: one line per request, written by the service itself when the request is over (ACCESS_LOG).

    [2026-12-02 10:31:07 +0000] [4211] [INFO] 127.0.0.1:50522 "POST /v1/chat/completions 1.1" 200 312 0.004121s req_5f0c...

client, request line, status (`-` when the client left before the response started), body bytes sent, seconds,
request id. Hypercorn can write such lines too (`accesslog` in hypercorn.toml), but it builds each one from a copy
of every environment variable and request header: 80-120 µs of CPU per request on the benchmark's machine, a tenth
of a cheap request. This writes the same line from what `TrackRequests` already knows, in ~15 µs. The lines keep the
logger name hypercorn's had (`hypercorn.access`), so that filters and log shippers that pick them still do; the
record (`AccessRecord`) is made without the caller lookup or the work that is the same for every line, and its text
formatter (`log_format.AccessTextFormatter`) makes the time string once a second: through logging's usual path, the
line took two to three times as long.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
import multiprocessing
import os
import threading
import time
from typing import Any, ClassVar

from .request_tracking import RequestInfo

ACCESS_LOGGER_NAME = "hypercorn.access"
# Names the handler `log_format.configure_logging` gives the access logger, to tell it from hypercorn's own.
ENGINE_HANDLER = "engine-access-log"

access_logger = logging.getLogger(ACCESS_LOGGER_NAME)
START_TIME = time.time()  # what `relativeCreated` counts from (logging's own start is not public)
logger = logging.getLogger(__name__)
_told_about_hypercorns = False


def write_access_line(scope: dict[str, Any], info: RequestInfo, seconds: float) -> None:
    """The access line of a request that is over (`TrackRequests` calls this last)."""
    if not access_logger.isEnabledFor(logging.INFO) or hypercorn_writes_its_own():
        return
    client = f"{scope['client'][0]}:{scope['client'][1]}" if scope.get("client") else "-"
    method, path, status = info.method, scope["path"], info.status or None
    message = (
        f'{client} "{method} {path} {scope.get("http_version", "1.1")}" {status or "-"} {info.bytes_sent} '
        f"{seconds:.6f}s {info.id}"
    )
    # The same values as fields of their own, for `log_format.JsonFormatter` (status None: the client left first).
    access = {
        "request_id": info.id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "bytes": info.bytes_sent,
        "client": client,
    }
    access_logger.handle(AccessRecord(message, access))


class AccessRecord(logging.LogRecord):
    """An access line's record, with every field a `LogRecord` has (formatters and filters read it as usual),
    made in a fraction of the time: what is the same for every access line (logger, level, no source position, no
    exception, the process's name) is copied in at once, and only the rest is worked out for each line."""

    SAME_FOR_EVERY_LINE: ClassVar[dict[str, Any]] = {
        "name": ACCESS_LOGGER_NAME,
        "args": None,
        "levelname": "INFO",
        "levelno": logging.INFO,
        "pathname": "",
        "filename": "",
        "module": "",
        "lineno": 0,
        "funcName": None,
        "exc_info": None,
        "exc_text": None,
        "stack_info": None,
        "taskName": None,
        "processName": multiprocessing.current_process().name,
    }

    def __init__(self, message: str, access: dict[str, Any]) -> None:  # no super().__init__(): that is the cost
        self.__dict__.update(self.SAME_FOR_EVERY_LINE)  # formatters read `record.__dict__`: not class attributes
        self.msg = message
        self.access = access
        self.created = created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - START_TIME) * 1000
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name
        self.process = os.getpid()


def hypercorn_writes_its_own() -> bool:
    """True when a hypercorn.toml from before the service wrote its own lines still turns on hypercorn's (`accesslog`):
    hypercorn then owns the logger's handlers, and one line per request is enough. Said once, with what to change."""
    global _told_about_hypercorns
    if all(handler.get_name() == ENGINE_HANDLER for handler in access_logger.handlers):
        return False
    if not _told_about_hypercorns:
        _told_about_hypercorns = True
        logger.warning(
            "hypercorn.toml turns on hypercorn's own access log (`accesslog`), which costs 80-120 us of CPU per "
            "request: remove `accesslog` and `access_log_format` from it, and the service writes these lines "
            "itself (ACCESS_LOG, see docs/operations.md)"
        )
    return True

"""The access log: one line per request, written by the service itself when the request is over (ACCESS_LOG).

    [2026-12-02 10:31:07 +0000] [4211] [INFO] 127.0.0.1:50522 "POST /v1/chat/completions 1.1" 200 312 0.004121s req_5f0c...

client, request line, status (`-` when the client left before the response started), body bytes sent, seconds,
request id. Hypercorn can write such lines too (`accesslog` in hypercorn.toml), but it builds each one from a copy
of every environment variable and request header: 60-90 µs of CPU per request, a sixth of what the service spends
on a cheap one. This writes the same line from what `TrackRequests` already knows, in a few µs. The lines keep the
logger name hypercorn's had (`hypercorn.access`), so that filters and log shippers that pick them still do.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
from typing import Any

from .request_tracking import RequestInfo

ACCESS_LOGGER_NAME = "hypercorn.access"
# The format of the line's message; `log_format.JsonFormatter` turns the same values into JSON fields.
ACCESS_FORMAT = '%(client)s "%(method)s %(path)s %(protocol)s" %(status)s %(bytes)s %(seconds).6fs %(request_id)s'
# Names the handler `log_format.configure_logging` gives the access logger, to tell it from hypercorn's own.
ENGINE_HANDLER = "engine-access-log"

access_logger = logging.getLogger(ACCESS_LOGGER_NAME)
logger = logging.getLogger(__name__)
_told_about_hypercorns = False


def write_access_line(scope: dict[str, Any], info: RequestInfo, seconds: float) -> None:
    """The access line of a request that is over (`TrackRequests` calls this last)."""
    if hypercorn_writes_its_own():
        return
    client = scope.get("client")
    access_logger.info(
        ACCESS_FORMAT,
        {
            "client": f"{client[0]}:{client[1]}" if client else "-",
            "method": info.method,
            "path": scope["path"],
            "protocol": scope.get("http_version", "1.1"),
            "status": info.status or "-",
            "bytes": info.bytes_sent,
            "seconds": seconds,
            "request_id": info.id,
        },
    )


def hypercorn_writes_its_own() -> bool:
    """True when a hypercorn.toml from before the service wrote its own lines still turns on hypercorn's (`accesslog`):
    hypercorn then owns the logger's handlers, and one line per request is enough. Said once, with what to change."""
    global _told_about_hypercorns
    if all(handler.get_name() == ENGINE_HANDLER for handler in access_logger.handlers):
        return False
    if not _told_about_hypercorns:
        _told_about_hypercorns = True
        logger.warning(
            "hypercorn.toml turns on hypercorn's own access log (`accesslog`), which costs 60-90 us of CPU per "
            "request: remove `accesslog` and `access_log_format` from it, and the service writes these lines "
            "itself (ACCESS_LOG, see docs/operations.md)"
        )
    return True

"""How the service's log lines look: text for people, or one JSON object per line for log shippers (LOG_FORMAT).

Every line a request causes names its id (see `request_tracking.py`): `... [req_5f0c...] haystack_service.engine.runs.runner: ...` in
text, `"request_id"` in JSON, with the model and route when known. The access lines (`access_log.py`) go to stdout
in hypercorn's look, as its own did. Hypercorn prints its own lines (its errors) with its own handlers; in JSON they
come here instead, so every line on the output is JSON.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
import logging
import sys
import time
from datetime import UTC, datetime

from .access_log import ACCESS_LOGGER_NAME, ENGINE_HANDLER
from .request_tracking import current_request_info

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
HYPERCORN_LOGGERS = (ACCESS_LOGGER_NAME, "hypercorn.error")


def configure_logging(level: str, log_format: str = "text") -> None:
    """One log format for the service; Haystack's per-component lines only when debugging."""
    level = level.upper()
    root = logging.getLogger()
    root.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER_NAME)
    access.setLevel(logging.INFO)  # one line per request whatever LOG_LEVEL says; ACCESS_LOG=off for none
    if not root.handlers:  # a host that configured logging (pytest, a custom runner) keeps its own
        handler = logging.StreamHandler()
        handler.addFilter(RequestFields())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
            logging.captureWarnings(True)  # Python's warnings as log records too, not as lines of their own
            for name in HYPERCORN_LOGGERS:
                logging.getLogger(name).addFilter(SendTo(handler))
        else:
            handler.setFormatter(logging.Formatter(TEXT_FORMAT))
            # Hypercorn prints its own lines with its own handler; do not print them twice.
            handler.addFilter(lambda record: not record.name.startswith("hypercorn."))
            access_handler = logging.StreamHandler(sys.stdout)
            access_handler.set_name(ENGINE_HANDLER)
            access_handler.setFormatter(AccessTextFormatter())
            access.handlers = [access_handler]
            access.propagate = False
        root.addHandler(handler)
    quiet = level if level == "DEBUG" else "WARNING"
    logging.getLogger("haystack").setLevel(quiet)
    for client_logger in ("httpx", "httpx2"):  # one INFO line per LLM call would sit on the hot path
        logging.getLogger(client_logger).setLevel(quiet)
    # A run stopped because its client left is a pipeline failure to Haystack, which then warns that it
    # cannot serialise the streaming callback into its (unsaved) snapshot: noise on every disconnect.
    logging.getLogger("haystack.utils.base_serialization").setLevel(level if level == "DEBUG" else "ERROR")


class RequestFields(logging.Filter):
    """Puts the current request's id, model and route on every record (`-` and None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_request_info()
        record.request_id = info.id if info is not None else "-"
        record.model = (info.model or None) if info is not None else None
        record.route = info.route if info is not None else None
        return True


class SendTo(logging.Filter):
    """On one of hypercorn's loggers: hand each record to `handler` instead of hypercorn's own handler.

    Hypercorn replaces its loggers' handlers when it starts serving, after the app is built, but it keeps their
    filters: this one passes the record on, then stops hypercorn's handler from printing it a second time.
    """

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.handler.level:
            self.handler.handle(record)
        return False


# `json.dumps(line, ensure_ascii=False, default=str)` with the encoder made once, not on every line.
_json_line = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, model, route; status and duration too
    on access lines, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "model": getattr(record, "model", None),
            "route": getattr(record, "route", None),
        }
        if (access := getattr(record, "access", None)) is not None:  # an access line: its fields (access_log.py)
            line |= access
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _json_line.encode(line)


class AccessTextFormatter(logging.Formatter):
    """The access lines' look in text, hypercorn's: `[2026-12-02 10:31:07 +0000] [4211] [INFO] 127.0.0.1:50522 "POST...`

    One line per request: the time string is made once a second, not for every line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("[%Y-%m-%d %H:%M:%S %z]", time.localtime(second))
        return f"{self._stamp} [{record.process}] [{record.levelname}] {record.getMessage()}"

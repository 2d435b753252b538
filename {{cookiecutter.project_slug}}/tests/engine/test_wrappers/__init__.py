"""Edge-case wrappers served by `test_service` (WRAPPERS_PACKAGE=test_wrappers).

Each module is one behaviour the service must handle. What a wrapper did is recorded here so a
test can check it: in module-level dicts (in-process tests) and, when TEST_WRAPPERS_DIR is set,
in files (the service runs in a subprocess).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

COUNTS: dict[str, int] = {}
STOPPED: set[str] = set()
_lock = threading.Lock()


def _state_file(key: str, suffix: str) -> Path | None:
    directory = os.environ.get("TEST_WRAPPERS_DIR")
    if not directory:
        return None
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in key)
    return Path(directory) / f"{safe}.{suffix}"


def bump(key: str) -> int:
    """Count one more produced chunk (or call) under `key`."""
    with _lock:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        count = COUNTS[key]
    path = _state_file(key, "count")
    if path is not None:
        path.write_text(str(count))
    return count


def mark_stopped(key: str) -> None:
    """Record that the producer under `key` was closed or cancelled."""
    with _lock:
        STOPPED.add(key)
    path = _state_file(key, "stopped")
    if path is not None:
        path.write_text("stopped")


def last_user_text(messages: list[dict]) -> str:
    """The run key tests pass as the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""

"""The responses this process stored last, kept in memory, so the next turn of a chain does not read back and
decode the whole conversation it has just written.

A turn through `previous_response_id` needs its predecessor's input and output as items: read from the store,
that is O(conversation) in bytes decoded (3 ms per MB), on every turn. Here the items are the very objects the
previous turn held, so the next turn costs what it adds. Only a cache: the store says whether the response still
exists (deleted or expired on any replica) before an entry is used, and a miss reads the store as before.

Entries are bounded in bytes of their items' JSON (`max_bytes`), least recently used first out; a chain keeps
only its newest turn here, since its earlier ones are not continued again, as a rule.

Only turns that continue a response are kept, not first turns. A first turn is small (what one request sent, and
its answer) and read back at once; most are never continued; and holding tens of thousands of them cost every
request more than the reads it saved (measured on the store benchmark, 2026-12-07: 3.0-3.3 ms of CPU per
streamed request once the cache was full, 2.2-2.4 without first turns in it). A chain enters at its second turn.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections import OrderedDict
from dataclasses import dataclass

from ..wire.json_text import compact_json
from .store import StoredResponse

MAX_BYTES = 64 * 1024 * 1024  # of the kept conversations' JSON, in one process


@dataclass(frozen=True, slots=True)
class _Entry:
    stored: StoredResponse
    size: int  # bytes of its input and output items' JSON


class RecentResponses:
    """Response id -> the StoredResponse this process saved under it (the items shared, not copied)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0

    def recall(self, response_id: str) -> StoredResponse | None:
        """The response as saved, if kept here; the caller checks the store still has it."""
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        self._entries.move_to_end(response_id)
        return entry.stored

    def remember(self, response_id: str, stored: StoredResponse) -> None:
        """Keep a response just saved. When it continues one kept here (`stored.history`), only this turn's items are
        measured, and that entry goes: a chain keeps its newest turn. A first turn is not kept (see above)."""
        history = stored.history
        if history is None or history.kind != "response":
            return
        before = self._entries.get(history.source_id)
        known = history.length if before is not None else 0
        added = compact_json([*stored.input_items[known:], *stored.response["output"]])
        size = (before.size if before is not None else 0) + len(added.encode())
        if before is not None:
            self.forget(history.source_id)
        self.forget(response_id)
        if size > self.max_bytes:
            return
        self._entries[response_id] = _Entry(stored, size)
        self._size += size
        while self._size > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._size -= oldest.size

    def forget(self, response_id: str) -> None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self._size -= entry.size

    def __len__(self) -> int:
        return len(self._entries)

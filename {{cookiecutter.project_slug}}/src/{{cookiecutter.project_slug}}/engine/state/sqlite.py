"""The default state store: one SQLite file (in DATA_DIR), shared by every worker process on the host.

WAL mode lets readers go on while one process writes; `synchronous=NORMAL` keeps every committed write
through a crash of the process (a power cut may lose the last ones). Every write is one transaction (one
statement, or a response and its item index in `transaction`): after a crash a record is whole or absent.

A write here takes tens of microseconds and never waits for the disk, which is less than handing it to a
thread costs (measured: ~100 µs of CPU per hand-off, plus waits for the GIL), so each process runs its
queries on the event loop, on a connection that never waits: no busy timeout, no checkpoints. What may
wait runs in the store's own thread, on a second connection: a write that finds another worker writing
(retried there, waiting up to BUSY_TIMEOUT_MS), opening the file, listing files; and, in a third thread and
connection, the upkeep after every tenth of a bound written (the bounds, then a WAL checkpoint, which flushes
to disk).

A write of several statements (a conversation and its items) is one transaction (`transaction` below), so it
too is whole or absent after a crash.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .sqlite_items import (
    ITEM_TABLES,
    forget_responses,
    history_keys,
    hold,
    read_items,
    release,
    store_items,
    upgrade,
)
from .store import (
    BackgroundRun,
    ConversationFull,
    ConversationLimits,
    DuplicateItem,
    ItemRecord,
    LoggedEvent,
    Order,
    ResponseLimits,
    StoredConversation,
    StoredFile,
    StoredResponse,
    StoreUnavailable,
    conversation_records,
    decode_items,
    response_record,
    size_of,
)

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

SCHEMA = (
    ITEM_TABLES
    + """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY,  -- the order they were saved in: the oldest go first
    id TEXT NOT NULL UNIQUE,
    expires_at REAL NOT NULL,
    size INTEGER NOT NULL,  -- what its save added: its record, and the items it was first to store
    record TEXT NOT NULL,  -- the response, its output left out
    input_keys TEXT NOT NULL,  -- its input items' keys in order (a JSON array)
    output_keys TEXT NOT NULL,
    base INTEGER,  -- the turn it continued (seq), whose holds cover its first `own_from` input items
    own_from INTEGER NOT NULL DEFAULT 0,  -- it holds its input items from here on, and its output
    successors INTEGER NOT NULL DEFAULT 0,  -- later turns holding it as their base
    gone INTEGER NOT NULL DEFAULT 0  -- deleted, expired or pushed out, but kept unseen (renamed) while it has successors
);
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, purpose TEXT NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (response_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at REAL NOT NULL,  -- its last change plus the TTL: past the bounds, the least recently changed go first
    items INTEGER NOT NULL,
    size INTEGER NOT NULL,  -- bytes of its items' JSON
    next_position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversation_items (
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    item_key INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
-- An id names one item of a conversation. By id first, an item is also found without its conversation.
CREATE UNIQUE INDEX IF NOT EXISTS conversation_item_ids ON conversation_items (id, conversation_id);
"""
)
# Items by id, for `item_reference`: held by a response that has not expired (its owner, or one counted in
# `item_holds`). The newest item of an id last. (`coalesce` as in `items_by_id_digest`, so that it searches it.)
HELD_ITEMS = """
SELECT i.item_id, i.record FROM items i LEFT JOIN item_holds h ON h.key = i.key LEFT JOIN responses r ON r.seq = i.owner
WHERE coalesce(i.item_id, '') IN (SELECT value FROM json_each(:ids))
AND (r.expires_at > :now OR h.responses > 0 AND h.until > :now)
ORDER BY i.key
"""
# Past the bounds, the oldest responses go: newest first, the first row whose running total passes a bound, and
# all older ones. Found by a read (which never blocks writers), then deleted by `seq`, which is quick. Hidden ones
# (gone, kept as the base of a later turn) count no more, as on Redis.
PAST_THE_BOUNDS = """
SELECT max(seq) FROM (
    SELECT seq, row_number() OVER newest_first AS count, sum(size) OVER newest_first AS bytes
    FROM responses WHERE gone = 0 WINDOW newest_first AS (ORDER BY seq DESC)
) WHERE count > :max_count OR bytes > :max_bytes
"""
# The same for conversations, ordered by their last change: the newest past a bound, found by a read.
CONVERSATIONS_PAST_THE_BOUNDS = """
SELECT max(expires_at) FROM (
    SELECT expires_at, row_number() OVER newest_first AS count, sum(size) OVER newest_first AS bytes
    FROM conversations WINDOW newest_first AS (ORDER BY expires_at DESC)
) WHERE count > :max_count OR bytes > :max_bytes
"""
LIVE_CONVERSATION = "SELECT items, size, next_position FROM conversations WHERE id = ? AND expires_at > ?"
LIVE_ITEM = """
SELECT ci.position, ci.item_key, i.record FROM conversation_items ci
JOIN conversations c ON c.id = ci.conversation_id JOIN items i ON i.key = ci.item_key
WHERE ci.conversation_id = ? AND ci.id = ? AND c.expires_at > ?
"""
# The items with any of the ids in a JSON array, in live conversations, the most recently changed last.
ITEMS_BY_ID = """
SELECT ci.id, i.record FROM conversation_items ci
JOIN conversations c ON c.id = ci.conversation_id JOIN items i ON i.key = ci.item_key
WHERE ci.id IN (SELECT value FROM json_each(?)) AND c.expires_at > ? ORDER BY c.expires_at
"""
TAKEN_IDS = "SELECT id FROM conversation_items WHERE conversation_id = ? AND id IN (SELECT value FROM json_each(?))"
INSERT_ITEM = "INSERT INTO conversation_items (conversation_id, position, id, item_key, size) VALUES (?, ?, ?, ?, ?)"
UNCHANGED_SINCE = "SELECT id FROM conversations WHERE expires_at <= ? AND id IN (SELECT value FROM json_each(?))"
# Its seq is its new items' owner when it stored any (NULL: the next one, max(seq) + 1, as for those).
INSERT_RESPONSE = """
INSERT INTO responses (seq, id, expires_at, size, record, input_keys, output_keys, base, own_from)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq
"""
FORGOTTEN_PER_WRITE = (
    100  # responses or conversations the upkeep drops in one transaction, so that it holds the lock briefly
)
BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's write before giving up
POLL_SECONDS = 0.2  # how often a follower of another process's event log looks for new events
EVENTS_PER_READ = 1000
# A save is one row written, and nothing more (the fastest write). Applying the bounds reads every row, so a
# process does it (in its thread, then checkpoints the WAL) once it has written a tenth of a bound since the last
# time, or TRIM_WRITES rows at least: the store may hold that much more for a moment.
TRIM_FRACTION = 10
TRIM_WRITES = 100


class SQLiteStore:
    engine = "sqlite"

    def __init__(self, path: Path, limits: ResponseLimits, conversation_limits: ConversationLimits) -> None:
        self.path = path
        self.limits = limits
        self.conversation_limits = conversation_limits
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-state")
        # Upkeep has a thread and a connection of its own, so a write waiting for the lock never waits behind it.
        self._upkeep_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-upkeep")
        self._on_loop: sqlite3.Connection | None = None  # never waits
        self._in_thread: sqlite3.Connection | None = None  # waits for locks
        self._for_upkeep: sqlite3.Connection | None = None  # trims, checkpoints
        self._unchecked_writes = self._unchecked_bytes = 0  # written by this process since the last trim
        self._trimming: asyncio.Future[None] | None = None

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def _open(self) -> None:
        """In the thread: create the file and its tables (several workers may start at once), then both connections."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        waiting = self._connect(BUSY_TIMEOUT_MS)
        waiting.execute("PRAGMA journal_mode = WAL")
        with transaction(waiting):
            upgrade(waiting, SCHEMA)
        never_waiting = self._connect(0)
        never_waiting.execute("PRAGMA wal_autocheckpoint = 0")  # the thread checkpoints instead
        self._in_thread, self._on_loop = waiting, never_waiting

    async def _threaded(self, query: Callable[[sqlite3.Connection], Result]) -> Result:
        """Run `query` in the store's thread, where waiting is fine."""

        def run() -> Result:
            if self._in_thread is None:
                self._open()
            assert self._in_thread is not None
            return query(self._in_thread)

        with failures_unavailable(self.path):
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def _run(self, query: Callable[[sqlite3.Connection], Result], *, writes: int | None = None) -> Result:
        """Run `query` here on the event loop, or in the thread when it would have to wait for another writer."""
        if self._on_loop is None:
            await self._threaded(lambda db: None)  # opens the file
        assert self._on_loop is not None
        try:
            with failures_unavailable(self.path, but_busy=True):
                result = query(self._on_loop)
        except sqlite3.OperationalError:  # busy: another worker is writing
            result = await self._threaded(query)
        if writes is not None:
            self._count_write(writes)
        return result

    def _count_write(self, size: int) -> None:
        """Start the upkeep once this process has written a tenth of a bound since the last."""
        self._unchecked_writes += 1
        self._unchecked_bytes += size
        enough_rows = self._unchecked_writes >= max(TRIM_WRITES, self.limits.max_count // TRIM_FRACTION)
        if self._trimming is None and (enough_rows or self._unchecked_bytes * TRIM_FRACTION >= self.limits.max_bytes):
            self._unchecked_writes = self._unchecked_bytes = 0
            self._trimming = asyncio.ensure_future(self._upkeep())

    async def _upkeep(self) -> None:
        """The bounds, then a checkpoint (copying the WAL into the database, never waiting for readers)."""
        try:
            await self.prune()
            await self._in_upkeep_thread(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)"))
        except StoreUnavailable as error:
            logger.warning("SQLite upkeep of %s failed: %s", self.path, error.message)
        finally:
            self._trimming = None

    # --- responses ---

    async def save_response(self, response_id: str, stored: StoredResponse) -> bool:
        if self.limits.max_count <= 0:
            return False
        expires_at = time.time() + self.limits.ttl_seconds

        def save(db: sqlite3.Connection) -> int | None:
            with transaction(db):
                return self._insert_response(db, response_id, expires_at, stored)

        return await self._saved(save)

    async def _saved(self, save: Callable[[sqlite3.Connection], int | None]) -> bool:
        """Run a save; its size counts towards the next upkeep. None: not saved (too large, or not the owner's)."""
        try:
            size = await self._run(save)
        except TooLarge:
            return False
        if size is not None:
            self._count_write(size)
        return size is not None

    def _insert_response(
        self, db: sqlite3.Connection, response_id: str, expires_at: float, stored: StoredResponse
    ) -> int:
        """Within a transaction: the response, its new items and its holds, replacing one of its id; its size.

        The items `stored.history` names are taken by key, without reading them, and held through their response
        (the new one's base); the others are found by digest. The items it stores first are its own (their owner
        is its seq): it holds them without an `item_holds` row.
        """
        history = stored.history
        if history is not None and history.source_id == response_id:  # its own earlier self goes below
            history = None
        base, known = history_keys(db, history, stored.input_items, time.time()) or (None, [])
        rest = stored.input_items[len(known) :]
        output = stored.response.get("output", ())
        keys, new, written, seq = store_items(db, [ItemRecord.of(item) for item in (*rest, *output)], owned=True)
        new_input, output_keys = keys[: len(rest)], keys[len(rest) :]
        record = response_record(stored.response)
        size = len(record.encode()) + written
        if size > self.limits.max_bytes:
            raise TooLarge()  # rolls the transaction back: nothing of it is kept
        input_keys = [*known, *new_input]
        own_from = len(known) if base is not None else 0  # a conversation's items may go: it holds them itself
        row = (seq, response_id, expires_at, size, record, json.dumps(input_keys), json.dumps(output_keys))
        # Held first: when it is saved again, its earlier self goes, but not the items the new one holds. (Its
        # seq stays above every other: the earlier self only goes.)
        held = [key for key in dict.fromkeys([*input_keys[own_from:], *output_keys]) if key not in new]
        hold(db, held, "responses", expires_at)
        if db.execute(INSERT_RESPONSE, (*row, base, own_from)).fetchone() is None:
            forget_response(db, response_id)
            db.execute(INSERT_RESPONSE, (*row, base, own_from)).fetchone()
        if base is not None:
            db.execute("UPDATE responses SET successors = successors + 1 WHERE seq = ?", (base,))
        return size

    async def get_response(self, response_id: str) -> StoredResponse | None:
        def get(db: sqlite3.Connection) -> StoredResponse | None:
            query = "SELECT record, input_keys, output_keys FROM responses WHERE id = ? AND expires_at > ?"
            row = db.execute(query, (response_id, time.time())).fetchone()
            if row is None:
                return None
            record, input_keys, output_keys = row
            input_items, output = read_items(db, json.loads(input_keys), json.loads(output_keys))
            return StoredResponse({**json.loads(record), "output": output}, input_items)

        return await self._run(get)

    async def has_response(self, response_id: str) -> bool:
        query = "SELECT 1 FROM responses WHERE id = ? AND expires_at > ?"
        return await self._run(lambda db: db.execute(query, (response_id, time.time())).fetchone()) is not None

    async def delete_response(self, response_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with transaction(db):
                db.execute("DELETE FROM events WHERE response_id = ?", (response_id,))
                return forget_response(db, response_id)

        return await self._run(delete, writes=0)

    async def get_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not item_ids:
            return {}
        wanted = {"ids": json.dumps(item_ids), "now": time.time()}
        rows = await self._run(lambda db: db.execute(HELD_ITEMS, wanted).fetchall())
        return {item_id: json.loads(record) for item_id, record in rows}  # the newest item of an id wins

    # --- background runs ---

    async def create_run(self, run: BackgroundRun, lease_seconds: float) -> None:
        row = (run.id, run.owner, time.time() + lease_seconds, run.to_json())
        query = "INSERT INTO runs (id, owner, lease_until, record) VALUES (?, ?, ?, ?)"
        await self._run(lambda db: db.execute(query, row), writes=0)

    async def get_run(self, response_id: str) -> BackgroundRun | None:
        query = "SELECT record, owner, lease_until, cancel_requested FROM runs WHERE id = ?"
        row = await self._run(lambda db: db.execute(query, (response_id,)).fetchone())
        return _run_from(row) if row else None

    async def update_run(self, run: BackgroundRun) -> bool:
        query = "UPDATE runs SET record = ? WHERE id = ? AND owner = ?"
        updated = await self._run(lambda db: db.execute(query, (run.to_json(), run.id, run.owner)).rowcount, writes=0)
        return updated > 0

    async def renew_leases(self, owner: str, response_ids: list[str], lease_seconds: float) -> dict[str, bool]:
        def renew(db: sqlite3.Connection) -> dict[str, bool]:
            marks = ",".join("?" * len(response_ids))
            with transaction(db):
                query = f"UPDATE runs SET lease_until = ? WHERE owner = ? AND id IN ({marks})"
                db.execute(query, (time.time() + lease_seconds, owner, *response_ids))
                query = f"SELECT id, cancel_requested FROM runs WHERE owner = ? AND id IN ({marks})"
                return {run_id: bool(cancel) for run_id, cancel in db.execute(query, (owner, *response_ids))}

        return await self._run(renew, writes=0) if response_ids else {}

    async def request_cancel(self, response_id: str) -> BackgroundRun | None:
        def cancel(db: sqlite3.Connection) -> tuple[str, str, float, int] | None:
            with transaction(db):
                db.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (response_id,))
                query = "SELECT record, owner, lease_until, cancel_requested FROM runs WHERE id = ?"
                return db.execute(query, (response_id,)).fetchone()

        row = await self._run(cancel, writes=0)
        return _run_from(row) if row else None

    async def take_over_lapsed(self, owner: str, lease_seconds: float) -> list[BackgroundRun]:
        def take(db: sqlite3.Connection) -> list[tuple[str, str, float, int]]:
            now = time.time()
            with transaction(db):
                lapsed = [run_id for (run_id,) in db.execute("SELECT id FROM runs WHERE lease_until < ?", (now,))]
                if not lapsed:
                    return []
                marks = ",".join("?" * len(lapsed))
                query = f"UPDATE runs SET owner = ?, lease_until = ? WHERE lease_until < ? AND id IN ({marks})"
                db.execute(query, (owner, now + lease_seconds, now, *lapsed))
                query = (
                    f"SELECT record, owner, lease_until, cancel_requested FROM runs WHERE owner = ? AND id IN ({marks})"
                )
                return db.execute(query, (owner, *lapsed)).fetchall()

        # A transaction that writes: in the thread, where waiting for another worker's write is fine.
        return [_run_from(row) for row in await self._threaded(take)]

    async def release_runs(self, owner: str, response_ids: list[str]) -> None:
        marks = ",".join("?" * len(response_ids))
        query = f"UPDATE runs SET lease_until = 0 WHERE owner = ? AND id IN ({marks})"
        if response_ids:
            await self._run(lambda db: db.execute(query, (owner, *response_ids)), writes=0)

    async def finish_run(self, run: BackgroundRun, stored: StoredResponse) -> bool:
        expires_at = time.time() + self.limits.ttl_seconds

        def finish(db: sqlite3.Connection) -> int | None:
            with transaction(db):
                if db.execute("DELETE FROM runs WHERE id = ? AND owner = ?", (run.id, run.owner)).rowcount == 0:
                    return None
                db.execute("SAVEPOINT response")
                try:
                    size = self._insert_response(db, run.id, expires_at, stored)
                except TooLarge:
                    db.execute("ROLLBACK TO response")  # the run ends all the same; its response is too large to keep
                    size = 0
                db.execute("RELEASE response")
                return size

        return await self._saved(finish)

    # --- event logs ---

    async def append_events(self, response_id: str, events: list[LoggedEvent]) -> None:
        expires_at = time.time() + self.limits.ttl_seconds
        rows = [(response_id, seq, expires_at, event) for seq, event in events]
        query = "INSERT OR REPLACE INTO events (response_id, seq, expires_at, event) VALUES (?, ?, ?, ?)"
        await self._run(lambda db: db.executemany(query, rows), writes=0)

    async def read_events(self, response_id: str, after: int, limit: int) -> list[LoggedEvent]:
        query = "SELECT seq, event FROM events WHERE response_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        return await self._run(lambda db: db.execute(query, (response_id, after, limit)).fetchall())

    async def last_sequence_number(self, response_id: str) -> int:
        query = "SELECT max(seq) FROM events WHERE response_id = ?"
        (last,) = await self._run(lambda db: db.execute(query, (response_id,)).fetchone())
        return -1 if last is None else last

    async def wait_for_events(self, response_id: str, after: int, timeout: float) -> list[LoggedEvent]:
        """Polled: other processes write the same file, and SQLite tells nobody. Quick at first, then every
        POLL_SECONDS, so a follower on another worker lags by at most that."""
        deadline = time.monotonic() + timeout
        pause = 0.01
        while not (events := await self.read_events(response_id, after, EVENTS_PER_READ)):
            if time.monotonic() >= deadline:
                return []
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, POLL_SECONDS)
        return events

    # --- files ---

    async def add_file(self, file: StoredFile) -> None:
        def add(db: sqlite3.Connection) -> None:
            query = "INSERT OR IGNORE INTO files (id, purpose, record) VALUES (?, ?, ?)"
            db.execute(query, (file.id, file.purpose, file.to_json()))

        await self._run(add, writes=0)

    async def get_file(self, file_id: str) -> StoredFile | None:
        def get(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT record FROM files WHERE id = ?", (file_id,)).fetchone()
            return row[0] if row else None

        record = await self._run(get)
        return StoredFile.from_json(record) if record is not None else None

    async def list_files(self, *, purpose: str | None, order: Order, after: str | None, limit: int) -> list[StoredFile]:
        conditions, values = [], []
        if purpose is not None:
            conditions.append("purpose = ?")
            values.append(purpose)
        if after is not None:
            conditions.append("id > ?" if order == "asc" else "id < ?")
            values.append(after)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        query = f"SELECT record FROM files {where} ORDER BY id {'ASC' if order == 'asc' else 'DESC'} LIMIT ?"
        # Up to 10,000 files: read and decoded in the thread, not on the event loop.
        rows = lambda db: [StoredFile.from_json(record) for (record,) in db.execute(query, (*values, limit))]  # noqa: E731
        return await self._threaded(rows)

    async def delete_file(self, file_id: str) -> bool:
        delete = lambda db: db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0  # noqa: E731
        return await self._run(delete, writes=0)

    # --- conversations ---

    async def create_conversation(self, conversation: StoredConversation, items: list[dict[str, Any]]) -> None:
        records = conversation_records(items)
        size = size_of(records)
        self._check_bounds(len(records), size)
        row = (conversation.id, conversation.to_json(), self._expiry(), len(records), size, len(records))

        def create(db: sqlite3.Connection) -> None:
            with transaction(db):
                forget_conversations(db, [conversation.id])
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)", row)
                add_items(db, conversation.id, 0, records)

        await self._run(create, writes=size)

    async def get_conversation(self, conversation_id: str) -> StoredConversation | None:
        query = "SELECT record FROM conversations WHERE id = ? AND expires_at > ?"
        row = await self._run(lambda db: db.execute(query, (conversation_id, time.time())).fetchone())
        return StoredConversation.from_json(row[0]) if row else None

    async def update_conversation(self, conversation_id: str, metadata: dict[str, str]) -> StoredConversation | None:
        def update(db: sqlite3.Connection) -> StoredConversation | None:
            with transaction(db):
                query = "SELECT record FROM conversations WHERE id = ? AND expires_at > ?"
                row = db.execute(query, (conversation_id, time.time())).fetchone()
                if row is None:
                    return None
                updated = replace(StoredConversation.from_json(row[0]), metadata=metadata)
                change = "UPDATE conversations SET record = ?, expires_at = ? WHERE id = ?"
                db.execute(change, (updated.to_json(), self._expiry(), conversation_id))
                return updated

        return await self._run(update, writes=0)

    async def delete_conversation(self, conversation_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with transaction(db):
                alive = db.execute(LIVE_CONVERSATION, (conversation_id, time.time())).fetchone() is not None
                forget_conversations(db, [conversation_id])
                return alive

        return await self._run(delete, writes=0)

    async def add_conversation_items(self, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        records = conversation_records(items)
        added = size_of(records)
        ids = json.dumps([item["id"] for item in items])

        def add(db: sqlite3.Connection) -> bool:
            with transaction(db):
                row = db.execute(LIVE_CONVERSATION, (conversation_id, time.time())).fetchone()
                if row is None:
                    return False
                count, size, position = row
                self._check_bounds(count + len(records), size + added)
                if duplicate := db.execute(TAKEN_IDS, (conversation_id, ids)).fetchone():
                    raise DuplicateItem(duplicate[0])
                add_items(db, conversation_id, position, records)
                change = "UPDATE conversations SET items = ?, size = ?, next_position = ?, expires_at = ? WHERE id = ?"
                count, size, position = count + len(records), size + added, position + len(records)
                db.execute(change, (count, size, position, self._expiry(), conversation_id))
                return True

        return await self._run(add, writes=added)

    async def list_conversation_items(
        self, conversation_id: str, *, order: Order, after: str | None, limit: int | None
    ) -> list[dict[str, Any]] | None:
        query = (
            "SELECT i.record FROM conversation_items ci JOIN items i ON i.key = ci.item_key WHERE conversation_id = ?"
        )
        values: list[object] = [conversation_id]
        if after is not None:
            position_of_after = "SELECT position FROM conversation_items WHERE conversation_id = ? AND id = ?"
            query += f" AND position {'>' if order == 'asc' else '<'} ({position_of_after})"
            values += [conversation_id, after]
        query += f" ORDER BY position {'ASC' if order == 'asc' else 'DESC'}"
        if limit is not None:
            query += " LIMIT ?"
            values.append(limit)

        def listed(db: sqlite3.Connection) -> list[dict[str, Any]] | None:
            if db.execute(LIVE_CONVERSATION, (conversation_id, time.time())).fetchone() is None:
                return None
            return decode_items(",".join(record for (record,) in db.execute(query, values)))

        # A page (at most 100) is read here; a whole conversation, as a response's input, in the thread.
        return await (self._run(listed) if limit is not None else self._threaded(listed))

    async def get_conversation_item(self, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        row = await self._run(lambda db: db.execute(LIVE_ITEM, (conversation_id, item_id, time.time())).fetchone())
        return json.loads(row[2]) if row else None

    async def find_conversation_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not item_ids:
            return {}
        query = lambda db: db.execute(ITEMS_BY_ID, (json.dumps(item_ids), time.time())).fetchall()  # noqa: E731
        return {item_id: json.loads(record) for item_id, record in await self._run(query)}

    async def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with transaction(db):
                row = db.execute(LIVE_ITEM, (conversation_id, item_id, time.time())).fetchone()
                if row is None:
                    return False
                position, key, record = row
                query = "DELETE FROM conversation_items WHERE conversation_id = ? AND position = ?"
                db.execute(query, (conversation_id, position))
                release(db, [key], "conversations")
                change = "UPDATE conversations SET items = items - 1, size = size - ?, expires_at = ? WHERE id = ?"
                db.execute(change, (len(record.encode()), self._expiry(), conversation_id))
                return True

        return await self._run(delete, writes=0)

    def _expiry(self) -> float:
        return time.time() + self.conversation_limits.ttl_seconds

    def _check_bounds(self, items: int, size: int) -> None:
        limits = self.conversation_limits
        if items > limits.max_items_each or size > min(limits.max_bytes_each, limits.max_bytes):
            raise ConversationFull()

    # --- upkeep ---

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def prune(self) -> int:
        return await self._prune_responses() + await self._prune_conversations()

    async def _prune_responses(self) -> int:
        bounds = {"max_count": self.limits.max_count, "max_bytes": self.limits.max_bytes}

        def trim(db: sqlite3.Connection) -> int:
            (cutoff,) = db.execute(PAST_THE_BOUNDS, bounds).fetchone()
            query = "SELECT seq FROM responses WHERE gone = 0 AND (seq <= ? OR expires_at <= ?)"
            found = [seq for (seq,) in db.execute(query, (cutoff or 0, time.time()))]
            dropped = 0
            for start in range(0, len(found), FORGOTTEN_PER_WRITE):  # others may write between two
                with transaction(db):  # a response saved again since has another seq, and stays
                    dropped += forget_responses(db, found[start : start + FORGOTTEN_PER_WRITE])
            # The logs of responses that expired or were pushed out by the bounds go with them.
            with transaction(db):
                db.execute("DELETE FROM events WHERE expires_at <= ?", (time.time(),))
                db.execute(
                    "DELETE FROM events WHERE response_id NOT IN (SELECT id FROM responses)"
                    " AND response_id NOT IN (SELECT id FROM runs)"
                )
            return dropped

        return await self._in_upkeep_thread(trim)

    async def _prune_conversations(self) -> int:
        bounds = {"max_count": self.conversation_limits.max_count, "max_bytes": self.conversation_limits.max_bytes}

        def trim(db: sqlite3.Connection) -> int:
            (past_the_bounds,) = db.execute(CONVERSATIONS_PAST_THE_BOUNDS, bounds).fetchone()
            cutoff = max(past_the_bounds or 0, time.time())  # those past a bound, and those that have expired
            rows = db.execute("SELECT id FROM conversations WHERE expires_at <= ?", (cutoff,))
            found = [conversation_id for (conversation_id,) in rows]
            dropped = 0
            for start in range(0, len(found), FORGOTTEN_PER_WRITE):  # others may write between two
                batch = json.dumps(found[start : start + FORGOTTEN_PER_WRITE])
                with transaction(db):  # those changed since they were found stay
                    still = db.execute(UNCHANGED_SINCE, (cutoff, batch)).fetchall()
                    forget_conversations(db, [conversation_id for (conversation_id,) in still])
                dropped += len(still)
            return dropped

        return await self._in_upkeep_thread(trim)

    async def _in_upkeep_thread(self, query: Callable[[sqlite3.Connection], Result]) -> Result:
        if self._on_loop is None:
            await self._threaded(lambda db: None)  # creates the file and its tables

        def run() -> Result:
            if self._for_upkeep is None:
                self._for_upkeep = self._connect(BUSY_TIMEOUT_MS)
            return query(self._for_upkeep)

        with failures_unavailable(self.path):
            return await asyncio.get_running_loop().run_in_executor(self._upkeep_thread, run)

    async def close(self) -> None:
        def close() -> None:
            for connection in (self._on_loop, self._in_thread, self._for_upkeep):
                if connection is not None:
                    connection.close()
            self._on_loop = self._in_thread = self._for_upkeep = None

        if self._trimming is not None:
            await asyncio.wait([self._trimming])
        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown(wait=False)
        self._upkeep_thread.shutdown(wait=False)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Several statements as one write: all of them or none (BEGIN IMMEDIATE: the lock first, or SQLITE_BUSY now)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # some failures (a full disk) have rolled it back already
            db.execute("ROLLBACK")
        raise


class TooLarge(Exception):
    """A response whose save alone would pass the byte bound: it is not kept."""


def forget_response(db: sqlite3.Connection, response_id: str) -> bool:
    """Within a transaction: the response goes (`forget_responses`); whether it was there."""
    row = db.execute("SELECT seq FROM responses WHERE id = ?", (response_id,)).fetchone()
    return row is not None and forget_responses(db, [row[0]]) > 0


def add_items(db: sqlite3.Connection, conversation_id: str, position: int, records: list[ItemRecord]) -> None:
    """Within a transaction: items at the conversation's positions from `position` on, each holding its item."""
    keys, *_ = store_items(db, records)
    rows = [
        (conversation_id, position + offset, record.item_id, key, record.size)
        for offset, (key, record) in enumerate(zip(keys, records, strict=True))
    ]
    db.executemany(INSERT_ITEM, rows)
    hold(db, keys, "conversations")


def _run_from(row: tuple[str, str, float, int]) -> BackgroundRun:
    record, owner, lease_until, cancel_requested = row
    return BackgroundRun.from_json(
        record, owner=owner, lease_until=lease_until, cancel_requested=bool(cancel_requested)
    )


def forget_conversations(db: sqlite3.Connection, conversation_ids: list[str]) -> None:
    """Within a transaction: the conversations and their items go."""
    rows = [(conversation_id,) for conversation_id in conversation_ids]
    query = "SELECT item_key FROM conversation_items WHERE conversation_id IN (SELECT value FROM json_each(?))"
    held = [key for (key,) in db.execute(query, (json.dumps(conversation_ids),))]
    db.executemany("DELETE FROM conversation_items WHERE conversation_id = ?", rows)
    db.executemany("DELETE FROM conversations WHERE id = ?", rows)
    release(db, held, "conversations")


@contextmanager
def failures_unavailable(path: Path, *, but_busy: bool = False) -> Iterator[None]:
    """SQLite failing (disk full, I/O error, a lock held for too long) is a 503; `but_busy` lets SQLITE_BUSY through."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if but_busy and error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            raise
        logger.error("SQLite state store %s failed: %s", path, error)
        raise StoreUnavailable("SQLite state store", error) from None
    except sqlite3.Error as error:
        logger.error("SQLite state store %s failed: %s", path, error)
        raise StoreUnavailable("SQLite state store", error) from None

"""The default state store: one SQLite file (in DATA_DIR), shared by every worker process on the host.

WAL mode lets readers go on while one process writes; `synchronous=NORMAL` keeps every committed write
through a crash of the process (a power cut may lose the last ones). Each process has one connection,
used by one thread of its own, so queries never run on the event loop. Every write is one transaction.
"""

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .store import FileOrder, ResponseLimits, StoredFile, StoredResponse, StoreUnavailable

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY,  -- the order they were saved in: the oldest go first
    id TEXT NOT NULL UNIQUE,
    expires_at REAL NOT NULL,
    size INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_expiry ON responses (expires_at);
-- Count and bytes of `responses`, kept by the triggers in the same transaction as each change.
CREATE TABLE IF NOT EXISTS response_totals (one INTEGER PRIMARY KEY CHECK (one = 1), count INTEGER, bytes INTEGER);
INSERT OR IGNORE INTO response_totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS responses_added AFTER INSERT ON responses BEGIN
    UPDATE response_totals SET count = count + 1, bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS responses_removed AFTER DELETE ON responses BEGIN
    UPDATE response_totals SET count = count - 1, bytes = bytes - OLD.size;
END;
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, purpose TEXT NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
"""
BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's write before giving up


class SQLiteStore:
    engine = "sqlite"

    def __init__(self, path: Path, limits: ResponseLimits) -> None:
        self.path = path
        self.limits = limits
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-state")
        self._connection: sqlite3.Connection | None = None

    async def _run(self, query: Callable[[sqlite3.Connection], Result]) -> Result:
        """Run `query` with the connection in the store's thread; SQLite's failures become StoreUnavailable."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, query)
        except sqlite3.Error as error:
            logger.error("SQLite state store %s failed: %s", self.path, error)
            raise StoreUnavailable(self.engine, error) from None

    def _in_thread(self, query: Callable[[sqlite3.Connection], Result]) -> Result:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")  # several workers may start at once
            self._connection = connection
        return query(self._connection)

    # --- responses ---

    async def save_response(self, response_id: str, stored: StoredResponse) -> bool:
        record = stored.to_json()
        if len(record) > self.limits.max_bytes or self.limits.max_count <= 0:
            return False

        def save(db: sqlite3.Connection) -> bool:
            now = time.time()
            with write_transaction(db):
                db.execute("DELETE FROM responses WHERE expires_at <= ?", (now,))
                db.execute(
                    "INSERT INTO responses (id, expires_at, size, record) VALUES (?, ?, ?, ?)",
                    (response_id, now + self.limits.ttl_seconds, len(record), record),
                )
                count, size = db.execute("SELECT count, bytes FROM response_totals").fetchone()
                while count > self.limits.max_count or size > self.limits.max_bytes:
                    seq, oldest_size = db.execute("SELECT seq, size FROM responses ORDER BY seq LIMIT 1").fetchone()
                    db.execute("DELETE FROM responses WHERE seq = ?", (seq,))
                    count, size = count - 1, size - oldest_size
            return True

        return await self._run(save)

    async def get_response(self, response_id: str) -> StoredResponse | None:
        def get(db: sqlite3.Connection) -> bytes | None:
            query = "SELECT record FROM responses WHERE id = ? AND expires_at > ?"
            row = db.execute(query, (response_id, time.time())).fetchone()
            return row[0] if row else None

        record = await self._run(get)
        return StoredResponse.from_json(record) if record is not None else None

    async def delete_response(self, response_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

        return await self._run(delete)

    # --- files ---

    async def add_file(self, file: StoredFile) -> None:
        def add(db: sqlite3.Connection) -> None:
            query = "INSERT OR IGNORE INTO files (id, purpose, record) VALUES (?, ?, ?)"
            db.execute(query, (file.id, file.purpose, file.to_json()))

        await self._run(add)

    async def get_file(self, file_id: str) -> StoredFile | None:
        def get(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT record FROM files WHERE id = ?", (file_id,)).fetchone()
            return row[0] if row else None

        record = await self._run(get)
        return StoredFile.from_json(record) if record is not None else None

    async def list_files(
        self, *, purpose: str | None, order: FileOrder, after: str | None, limit: int
    ) -> list[StoredFile]:
        conditions, values = [], []
        if purpose is not None:
            conditions.append("purpose = ?")
            values.append(purpose)
        if after is not None:
            conditions.append("id > ?" if order == "asc" else "id < ?")
            values.append(after)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        query = f"SELECT record FROM files {where} ORDER BY id {'ASC' if order == 'asc' else 'DESC'} LIMIT ?"
        rows = await self._run(lambda db: db.execute(query, (*values, limit)).fetchall())
        return [StoredFile.from_json(record) for (record,) in rows]

    async def delete_file(self, file_id: str) -> bool:
        return await self._run(lambda db: db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0)

    # --- upkeep ---

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def prune(self) -> int:
        return await self._run(
            lambda db: db.execute("DELETE FROM responses WHERE expires_at <= ?", (time.time(),)).rowcount
        )

    async def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._connection = None

        if self._connection is not None:
            await self._run(close)
        self._thread.shutdown(wait=False)


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, locked from its start (BEGIN IMMEDIATE), so it never fails upgrading a read lock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")

"""What one SQLite save writes and what its statements cost: WAL pages per save by b-tree, and CPU per statement.

    python bench/store_pages.py <project src> [<project src> ...] [--saves 2000] [--rounds 5]

Each argument is the `src/` of a baked project (e.g. `bench/.work/saves/head/src` after `store_saves.py`, or
any bake); each runs in its own process with that `src` first on `sys.path`, in the same venv, and the
projects take turns within each round. A commit writes every page it changed once into the WAL, so the frames
of N saves, mapped to their b-trees (SQLite's `dbstat`), say which tables and indexes a save touches. SQLite
releases the GIL inside a statement, so a Python profile misses this work; here each statement the save runs
on its connection is timed (CPU of the saving thread). Shapes: `first` (a new input and one answer, as
`store_saves.py`'s first turn) and `resent` (the same input every time, as `stores.py`'s requests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import json
import os
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP = 200  # saves before counting: the file and its b-trees past their first pages
SHAPES = ("first", "resent")


def shape(name: str, number: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    text = f"Answer {number}: " + "a sentence of an ordinary length for an answer " * 3
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    answer = {"id": f"msg_{number}", "type": "message", "role": "assistant", "status": "completed", "content": content}
    question = f"Question 0 of conversation {number}?" if name == "first" else "Say something."
    inputs = [{"type": "message", "role": "user", "content": question}]
    return {"id": f"resp_{number}", "object": "response", "status": "completed", "output": [answer]}, inputs


class TimedConnection:
    """The store's connection, each statement's CPU added up by its first words (rows read inside the timing)."""

    def __init__(self, db: sqlite3.Connection, times: collections.Counter[str]) -> None:
        self.db, self.times = db, times

    def execute(self, sql: str, *args: Any) -> Any:
        start = time.thread_time()
        cursor = self.db.execute(sql, *args)
        if sql.lstrip().upper().startswith("SELECT") or "RETURNING" in sql.upper():
            cursor = Rows(cursor.fetchall())
        self.times[" ".join(sql.split()[:3])[:40]] += time.thread_time() - start
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class Rows(list):
    def fetchone(self) -> Any:
        return self[0] if self else None

    def fetchall(self) -> list:
        return list(self)


def wal_pages_by_btree(path: Path) -> collections.Counter[str]:
    wal = (path.parent / (path.name + "-wal")).read_bytes()
    page_size = struct.unpack(">I", wal[8:12])[0]
    with sqlite3.connect(path) as database:
        btree_of = dict(database.execute("SELECT pageno, name FROM dbstat"))
    pages: collections.Counter[str] = collections.Counter()
    for offset in range(32, len(wal) - 23, 24 + page_size):
        page = struct.unpack(">I", wal[offset : offset + 4])[0]
        pages[btree_of.get(page, "other")] += 1
    return pages


async def worker(name: str, saves: int) -> dict[str, Any]:
    state = importlib.import_module("haystack_service.engine.state")
    limits = state.ResponseLimits(max_count=1_000_000, max_bytes=1 << 34, ttl_seconds=3600)
    conversations = state.ConversationLimits(10_000, 1 << 30, 4096, 1 << 20, 3600)
    with tempfile.TemporaryDirectory() as data_dir:
        store = state.open_state_store(None, Path(data_dir), limits, conversations)
        records = [state.StoredResponse(*shape(name, number)) for number in range(saves + WARMUP)]
        for record in records[:WARMUP]:
            await store.save_response(record.response["id"], record)
        store._on_loop.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL from its start: these saves only
        times: collections.Counter[str] = collections.Counter()
        connection, store._on_loop = store._on_loop, TimedConnection(store._on_loop, times)
        cpu = time.thread_time()
        for record in records[WARMUP:]:
            await store.save_response(record.response["id"], record)
        cpu = time.thread_time() - cpu
        store._on_loop = connection
        pages = wal_pages_by_btree(store.path)
        await store.close()
    return {
        "cpu_us": cpu * 1e6 / saves,
        "statements_us": sum(times.values()) * 1e6 / saves,
        "by_statement_us": {sql: seconds * 1e6 / saves for sql, seconds in times.most_common()},
        "pages": sum(pages.values()) / saves,
        "pages_by_btree": {btree: round(count / saves, 2) for btree, count in pages.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", type=Path)
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args.saves))))
        return 0
    runs: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for _ in range(args.rounds):
        for name in SHAPES:
            for source in args.sources:
                env = {**os.environ, "PYTHONPATH": str(source), "HAYSTACK_TELEMETRY_ENABLED": "False"}
                argv = [sys.executable, __file__, "--worker", name, "--saves", str(args.saves)]
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
                runs[(name, str(source))].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{args.rounds} rounds of {args.saves} saves; medians; load average {os.getloadavg()[0]:.1f} at the end\n")
    for (name, source), results in runs.items():
        median = {key: statistics.median(result[key] for result in results) for key in ("cpu_us", "statements_us")}
        print(f"{name} {source}: {results[0]['pages']:.2f} pages/save {results[0]['pages_by_btree']}")
        statements = {
            sql: round(statistics.median(r["by_statement_us"].get(sql, 0) for r in results), 1)
            for sql in results[0]["by_statement_us"]
        }
        print(f"  CPU {median['cpu_us']:.0f} µs/save, statements {median['statements_us']:.0f} µs: {statements}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

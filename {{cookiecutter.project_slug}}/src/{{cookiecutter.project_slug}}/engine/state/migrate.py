"""Copy the default SQLite store into another store, to move from one host to replicas without losing state.

    python -m <package>.state.migrate redis://redis-host:6379/0          # from DATA_DIR/state.db
    python -m <package>.state.migrate redis://redis-host:6379/0 --from path/to/state.db

Run it from the project folder (for `.env`), with the service stopped or at least not writing. Stored
responses that have not expired are copied oldest first, so the target's bounds (RESPONSES_STORE_SIZE,
RESPONSES_STORE_BYTES) keep the newest; each starts a full RESPONSES_TTL_SECONDS again. File metadata is
copied too; the bytes are files named by their id in DATA_DIR/files: copy them to the new FILES_URL with
any tool (`aws s3 cp --recursive data/files s3://bucket/prefix`), before you start the replicas. Conversations
are copied with their items, the least recently changed first (CONVERSATIONS_STORE_SIZE and _BYTES keep the
newest). Copying twice is harmless: what is copied again replaces its copy.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import time
from pathlib import Path

from ..settings import Settings
from . import (
    SQLITE_FILE,
    ConversationLimits,
    ResponseLimits,
    StoredConversation,
    StoredFile,
    open_state_store,
    store_limits,
)
from .sqlite import SQLiteStore


async def copy_state(
    source: Path, target_url: str, limits: ResponseLimits, conversation_limits: ConversationLimits
) -> tuple[int, int, int]:
    """(responses, files, conversations) copied from the SQLite file `source` into the store at `target_url`.

    The source is read through the SQLite store, which first brings a file of an earlier version up to date.
    """
    reader = SQLiteStore(source, limits, conversation_limits)
    target = open_state_store(target_url, source.parent, limits, conversation_limits)
    try:
        await reader.ping()  # opens the file (upgrading one of an earlier version) before it is read here
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as database:
            query = "SELECT id FROM responses WHERE expires_at > ? ORDER BY seq"
            response_ids = [response_id for (response_id,) in database.execute(query, (time.time(),))]
            files = [
                StoredFile.from_json(record) for (record,) in database.execute("SELECT record FROM files ORDER BY id")
            ]
            conversations = live_conversations(database)
        copied = 0
        for response_id in response_ids:
            stored = await reader.get_response(response_id)
            if stored is not None:  # not expired since
                copied += await target.save_response(response_id, stored)
        for file in files:
            await target.add_file(file)
        for conversation_id, record in conversations:
            items = await reader.list_conversation_items(conversation_id, order="asc", after=None, limit=None)
            await target.create_conversation(StoredConversation.from_json(record), items or [])
    finally:
        await reader.close()
        await target.close()
    return copied, len(files), len(conversations)


def live_conversations(database: sqlite3.Connection) -> list[tuple[str, str]]:
    """(id, record) of each conversation not expired, least recently changed first; none in a file from before."""
    if not database.execute("SELECT 1 FROM sqlite_master WHERE name = 'conversations'").fetchone():
        return []
    query = "SELECT id, record FROM conversations WHERE expires_at > ? ORDER BY expires_at"
    return database.execute(query, (time.time(),)).fetchall()


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="the new STATE_URL, e.g. redis://host:6379/0")
    parser.add_argument("--from", dest="source", type=Path, default=settings.data_dir / SQLITE_FILE)
    args = parser.parse_args(argv)
    if not args.source.exists():
        sys.exit(f"No SQLite state store at {args.source}")
    responses, files, conversations = asyncio.run(copy_state(args.source, args.target, *store_limits(settings)))
    print(
        f"Copied {responses} stored responses, the metadata of {files} files and {conversations} conversations"
        " into the new store."
    )


if __name__ == "__main__":
    main()

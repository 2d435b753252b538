"""Copy the default SQLite store into another store, to move from one host to replicas without losing state.

    python -m <package>.state.migrate redis://redis-host:6379/0          # from DATA_DIR/state.db
    python -m <package>.state.migrate redis://redis-host:6379/0 --from path/to/state.db

Run it from the project folder (for `.env`), with the service stopped or at least not writing. Stored
responses that have not expired are copied oldest first, so the target's bounds (RESPONSES_STORE_SIZE,
RESPONSES_STORE_BYTES) keep the newest; each starts a full RESPONSES_TTL_SECONDS again. File metadata is
copied too; the bytes are files named by their id in DATA_DIR/files: copy them to the new FILES_URL with
any tool (`aws s3 cp --recursive data/files s3://bucket/prefix`), before you start the replicas.
Copying twice is harmless: what is copied again replaces its copy.
"""

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path

from ..settings import Settings
from . import SQLITE_FILE, ResponseLimits, StoredFile, StoredResponse, open_state_store


async def copy_state(source: Path, target_url: str, limits: ResponseLimits) -> tuple[int, int]:
    """(responses, files) copied from the SQLite file `source` into the store at `target_url`."""
    database = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    target = open_state_store(target_url, source.parent, limits)
    try:
        responses = database.execute(
            "SELECT id, record FROM responses WHERE expires_at > ? ORDER BY seq", (time.time(),)
        ).fetchall()
        for response_id, record in responses:
            await target.save_response(response_id, StoredResponse.from_json(record))
        files = database.execute("SELECT record FROM files ORDER BY id").fetchall()
        for (record,) in files:
            await target.add_file(StoredFile.from_json(record))
    finally:
        database.close()
        await target.close()
    return len(responses), len(files)


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="the new STATE_URL, e.g. redis://host:6379/0")
    parser.add_argument("--from", dest="source", type=Path, default=settings.data_dir / SQLITE_FILE)
    args = parser.parse_args(argv)
    if not args.source.exists():
        sys.exit(f"No SQLite state store at {args.source}")
    limits = ResponseLimits(
        settings.responses_store_size, settings.responses_store_bytes, settings.responses_ttl_seconds
    )
    responses, files = asyncio.run(copy_state(args.source, args.target, limits))
    print(f"Copied {responses} stored responses and the metadata of {files} files into the new store.")


if __name__ == "__main__":
    main()

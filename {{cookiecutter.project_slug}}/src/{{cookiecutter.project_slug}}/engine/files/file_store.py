"""Uploaded files: their metadata in the state store (`state/`), their bytes in the blob store (`blobs.py`).

A file becomes visible when its metadata is written, which happens only once all its bytes are published,
and it is deleted metadata first: so a listing never names a file whose bytes are partial or gone, across
any number of replicas. A process killed between the two steps leaves bytes that nothing names; `prune`
removes them once they are an hour old (at every start). Keys in the blob store are file ids, never
the client's file names.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import json
import logging
import re
import time
from types import TracebackType

from ..state import StateStore, StoredFile
from ..state.store import Order
from ..wire.ids import new_id
from .blobs import TEMP_PREFIX, BlobStore, BlobUpload, Chunks, DiskBlobs

logger = logging.getLogger(__name__)

# The upload time in nanoseconds (16 hex digits) then randomness: sorting ids sorts by upload time.
FILE_ID = re.compile(r"file-[0-9a-f]{32}")
# Bytes no metadata names, untouched for this long, belong to an upload or a delete that died with its process.
ORPHAN_SECONDS = 3600


class FileStore:
    """What the Files API and the wrappers' helpers (`uploaded_files.py`) use; every method awaits, none blocks."""

    def __init__(self, state: StateStore, blobs: BlobStore) -> None:
        self.state = state
        self.blobs = blobs
        self.loop: asyncio.AbstractEventLoop | None = (
            None  # where its clients live: set by `create_app` when serving starts
        )

    def new_upload(self) -> "FileUpload":
        return FileUpload(self, self.blobs.new_upload())

    async def get(self, file_id: str) -> StoredFile | None:
        if not FILE_ID.fullmatch(file_id):
            return None
        return await self.state.get_file(file_id)

    async def list(
        self, *, purpose: str | None = None, order: Order = "desc", after: str | None = None, limit: int = 10_000
    ) -> list[StoredFile]:
        return await self.state.list_files(purpose=purpose, order=order, after=after, limit=limit)

    async def open(self, file_id: str) -> tuple[StoredFile, Chunks] | None:
        """The file's metadata and its bytes, chunk by chunk (read the chunks in a worker thread)."""
        stored = await self.get(file_id)
        chunks = await asyncio.to_thread(self.blobs.open, file_id) if stored is not None else None
        if stored is None or chunks is None:  # deleted between the two reads
            return None
        return stored, chunks

    async def delete(self, file_id: str) -> bool:
        if not FILE_ID.fullmatch(file_id) or not await self.state.delete_file(file_id):
            return False  # unlisted first, so nobody finds a file without bytes
        await asyncio.to_thread(self.blobs.delete, file_id)
        return True

    async def prune(self) -> None:
        """Remove bytes that no metadata names, once they are old enough not to belong to an upload in flight."""
        stale = await asyncio.to_thread(lambda: list(self.blobs.keys_older_than(ORPHAN_SECONDS)))
        for key in stale:
            if key.startswith(TEMP_PREFIX) or (FILE_ID.fullmatch(key) and await self.state.get_file(key) is None):
                await asyncio.to_thread(self.blobs.delete, key)
                logger.info("Removed %s from the file store: left over from an interrupted upload or delete", key)

    async def import_metadata_files(self) -> None:
        """Files uploaded before the state store existed have their metadata beside them, `<id>.json`: list them."""
        if not isinstance(self.blobs, DiskBlobs):
            return
        for path in sorted(self.blobs.directory.glob("file-*.json")):
            if FILE_ID.fullmatch(path.stem) and (self.blobs.directory / path.stem).exists():
                try:
                    stored = StoredFile(**json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError) as error:
                    logger.warning("Not imported: %s is not the metadata of a file (%s)", path, error)
                    continue
                await self.state.add_file(stored)
                logger.info("Imported the metadata of %s into the state store", path.stem)
            path.unlink(missing_ok=True)  # imported: the store has it now (adding it twice changes nothing)


class FileUpload:
    """`with store.new_upload() as upload:` then `write` each piece (on the event loop: it writes to a local
    temporary file) and `await upload.commit(...)`; leaving the block uncommitted drops the bytes."""

    def __init__(self, store: FileStore, blob: BlobUpload) -> None:
        self._store = store
        self._blob = blob

    def __enter__(self) -> "FileUpload":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType) -> None:
        self._blob.discard()

    def write(self, data: bytes) -> None:
        self._blob.write(data)

    async def commit(self, *, filename: str, purpose: str) -> StoredFile:
        """Publish the bytes (in a worker thread), then list the file: from then on every replica sees it."""
        now = time.time_ns()
        stored = StoredFile(new_id(f"file-{now:016x}", 16), filename, purpose, self._blob.size, now // 1_000_000_000)
        await asyncio.to_thread(self._blob.publish, stored.id)
        try:
            await self._store.state.add_file(stored)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._store.blobs.delete, stored.id))
            raise
        return stored

"""Where uploaded files live: the `FileStore` interface and `DiskFileStore`, which keeps them on local disk.

`DiskFileStore` keeps two files per upload in one directory: `<id>` (the bytes) and `<id>.json` (the
metadata). New bytes go to a hidden temporary file first and are moved into place with `os.replace`, the
metadata last, so a listing (which reads only metadata) never sees a partial file and a failed upload
leaves nothing behind. Names on disk come from the id, never from the client.

Several replicas need a store they all see: implement the same methods on an object store or a database
(see docs/files.md) and create yours in `create_app()` instead.
"""

import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

logger = logging.getLogger(__name__)

# The upload time in nanoseconds (16 hex digits) then randomness: sorting ids sorts by upload time.
FILE_ID = re.compile(r"file-[0-9a-f]{32}")
TEMP_PREFIX = ".upload-"
# A temporary file untouched for this long belongs to an upload that died with its process.
STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the store knows about one file: OpenAI's FileObject without the constant fields."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
        }


class FileUpload(Protocol):
    """Bytes on their way into the store: invisible until `commit`; leaving the `with` block uncommitted drops them.

    The upload route calls `write` on the event loop (keep it quick: buffer, or write to local disk) and
    `commit` in a worker thread (it may take its time, e.g. to send the bytes to an object store).
    """

    def __enter__(self) -> "FileUpload": ...

    def __exit__(self, *exc_info: object) -> None: ...

    def write(self, data: bytes) -> None: ...

    def commit(self, *, filename: str, purpose: str) -> StoredFile: ...


class FileStore(Protocol):
    """What the Files API and the wrappers need from a store. Calls may block: keep them off the event loop."""

    def new_upload(self) -> FileUpload: ...

    def get(self, file_id: str) -> StoredFile | None: ...

    def list(
        self,
        *,
        purpose: str | None = None,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[StoredFile]:
        """Files by upload time; `after` is an id: only files past it in that order."""
        ...

    def open(self, file_id: str) -> BinaryIO | None: ...

    def delete(self, file_id: str) -> bool: ...


def new_file_id(created_ns: int) -> str:
    return f"file-{created_ns:016x}{secrets.token_hex(8)}"


class DiskFileStore:
    """Files in one local directory; safe for concurrent uploads in one process or several sharing the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()

    def new_upload(self) -> "DiskUpload":
        return DiskUpload(self)

    def get(self, file_id: str) -> StoredFile | None:
        if not FILE_ID.fullmatch(file_id):  # never let a client's text become a path
            return None
        try:
            return StoredFile(**json.loads(self._metadata_path(file_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def list(
        self,
        *,
        purpose: str | None = None,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[StoredFile]:
        ids = sorted(path.stem for path in self.directory.glob("file-*.json") if FILE_ID.fullmatch(path.stem))
        if order == "desc":
            ids.reverse()
        if after is not None:
            # Ids sort by upload time, so the cursor works even when its file was deleted meanwhile.
            ids = [i for i in ids if (i > after if order == "asc" else i < after)]
        files = []
        for file_id in ids:
            if limit is not None and len(files) >= limit:
                break
            stored = self.get(file_id)  # None when deleted since the directory was read
            if stored is not None and (purpose is None or stored.purpose == purpose):
                files.append(stored)
        return files

    def open(self, file_id: str) -> BinaryIO | None:
        if self.get(file_id) is None:
            return None
        try:
            return self._content_path(file_id).open("rb")
        except FileNotFoundError:  # deleted between the two lines above
            return None

    def delete(self, file_id: str) -> bool:
        if not FILE_ID.fullmatch(file_id):
            return False
        try:
            self._metadata_path(file_id).unlink()  # unlisted first, so nobody finds a file without bytes
        except FileNotFoundError:
            return False
        self._content_path(file_id).unlink(missing_ok=True)
        return True

    def _content_path(self, file_id: str) -> Path:
        return self.directory / file_id

    def _metadata_path(self, file_id: str) -> Path:
        return self.directory / f"{file_id}.json"

    def _temp_path(self) -> Path:
        return self.directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"

    def _publish(self, temp: Path, stored: StoredFile) -> None:
        """Move the bytes into place, then write the metadata that makes the file visible."""
        content = self._content_path(stored.id)
        os.replace(temp, content)
        metadata_temp = self._temp_path()
        try:
            metadata_temp.write_text(json.dumps(asdict(stored)), encoding="utf-8")
            os.replace(metadata_temp, self._metadata_path(stored.id))
        except BaseException:
            metadata_temp.unlink(missing_ok=True)
            content.unlink(missing_ok=True)
            raise

    def _remove_leftovers(self) -> None:
        """Drop what a killed process left: stale temporary files, and bytes whose metadata was never written."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for path in self.directory.iterdir():
            leftover = path.name.startswith(TEMP_PREFIX) or (
                FILE_ID.fullmatch(path.name) is not None and not self._metadata_path(path.name).exists()
            )
            try:
                if leftover and path.stat().st_mtime < cutoff:
                    path.unlink()
                    logger.info("Removed %s, left over from an interrupted upload", path)
            except FileNotFoundError:
                pass


class DiskUpload:
    """One upload into a `DiskFileStore`, written to a temporary file in the store's directory.

    `commit` may run in a worker thread while the event loop drops the upload (the client went away):
    the lock keeps them apart, and `discard` never waits for it, since a running commit has all the bytes.
    """

    def __init__(self, store: DiskFileStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._temp = store._temp_path()
        self._file: BinaryIO | None = self._temp.open("xb")
        self._size = 0

    def __enter__(self) -> "DiskUpload":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("the upload is closed")
        self._file.write(data)
        self._size += len(data)

    def commit(self, *, filename: str, purpose: str) -> StoredFile:
        """Make the file visible; it survives a restart of the service (not a power cut: no fsync)."""
        with self._lock:
            if self._file is None:
                raise ValueError("the upload is closed")
            self._file.close()
            self._file = None
            now = time.time_ns()
            stored = StoredFile(new_file_id(now), filename, purpose, self._size, now // 1_000_000_000)
            try:
                self._store._publish(self._temp, stored)
            finally:
                self._temp.unlink(missing_ok=True)
            return stored

    def discard(self) -> None:
        """Drop the bytes unless committed or being committed; safe to call more than once."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._temp.unlink(missing_ok=True)
        finally:
            self._lock.release()

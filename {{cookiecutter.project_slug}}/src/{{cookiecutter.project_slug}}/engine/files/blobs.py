"""Where the bytes of uploaded files live: a directory (`DiskBlobs`, the default) or an S3 bucket (`S3Blobs`).

FILES_URL picks one: unset, DATA_DIR/files; `file:///path` (or a plain path) for another directory, local or
shared (NFS); `s3://bucket/prefix` for any S3-compatible object store (AWS, MinIO, SeaweedFS, R2), configured
by the usual variables: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and
AWS_ALLOW_HTTP=true for an endpoint without TLS. S3 goes through obstore (one small Rust wheel, sync
and async, streaming both ways).

An upload is spooled to a local temporary file as it arrives and published under its key only when whole,
so nobody ever reads part of a file; reads stream in chunks, so no file is ever held whole in memory.
Every method may block on disk or network: call them from a worker thread.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

import obstore
import obstore.exceptions
from obstore.store import S3Store

from ..state import StoreUnavailable
from ..wire.ids import new_id

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024  # one read of a stored file
TEMP_PREFIX = ".upload-"
S3_PART_BYTES = 8 * 1024 * 1024  # a multipart upload's part; S3 wants at least 5 MiB
S3_PARALLEL_PARTS = 4
# An object store that does not answer fails the request within about this long (not in obstore's 3 minutes).
S3_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
# A request may last as long as its client takes to download the file (obstore's default cuts it at 30 s).
S3_REQUEST_TIMEOUT = timedelta(hours=1)

Chunks = Generator[bytes, None, None]  # a stored file's bytes, read as they are iterated; close() when done early


class BlobStore(Protocol):
    def new_upload(self) -> "BlobUpload": ...

    def open(self, key: str) -> Chunks | None:
        """The bytes stored under `key`, chunk by chunk; None when there is nothing there."""
        ...

    def delete(self, key: str) -> None: ...

    def keys_older_than(self, seconds: float) -> Iterator[str]:
        """Every key stored longer ago than `seconds`, to find bytes that no metadata names (see file_store)."""
        ...


class BlobUpload:
    """Bytes on their way into a blob store, in a temporary file until `publish` puts them under their key.

    `publish` runs in a worker thread while the event loop may drop the upload (the client went away): the
    lock keeps them apart, and `discard` never waits for it, since a running publish has all the bytes.
    """

    def __init__(self, spool: BinaryIO, publish: Callable[[BinaryIO, str], None], remove: Callable[[], None]) -> None:
        self._spool: BinaryIO | None = spool
        self._publish = publish
        self._remove = remove  # the temporary file, if closing it does not remove it already
        self._lock = threading.Lock()
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._spool is None:
            raise ValueError("the upload is closed")
        self._spool.write(data)
        self.size += len(data)

    def publish(self, key: str) -> None:
        with self._lock:
            if self._spool is None:
                raise ValueError("the upload is closed")
            spool, self._spool = self._spool, None
            try:
                self._publish(spool, key)
            finally:
                spool.close()
                self._remove()

    def discard(self) -> None:
        """Drop the bytes unless published or being published; safe to call more than once."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
                self._remove()
        finally:
            self._lock.release()


class DiskBlobs:
    """Files in one directory, local or shared by several processes: published by an atomic rename."""

    engine = "disk"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def new_upload(self) -> BlobUpload:
        temp = self.directory / new_id(TEMP_PREFIX, 16)

        def publish(spool: BinaryIO, key: str) -> None:
            spool.close()
            os.replace(temp, self.directory / key)  # atomic: the key names all the bytes or nothing

        return BlobUpload(temp.open("xb"), publish, lambda: temp.unlink(missing_ok=True))

    def open(self, key: str) -> Chunks | None:
        try:
            handle = (self.directory / key).open("rb")
        except FileNotFoundError:
            return None
        return read_chunks(handle)

    def delete(self, key: str) -> None:
        (self.directory / key).unlink(missing_ok=True)

    def keys_older_than(self, seconds: float) -> Iterator[str]:
        """Also counts temporary files: one this old belongs to an upload that died with its process."""
        cutoff = time.time() - seconds
        for path in self.directory.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    yield path.name
            except FileNotFoundError:
                pass


def read_chunks(handle: BinaryIO) -> Chunks:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class S3Blobs:
    """Files in an S3-compatible bucket, under the URL's prefix; uploads of any size go up in parts."""

    engine = "s3"

    def __init__(self, url: str) -> None:
        # Endpoint, credentials and region come from the AWS_* variables; client options given here replace
        # those read from the environment, so AWS_ALLOW_HTTP is passed on by hand.
        allow_http = os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes")
        options = {"timeout": S3_REQUEST_TIMEOUT, "connect_timeout": timedelta(seconds=5), "allow_http": allow_http}
        self._store = S3Store.from_url(url, retry_config=S3_RETRY, client_options=options)

    def new_upload(self) -> BlobUpload:
        def publish(spool: BinaryIO, key: str) -> None:
            spool.seek(0)
            with reachable():
                obstore.put(self._store, key, spool, chunk_size=S3_PART_BYTES, max_concurrency=S3_PARALLEL_PARTS)

        # An anonymous temporary file: nothing is left on disk even when the process is killed.
        return BlobUpload(tempfile.TemporaryFile(prefix=TEMP_PREFIX), publish, lambda: None)

    def open(self, key: str) -> Chunks | None:
        try:
            with reachable():
                result = obstore.get(self._store, key)
        except FileNotFoundError:
            return None
        return (bytes(chunk) for chunk in result.stream(min_chunk_size=CHUNK_BYTES))

    def delete(self, key: str) -> None:
        with reachable():
            obstore.delete(self._store, key)  # deleting a missing key is no error in S3

    def keys_older_than(self, seconds: float) -> Iterator[str]:
        cutoff = datetime.now().astimezone().timestamp() - seconds
        with reachable():
            for batch in obstore.list(self._store):
                for meta in batch:
                    if meta["last_modified"].timestamp() < cutoff:
                        yield meta["path"]


@contextmanager
def reachable() -> Iterator[None]:
    """An object store that fails (down, refusing our credentials, no such bucket) is a 503; the details go to the log."""
    try:
        yield
    except obstore.exceptions.BaseError as error:
        logger.error("S3 file store failed: %s", str(error).splitlines()[0])
        raise StoreUnavailable("S3 file store", "the object store failed; see the service's log") from None


def open_blob_store(url: str | None, data_dir: Path) -> BlobStore:
    """The blob store FILES_URL names: unset, the directory DATA_DIR/files."""
    if not url:
        return DiskBlobs(data_dir / "files")
    if url.startswith("s3://"):
        return S3Blobs(url)
    return DiskBlobs(Path(url.removeprefix("file://")))

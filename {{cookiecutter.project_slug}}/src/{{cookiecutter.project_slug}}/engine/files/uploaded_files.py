"""Uploaded files, for wrappers: read one by id, and gather the files a request refers to.

    from ..engine import resolve_input_files

    def run_response(self, model, input_items, body):
        for file in resolve_input_files(input_items):   # file.filename, file.data (bytes), file.mime_type
            ...

Files reach a request three ways: `file_id` of an uploaded file (Responses `input_file` parts, chat
`file` parts), `file_data` (a data URL, or bare base64) with a `filename`, or `file_url`, which is
not fetched here (a server that downloads whatever URL a client names is an open proxy).
These functions wait for the file store (disk, S3, the state store): call them from a sync wrapper, or, in an
`async` wrapper, through `asyncio.to_thread`. What they cannot read raises `FileReferenceError`, which
reaches the client as a 404 (unknown id) or a 400.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import base64
import binascii
import mimetypes
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from haystack.dataclasses import FileContent

from ..http.errors import OpenAIError
from ..services import services
from .file_store import StoredFile

Result = TypeVar("Result")


class FileReferenceError(OpenAIError):
    """A request names a file that cannot be read; raised from a wrapper, the client gets this status."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(status, message, code="file_not_found" if status == 404 else "invalid_file")


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file a request refers to, with its bytes."""

    filename: str
    data: bytes
    mime_type: str | None = None
    file_id: str | None = None  # None for files sent inline as file_data


def wait_for(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a store call on the service's event loop and wait for it here, in a worker thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    loop = services().files.loop
    if loop is None or running is loop:
        coroutine.close()
        raise RuntimeError("Call the uploaded_files helpers from a sync wrapper, or through asyncio.to_thread")
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


def get_file(file_id: str) -> StoredFile | None:
    """An uploaded file's metadata (filename, purpose, bytes, created_at), or None when there is no such file."""
    return wait_for(services().files.get(file_id))


def read_file(file_id: str) -> InputFile:
    """An uploaded file with its bytes; FileReferenceError when there is no such file."""
    opened = wait_for(services().files.open(file_id))
    if opened is None:
        raise FileReferenceError(f"No such File object: {file_id}", status=404)
    stored, chunks = opened
    data = b"".join(chunks)
    return InputFile(stored.filename, data, mimetypes.guess_type(stored.filename)[0], file_id)


def get_input_files(input_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every `input_file` part of every message, in order: each has `file_id`, or `file_data` and `filename`."""
    files = []
    for item in input_items:
        content = item.get("content")
        if isinstance(content, list):
            files.extend(part for part in content if isinstance(part, dict) and part.get("type") == "input_file")
    return files


def resolve_input_files(input_items: list[dict[str, Any]]) -> list[InputFile]:
    """The files of every `input_file` part of a Responses request's input, in order."""
    return [_resolve(part) for part in get_input_files(input_items)]


def resolve_chat_files(messages: list[dict[str, Any]]) -> list[InputFile]:
    """The files of every `{"type": "file", "file": {...}}` part of a chat request's messages, in order."""
    files = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get("type") == "file" and isinstance(part.get("file"), dict):
                files.append(_resolve(part["file"]))
    return files


def file_content(reference: dict[str, Any]) -> FileContent:
    """A file part as Haystack's `FileContent`, which a chat generator sends to the LLM (`parsing/messages.py` uses it)."""
    file = _resolve(reference)
    data = base64.b64encode(file.data).decode("ascii")
    return FileContent(data, mime_type=file.mime_type, filename=file.filename, validation=False)


def _resolve(reference: dict[str, Any]) -> InputFile:
    """`reference` holds `file_id`, or `file_data` and `filename` (Responses input_file and chat file alike)."""
    if isinstance(reference.get("file_id"), str):
        return read_file(reference["file_id"])
    filename = reference.get("filename") if isinstance(reference.get("filename"), str) else "file"
    if isinstance(reference.get("file_data"), str):
        mime_type, data = decode_file_data(reference["file_data"])
        return InputFile(filename, data, mime_type or mimetypes.guess_type(filename)[0])
    if reference.get("file_url"):
        raise FileReferenceError("Files given by URL are not fetched; upload the file and send its file_id")
    raise FileReferenceError("A file part needs a file_id or file_data")


def decode_file_data(file_data: str) -> tuple[str | None, bytes]:
    """(mime type or None, bytes) of a data URL (`data:application/pdf;base64,...`) or of bare base64."""
    try:
        if not file_data.startswith("data:"):
            return None, base64.b64decode(file_data, validate=True)
        header, _, payload = file_data[len("data:") :].partition(",")
        media_type, *parameters = header.split(";")
        if "base64" in parameters:
            return media_type or None, base64.b64decode(payload, validate=True)
        return media_type or None, unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise FileReferenceError("file_data is neither a data URL nor base64") from None

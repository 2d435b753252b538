"""`/v1/files` (and `/files`): upload, list, retrieve, download and delete files kept by the file store.

Uploads stream to the store as they arrive (see `parsing/multipart.py`), so their limit is MAX_FILE_BYTES, not
MAX_BODY_BYTES. The store's calls are awaited (what blocks runs in worker threads), except an upload's
writes, which go to a local temporary file (see `receive_upload`).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging
import unicodedata
from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response, current_app, g, jsonify, request

from ..files.file_store import StoredFile
from ..http.errors import OpenAIError
from ..observability.request_tracking import TrackedRequest
from ..parsing.multipart import MAX_BUFFER_BYTES, MAX_FIELD_BYTES, MAX_PARTS, FileStart, FormField, read_form
from ..parsing.paging import int_arg, list_page, order_arg
from ..parsing.who_is_asking import remember_request
from ..services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("files", __name__)

UPLOAD_PATHS = ("/v1/files", "/files")  # the routes of `upload_file` below
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_LIST_LIMIT = 10_000
# Besides the file, a form holds at most this much: a larger body is refused before it is read.
FORM_OVERHEAD_BYTES = MAX_BUFFER_BYTES + MAX_PARTS * MAX_FIELD_BYTES
# After refusing an upload, read (and drop) up to this much more, so the client gets our answer, not a reset.
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 10.0


class UploadRequest(TrackedRequest):
    """Quart refuses bodies over MAX_CONTENT_LENGTH before any route runs; uploads get MAX_FILE_BYTES instead.

    The app uses this class for every request (`app.request_class`); only uploads lose Quart's limit,
    and `upload_file` enforces its own while streaming. Every request is also made known to its `RequestInfo`
    (the base class).
    """

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        if method == "POST" and path.rstrip("/") in UPLOAD_PATHS:
            kwargs["max_content_length"] = None
        super().__init__(method, scheme, path, *args, **kwargs)


def not_found(file_id: str) -> OpenAIError:
    return OpenAIError(404, f"No such File object: {file_id}", param="id")


def too_large(limit: int) -> OpenAIError:
    return OpenAIError(413, f"The file is larger than the limit of {limit} bytes.", param="file", code="file_too_large")


@blueprint.post("/files")
async def upload_file() -> Response:
    settings = services().settings
    registry = services().registry
    try:
        registry.require_loaded()  # every wrapper's run_file_upload hears of the file: none may still be loading
        stored = await receive_upload(settings.max_file_bytes)
    except OpenAIError as error:
        if error.status != 408:
            await discard_unread_body()
        raise
    await tell_wrappers(stored)
    return jsonify(stored.to_openai())


async def receive_upload(max_file_bytes: int) -> StoredFile:
    """Stream the `file` part into the store; nothing is kept unless the whole form is valid."""
    boundary = request.mimetype_params.get("boundary")
    if request.mimetype != "multipart/form-data" or not boundary:
        message = "Send the upload as multipart/form-data with a 'file' part and a 'purpose' field."
        raise OpenAIError(400, message, param="file")
    if request.content_length is not None and request.content_length > max_file_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_file_bytes)

    purpose: str | None = None
    file_part: FileStart | None = None
    receiving_file = False  # the bytes that follow belong to the `file` part (other parts are ignored)
    size = 0
    with services().files.new_upload() as upload:
        async for event in read_form(request.body, boundary, idle_timeout=current_app.config["BODY_TIMEOUT"]):
            if isinstance(event, FormField):
                if event.name == "purpose":
                    purpose = check_purpose(event.value)
            elif isinstance(event, FileStart):
                receiving_file = event.name == "file"
                if receiving_file:
                    if file_part is not None:
                        raise OpenAIError(400, "Send one 'file' part per upload.", param="file")
                    file_part = event
            elif receiving_file:
                size += len(event)
                if size > max_file_bytes:
                    raise too_large(max_file_bytes)
                # On the event loop on purpose: Quart buffers a request body without limit, so writing in a
                # thread would let a fast client outrun a slow disk into memory. Blocked here, nothing more is read.
                upload.write(event)
        if file_part is None:
            raise OpenAIError(400, "The upload has no 'file' part.", param="file")
        purpose = check_purpose(purpose)
        return await upload.commit(filename=display_name(file_part.filename), purpose=purpose)


def check_purpose(value: str | None) -> str:
    if not value:
        raise OpenAIError(400, "'purpose' is required.", param="purpose")
    if value not in PURPOSES:
        raise OpenAIError(400, f"'purpose' must be one of {', '.join(PURPOSES)}.", param="purpose")
    return value


def display_name(raw: str) -> str:
    """The client's file name without folders or control characters: kept as metadata, never used as a path."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:255] if name not in ("", ".", "..") else "upload"


async def discard_unread_body() -> None:
    """Read and drop what the client is still sending (bounded), so it reads our error instead of a reset."""
    received = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in request.body:
                received += len(chunk)
                if received > DRAIN_BYTES:
                    return
    except TimeoutError:
        pass


async def tell_wrappers(stored: StoredFile) -> None:
    """Call every wrapper's `run_file_upload` at once, before answering: a client that asks about the file next
    finds it indexed. Sync ones run in the wrappers' thread pool; a failure is only logged."""
    registry = services().registry
    runner = services().runner
    listeners = [w for w in registry.wrappers.values() if w.implements("run_file_upload")]
    remember_request("files", request.headers, {}, g.get("api_key_name"))
    outcomes = await asyncio.gather(
        *(runner.call(w.instance.run_file_upload, stored) for w in listeners), return_exceptions=True
    )
    for wrapper, outcome in zip(listeners, outcomes, strict=True):
        if isinstance(outcome, Exception):
            logger.error("Wrapper %r failed on the upload of %s", wrapper.model_id, stored.id, exc_info=outcome)


@blueprint.get("/files")
async def list_files() -> Response:
    """Newest first by default; `after` is the last id of the previous page, as the SDK's auto-pager sends it."""
    limit = int_arg("limit", default=MAX_LIST_LIMIT, low=1, high=MAX_LIST_LIMIT)
    query = {
        "purpose": request.args.get("purpose") or None,
        "order": order_arg(),
        "after": request.args.get("after") or None,
    }
    files = await services().files.list(**query, limit=limit + 1)
    return list_page([stored.to_openai() for stored in files[:limit]], has_more=len(files) > limit)


@blueprint.get("/files/<file_id>")
async def retrieve_file(file_id: str) -> Response:
    stored = await services().files.get(file_id)
    if stored is None:
        raise not_found(file_id)
    return jsonify(stored.to_openai())


@blueprint.get("/files/<file_id>/content")
async def file_content(file_id: str) -> Response:
    """The bytes as uploaded, streamed from the store."""
    opened = await services().files.open(file_id)
    if opened is None:
        raise not_found(file_id)
    stored, chunks = opened

    async def body() -> Any:
        try:
            while data := await asyncio.to_thread(next, chunks, b""):
                yield data
        finally:
            chunks.close()

    response = Response(body(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(stored.bytes)
    response.headers.set("Content-Disposition", "attachment", **filename_options(stored.filename))
    response.timeout = None  # Quart's response timeout would cut a large download short
    return response


def filename_options(filename: str) -> dict[str, str]:
    """`filename`, plus RFC 5987's `filename*` when the name is not ASCII."""
    if filename.isascii():
        return {"filename": filename}
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii") or "download"
    return {"filename": ascii_name, "filename*": f"UTF-8''{quote(filename, safe='')}"}


@blueprint.delete("/files/<file_id>")
async def delete_file(file_id: str) -> Response:
    if not await services().files.delete(file_id):
        raise not_found(file_id)
    return jsonify({"id": file_id, "object": "file", "deleted": True})

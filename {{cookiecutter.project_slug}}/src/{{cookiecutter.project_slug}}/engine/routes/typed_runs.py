"""`POST /<model>/run`: a wrapper's typed entry (`run_api` / `run_api_async`) as a JSON endpoint, and
`GET /openapi.json`, the OpenAPI 3.1 document that describes those endpoints, so OpenAPI tool clients (Open WebUI's
tool servers, agent frameworks) can register the service; `?include=openai` describes the OpenAI routes too.

The request is the method's parameters as one JSON object; the answer is `{"result": ...}`, the return value as
JSON. A method that yields streams server-sent events: one `data:` line per item (`{"result": ...}`), then
`data: [DONE]`; a failure midway is an `event: error` carrying OpenAI's error envelope.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import inspect
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from functools import partial
from typing import Any

from quart import Blueprint, Response, current_app, request

from ..files.file_store import FileUpload
from ..http.errors import OpenAIError
from ..observability.request_tracking import note_model, see_the_server_log
from ..parsing.multipart import FileStart, FormField, read_form
from ..parsing.request_body import read_json_object
from ..runs.registry import LoadedWrapper
from ..runs.typed_entry import COMPONENT_REFS, TypedEntry, typed_entry
from ..services import services
from ..wire import json_response
from ..wire.json_text import compact_json
from ..wire.sse import sse_response
from .files import display_name, tell_wrappers
from .openai_operations import OPENAI_TAG, openai_paths

logger = logging.getLogger(__name__)

blueprint = Blueprint("typed_runs", __name__)

_DONE = object()  # what `next` returns at a sync generator's end


def typed_wrapper(model: str) -> tuple[LoadedWrapper, TypedEntry]:
    """The wrapper and its typed entry; a 404 for a model without one (503 while the wrappers still load)."""
    wrapper = services().registry.require(model)  # 503 while loading or when it failed to load, 404 unknown
    entry = typed_entry(model, wrapper.instance)
    if entry is None:
        message = f"The model '{model}' has no typed entry to run (a wrapper method `run_api`)."
        raise OpenAIError(404, message, param="model", code="model_not_found")
    return wrapper, entry


@blueprint.post("/<model>/run")
async def run_typed(model: str) -> Response:
    wrapper, entry = typed_wrapper(model)
    note_model(model)
    if request.mimetype == "multipart/form-data" and entry.file_parameters:
        body: object = await form_body(entry)
    else:
        body = await read_json_object(optional=True)
    arguments = await entry.with_files(entry.arguments(body), services().files)
    method = getattr(wrapper.instance, entry.method_name)
    try:
        if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
            result = method(**arguments)
            if inspect.isawaitable(result):
                result = await result
        else:
            result = await services().runner.call(partial(method, **arguments))
    except OpenAIError:
        raise
    except Exception as error:
        raise run_failed(entry, error) from None
    if inspect.isasyncgen(result) or isinstance(result, Iterator):
        return sse_response(streamed(entry, result))
    return json_response({"result": answer(entry, result)})


async def form_body(entry: TypedEntry) -> dict[str, Any]:
    """A multipart request's fields as the JSON body would hold them, each file part stored first (as an upload,
    purpose `user_data`, told to the wrappers' `run_file_upload`) and given by its new id.

    A field whose parameter is not a string is read as JSON when it parses (`top_k=3`), else left as text.
    """
    boundary = request.mimetype_params.get("boundary") or ""
    fields = entry.request_model.model_fields
    limit = services().settings.max_file_bytes
    body: dict[str, Any] = {}
    current: tuple[FileStart, FileUpload] | None = None  # the file part being received
    size = 0
    with ExitStack() as uploads:  # an upload not committed when the form ends (or fails) is dropped
        async for event in read_form(request.body, boundary, idle_timeout=current_app.config["BODY_TIMEOUT"]):
            if isinstance(event, bytes | bytearray):
                if current is not None:
                    size += len(event)
                    if size > limit:
                        raise OpenAIError(413, f"A file is larger than {limit} bytes.", param=current[0].name)
                    current[1].write(event)
                continue
            if current is not None:
                body[current[0].name] = await stored_part(*current)
                current = None
            if isinstance(event, FormField):
                annotation = fields[event.name].annotation if event.name in fields else str
                body[event.name] = event.value if annotation is str else json_or_text(event.value)
            elif event.name in entry.file_parameters:
                current, size = (event, uploads.enter_context(services().files.new_upload())), 0
            else:
                raise OpenAIError(400, f"'{event.name}' is not a file parameter.", param=event.name)
        if current is not None:
            body[current[0].name] = await stored_part(*current)
    return body


async def stored_part(part: FileStart, upload: FileUpload) -> str:
    stored = await upload.commit(filename=display_name(part.filename), purpose="user_data")
    await tell_wrappers(stored)
    return stored.id


def json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def answer(entry: TypedEntry, value: Any) -> Any:
    """The value as JSON data by its declared type; a value that does not match it is the wrapper's bug (500)."""
    try:
        return entry.dump(value)
    except Exception as error:
        raise run_failed(entry, error) from None


def run_failed(entry: TypedEntry, error: Exception) -> OpenAIError:
    logger.error("The run of model '%s' (%s) failed", entry.model_id, entry.method_name, exc_info=error)
    message = f"The model '{entry.model_id}' failed ({type(error).__name__}); {see_the_server_log()}."
    return OpenAIError(500, message, code="run_failed")


async def streamed(entry: TypedEntry, items: Any) -> AsyncIterator[str]:
    """Each item as an SSE event; a sync generator is advanced in the thread pool, never on the event loop."""
    runner = services().runner
    try:
        while True:
            if inspect.isasyncgen(items):
                item = await anext(items, _DONE)
            else:
                item = await runner.call(next, items, _DONE)
            if item is _DONE:
                break
            yield f"data: {compact_json({'result': answer(entry, item)})}\n\n"
        yield "data: [DONE]\n\n"
    except OpenAIError as error:
        yield f"event: error\ndata: {compact_json(error.envelope())}\n\n"
    except Exception as error:
        yield f"event: error\ndata: {compact_json(run_failed(entry, error).envelope())}\n\n"
    finally:
        closing = getattr(items, "aclose", None) or getattr(items, "close", None)
        if closing is not None:
            closed = closing()
            if inspect.isawaitable(closed):
                await closed


@blueprint.get("/openapi.json")
async def openapi_document() -> Response:
    """The typed routes only, for tool clients; `?include=openai` adds the OpenAI routes (openai_operations.py)."""
    include = request.args.get("include", "")
    if include not in ("", "openai"):
        raise OpenAIError(400, f"Unknown include '{include}': the only one is 'openai'.", param="include")
    registry = services().registry
    registry.require_loaded()  # a tool server registered from a partial document would miss tools
    entries = [
        entry
        for wrapper in registry.wrappers.values()
        if (entry := typed_entry(wrapper.model_id, wrapper.instance)) is not None
    ]
    document = openapi(entries, authenticated=bool(services().api_keys))
    if include == "openai":
        document["paths"].update(openai_paths(current_app.url_map))
        document["tags"] = [
            {"name": OPENAI_TAG, "description": "The OpenAI routes, left out of the tool server's document"}
        ]
    return json_response(document)


def request_content(entry: TypedEntry, schema: dict[str, Any]) -> dict[str, Any]:
    """JSON, and for an entry with file parameters a form too, where those are the files themselves."""
    content = {"application/json": {"schema": schema}}
    if entry.file_parameters:
        properties = dict(schema.get("properties", {}))
        for name in entry.file_parameters:
            properties[name] = {"type": "string", "contentMediaType": "application/octet-stream"}
        content["multipart/form-data"] = {"schema": {**schema, "properties": properties}}
    return content


def openapi(entries: list[TypedEntry], *, authenticated: bool) -> dict[str, Any]:
    """OpenAPI 3.1: one operation per typed entry, its schemas under components (pydantic's $defs moved there)."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}

    def component(schema: dict[str, Any]) -> dict[str, Any]:
        schemas.update(schema.pop("$defs", {}))
        return schema

    for entry in entries:
        request_schema = component(entry.request_schema(COMPONENT_REFS))
        result_schema = component(entry.result_schema(COMPONENT_REFS))
        answer_schema = {"type": "object", "properties": {"result": result_schema}, "required": ["result"]}
        summary = entry.description.partition("\n")[0].strip()
        content = {"text/event-stream": {"schema": {"type": "string"}}} if entry.streams else {}
        content = content or {"application/json": {"schema": answer_schema}}
        paths[f"/{entry.model_id}/run"] = {
            "post": {
                "operationId": entry.model_id,
                "summary": summary,
                "description": entry.description,
                "requestBody": {"required": True, "content": request_content(entry, request_schema)},
                "responses": {
                    "200": {"description": "The answer, or its items as they come", "content": content},
                    "400": {"description": "A field is missing or invalid: OpenAI's error envelope, `param` names it"},
                    "500": {"description": "The pipeline failed: OpenAI's error envelope"},
                },
            }
        }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": services().settings.wrappers_package.split(".")[0], "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if authenticated:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document

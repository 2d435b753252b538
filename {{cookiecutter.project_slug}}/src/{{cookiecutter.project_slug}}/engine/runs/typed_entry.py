"""A wrapper's typed entry (`run_api` / `run_api_async`): its signature is the request, its return type the
answer, its docstring the description, so one method serves `POST /{model}/run` and the OpenAPI document.

The request model is built once per wrapper from the type hints (pydantic, `extra="forbid"`, so a misspelt
field is an error rather than silently ignored); a method that returns a generator streams its items. A parameter
typed `StoredFile` is an uploaded file: in JSON its file id (`POST /v1/files`), in a multipart request the file
itself, stored through the file store before the method runs (`routes/typed_runs.py`).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import collections.abc
import inspect
import typing
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ..files.file_store import FileStore, StoredFile
from ..http.errors import OpenAIError
from .base_wrapper import BasePipelineWrapper

TYPED_METHODS = ("run_api_async", "run_api")  # async first: it avoids the thread pool
LOCAL_REFS = "#/$defs/{model}"
FILE_DESCRIPTION = "An uploaded file: its id from POST /v1/files, or (multipart/form-data) the file itself"
COMPONENT_REFS = "#/components/schemas/{model}"
STREAMING_RETURNS = {
    collections.abc.Generator,
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.AsyncGenerator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
}


@dataclass(frozen=True)
class TypedEntry:
    """One wrapper's typed method, ready to validate a request and to describe itself."""

    model_id: str
    method_name: str
    request_model: type[BaseModel]
    result: TypeAdapter[Any]  # the answer, or, when it streams, each item it yields
    streams: bool
    description: str
    file_parameters: frozenset[str] = frozenset()  # typed StoredFile: a file id in JSON, a file part in a form

    def arguments(self, body: object) -> dict[str, Any]:
        """The method's keyword arguments from a JSON body; a 400 naming the first bad field otherwise."""
        try:
            parsed = self.request_model.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            where = f" ('{field}')" if field else ""
            message = f"Invalid request for model '{self.model_id}'{where}: {first['msg']}."
            raise OpenAIError(400, message, param=field, code="invalid_request") from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    async def with_files(self, arguments: dict[str, Any], file_store: FileStore) -> dict[str, Any]:
        """The arguments with each file parameter's id replaced by its StoredFile; a 400 for an unknown id."""
        for name in self.file_parameters & arguments.keys():
            file_id = arguments[name]
            if file_id is None:
                continue
            stored = await file_store.get(file_id)
            if stored is None:
                raise OpenAIError(400, f"No uploaded file has the id '{file_id}'.", param=name, code="invalid_file")
            arguments[name] = stored
        return arguments

    def dump(self, value: Any) -> Any:
        """The answer (or one streamed item) as JSON-ready data, by the return type's rules."""
        return self.result.dump_python(value, mode="json")

    def request_schema(self, ref_template: str = LOCAL_REFS) -> dict[str, Any]:
        """JSON Schema of the request: self-contained (`$defs`) by default, as MCP tools want it; OpenAPI moves the
        definitions under its components (`COMPONENT_REFS`)."""
        return self.request_model.model_json_schema(ref_template=ref_template)

    def result_schema(self, ref_template: str = LOCAL_REFS) -> dict[str, Any]:
        return self.result.json_schema(ref_template=ref_template)


_entries: WeakKeyDictionary[BasePipelineWrapper, TypedEntry | None] = WeakKeyDictionary()


def typed_entry(model_id: str, wrapper: BasePipelineWrapper) -> TypedEntry | None:
    """The wrapper's typed entry (built once), or None when it has no `run_api[_async]`.

    A signature that cannot be served (`*args`, `**kwargs`, a type pydantic cannot validate) raises TypeError, so
    the wrapper fails to load with the reason instead of failing each request.
    """
    if wrapper not in _entries:
        _entries[wrapper] = _build(model_id, wrapper)
    return _entries[wrapper]


def _build(model_id: str, wrapper: BasePipelineWrapper) -> TypedEntry | None:
    method_name = next((name for name in TYPED_METHODS if callable(getattr(wrapper, name, None))), None)
    if method_name is None:
        return None
    method = getattr(wrapper, method_name)
    hints = typing.get_type_hints(method)
    fields: dict[str, Any] = {}
    files = set()
    for name, parameter in inspect.signature(method).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{model_id}.{method_name} takes *args or **kwargs: name each parameter, with its type")
        default = ... if parameter.default is parameter.empty else parameter.default
        if hints.get(name) is StoredFile:
            files.add(name)
            fields[name] = (str, Field(default, description=FILE_DESCRIPTION))
        else:
            fields[name] = (hints.get(name, Any), default)
    title = "".join(part.capitalize() for part in model_id.replace("-", "_").split("_"))
    try:
        request_model = create_model(f"{title}Request", __config__=ConfigDict(extra="forbid"), **fields)
        returned = hints.get("return", Any)
        streams = typing.get_origin(returned) in STREAMING_RETURNS
        item_type = typing.get_args(returned)[0] if streams and typing.get_args(returned) else returned
        result: TypeAdapter[Any] = TypeAdapter(Any if streams and item_type is returned else item_type)
    except Exception as error:  # pydantic's errors for types it cannot validate
        raise TypeError(f"{model_id}.{method_name}: its types cannot be served as JSON ({error})") from error
    description = inspect.getdoc(method) or f"Runs the '{model_id}' pipeline."
    return TypedEntry(model_id, method_name, request_model, result, streams, description, frozenset(files))

"""Validate Responses API JSON against the Open Responses specification (the `openresponses-types` package).

Open Responses is the open version of OpenAI's Responses API, with a compliance suite that clients and
agent frameworks run against servers. Its schemas are stricter than OpenAI's published spec in places
(every response carries `completed_at`, the penalties, `service_tier`...), so both are checked.
The package's models are generated from the spec; they are validated in strict mode from the JSON text,
so a number sent as a string or a missing key fails as it would in a typed client.
"""

from __future__ import annotations

import enum
import json
from functools import cache
from typing import Any

import openresponses_types
from pydantic import BaseModel

SPEC_VERSION = openresponses_types.__spec_version__


@cache
def event_models() -> dict[str, type[BaseModel]]:
    """Each streamed event type (`response.created`, ...) and the model of its event."""
    models: dict[str, type[BaseModel]] = {}
    for name in dir(openresponses_types):
        model = getattr(openresponses_types, name)
        if not (name.endswith("StreamingEvent") and isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        annotation = model.model_fields["type"].annotation
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum) and len(annotation) == 1:
            models[next(iter(annotation)).value] = model
    return models


def validate_response(response: dict[str, Any]) -> None:
    """Raise pydantic.ValidationError when `response` is not an Open Responses `ResponseResource`."""
    openresponses_types.ResponseResource.model_validate_json(json.dumps(_json_schema_checked(response)), strict=True)


def validate_event(event: dict[str, Any]) -> None:
    """Raise when a streamed event is not the Open Responses event its `type` names (or names none)."""
    model = event_models().get(event.get("type", ""))
    assert model is not None, f"Open Responses {SPEC_VERSION} has no event {event.get('type')!r}"
    if isinstance(event.get("response"), dict):
        event = {**event, "response": _json_schema_checked(event["response"])}
    model.model_validate_json(json.dumps(event), strict=True)


def _json_schema_checked(response: dict[str, Any]) -> dict[str, Any]:
    """The response with a json_schema text format's `schema` checked here and then set to null.

    The package's generated model types that `schema` as `None` (its generator read the spec's untyped
    schema so), which no response holding a real JSON Schema could pass; the spec means an object.
    """
    text_format = (response.get("text") or {}).get("format") or {}
    if text_format.get("type") != "json_schema":
        return response
    assert isinstance(text_format.get("schema"), dict), f"a json_schema format's schema is an object: {text_format}"
    return {**response, "text": {**response["text"], "format": {**text_format, "schema": None}}}

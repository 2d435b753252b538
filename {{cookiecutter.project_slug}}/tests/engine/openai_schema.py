"""Validate JSON against a component schema of OpenAI's published OpenAPI description.

The spec is not shipped with the project: set OPENAI_OPENAPI_SPEC to the path of an
`openapi.yaml` from github.com/openai/openai-openapi. Without it, schema tests skip.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

SPEC_ENV = "OPENAI_OPENAPI_SPEC"
SPEC_URI = "urn:openai-openapi"

# The component schema of each streamed Responses event, by its `type`.
RESPONSE_EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.mcp_list_tools.in_progress": "ResponseMCPListToolsInProgressEvent",
    "response.mcp_list_tools.completed": "ResponseMCPListToolsCompletedEvent",
    "response.mcp_list_tools.failed": "ResponseMCPListToolsFailedEvent",
    "response.mcp_call_arguments.delta": "ResponseMCPCallArgumentsDeltaEvent",
    "response.mcp_call_arguments.done": "ResponseMCPCallArgumentsDoneEvent",
    "response.mcp_call.in_progress": "ResponseMCPCallInProgressEvent",
    "response.mcp_call.completed": "ResponseMCPCallCompletedEvent",
    "response.mcp_call.failed": "ResponseMCPCallFailedEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.failed": "ResponseFailedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
}


def spec_path() -> Path | None:
    """The spec file named by OPENAI_OPENAPI_SPEC, or None when unset."""
    value = os.environ.get(SPEC_ENV)
    return Path(value) if value else None


def require_spec() -> Path:
    """Skip the calling test, with the reason, when the spec is not available."""
    path = spec_path()
    if path is None:
        pytest.skip(f"{SPEC_ENV} is not set (path to OpenAI's openapi.yaml); schema checks skipped")
    if not path.is_file():
        pytest.fail(f"{SPEC_ENV}={path} does not name a file")
    return path


def _fix_nullable(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable: true`, which JSON Schema 2020-12 ignores, into `anyOf [node, null]`."""
    if isinstance(node, list):
        return [_fix_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _fix_nullable(value) for key, value in node.items()}
    if fixed.pop("nullable", False) is True:
        if "enum" in fixed and None not in fixed["enum"]:
            fixed["enum"] = [*fixed["enum"], None]
        return {"anyOf": [fixed, {"type": "null"}]}
    return fixed


def _allow_the_nulls_openai_sends(schemas: dict[str, Any]) -> None:
    """Two fields that OpenAI's API sends as null, which the published spec types without null.

    A response in progress has `"usage": null` (the SDK types it Optional), and a json_schema text format
    echoes `"description": null` when none was given. The Open Responses spec requires both keys and allows
    null, so a server cannot leave them out; these are the only places where the checks here are relaxed.
    """
    response = next(part for part in schemas["Response"]["allOf"] if "usage" in part.get("properties", {}))
    response["properties"]["usage"] = {"anyOf": [response["properties"]["usage"], {"type": "null"}]}
    json_schema_format = schemas["TextResponseFormatJsonSchema"]["properties"]
    json_schema_format["description"] = {"anyOf": [json_schema_format["description"], {"type": "null"}]}


@lru_cache(maxsize=1)
def _registry(path: str) -> Any:
    import yaml
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the 3 MB spec ~10x faster
    with open(path, encoding="utf-8") as handle:
        spec = _fix_nullable(yaml.load(handle, Loader=loader))
    _allow_the_nulls_openai_sends(spec["components"]["schemas"])
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))


def validate(instance: Any, component: str) -> None:
    """Raise jsonschema.ValidationError when `instance` does not match `#/components/schemas/<component>`."""
    from jsonschema import Draft202012Validator

    path = require_spec()
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{component}"}
    Draft202012Validator(schema, registry=_registry(str(path))).validate(instance)

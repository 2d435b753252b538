"""Checking the request fields that shape what the model may do: tools, tool_choice, output format, reasoning.

Both APIs carry them in slightly different shapes (Chat Completions nests a function tool under `function`,
Responses does not). They are checked here as OpenAI checks them, because the Responses API echoes them in
the response object and the `llm` example passes them on to its LLM: nothing reaches either unchecked.
Tools of other types (`custom`, `web_search`, ...) are left alone: no wrapper here offers them to a model,
so the service ignores them rather than refuse a client (Codex) that always sends some.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import re
from typing import Any

from ..http.errors import OpenAIError
from .declared_tools import NAMESPACE_SEPARATOR, function_spec

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
TOOL_CHOICE_MODES = ("none", "auto", "required")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
VERBOSITIES = ("low", "medium", "high")


def _invalid(message: str, param: str) -> OpenAIError:
    return OpenAIError(400, message, param=param, code="invalid_value")


def check_tools(body: dict[str, Any], *, nested: bool) -> None:
    """`tools`: an array of objects with a `type`; each function tool well formed, with distinct names (those of
    a `namespace` tool's functions as the LLM sees them, `<namespace>__<name>`)."""
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array.", "tools")
    names: set[str] = set()
    for position, tool in enumerate(tools):
        param = f"tools[{position}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _invalid("Each tool must be an object with a 'type'.", param)
        if tool["type"] == "function":
            check_function(tool.get("function") if nested else tool, param, names, prefix="")
        elif tool["type"] == "namespace" and not nested:
            namespace, inner = tool.get("name"), tool.get("tools")
            if not isinstance(namespace, str) or not FUNCTION_NAME.fullmatch(namespace):
                raise _invalid("A namespace's 'name' must be letters, digits, '_' or '-'.", f"{param}.name")
            if not isinstance(inner, list) or not inner:
                raise _invalid("A namespace's 'tools' must be a non-empty array.", f"{param}.tools")
            for index, function in enumerate(inner):
                if isinstance(function, dict) and function.get("type") == "function":
                    check_function(function, f"{param}.tools[{index}]", names, prefix=namespace + NAMESPACE_SEPARATOR)


def check_function(spec: object, param: str, names: set[str], *, prefix: str) -> None:
    """One function tool: its name (with `prefix`, as the LLM sees it) 1 to 64 characters and not seen before."""
    if not isinstance(spec, dict):
        raise _invalid("A function tool needs a 'function' object.", f"{param}.function")
    name = spec.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(prefix + name):
        message = "A function's 'name' must be 1 to 64 letters, digits, '_' or '-'"
        raise _invalid(message + (f", with its namespace ('{prefix}')." if prefix else "."), f"{param}.name")
    if prefix + name in names:
        raise _invalid(f"Two tools are named '{prefix + name}'.", f"{param}.name")
    names.add(prefix + name)
    for field, kinds, kind_name in (
        ("description", str, "a string"),
        ("parameters", dict, "an object (a JSON Schema)"),
        ("strict", bool, "a boolean"),
    ):
        if spec.get(field) is not None and not isinstance(spec[field], kinds):
            raise _invalid(f"A function's '{field}' must be {kind_name}.", f"{param}.{field}")


def check_tool_choice(body: dict[str, Any], *, nested: bool) -> None:
    """`tool_choice`: none, auto, required, one function, or (Responses) a set of allowed functions."""
    choice = body.get("tool_choice")
    if choice is None or choice in TOOL_CHOICE_MODES:
        return
    message = "'tool_choice' must be none, auto, required, or name a function tool."
    if not isinstance(choice, dict):
        raise _invalid(message, "tool_choice")
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") if nested else choice.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(message, "tool_choice")
        return
    if choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") if nested else choice
        allowed = allowed if isinstance(allowed, dict) else {}
        tools = allowed.get("tools")
        functions_only = isinstance(tools, list) and all(function_spec(tool) is not None for tool in tools)
        if allowed.get("mode") in ("auto", "required") and functions_only:
            return
    raise _invalid(message + " This service offers only function tools.", "tool_choice")


def check_output_format(value: object, param: str, *, nested: bool) -> None:
    """A text format (Responses `text.format`) or `response_format` (Chat): text, json_object or json_schema."""
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise _invalid(f"'{param}' must be an object of type text, json_object or json_schema.", param)
    schema = value.get("json_schema") if nested else value
    where = f"{param}.json_schema" if nested else param
    if not isinstance(schema, dict):
        raise _invalid(f"'{where}' must be an object.", where)
    name = schema.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise _invalid("A JSON schema's 'name' must be 1 to 64 letters, digits, '_' or '-'.", f"{where}.name")
    if not isinstance(schema.get("schema", {}), dict):
        raise _invalid("'schema' must be an object (a JSON Schema).", f"{where}.schema")
    if schema.get("strict") is not None and not isinstance(schema["strict"], bool):
        raise _invalid("'strict' must be a boolean.", f"{where}.strict")
    if schema.get("description") is not None and not isinstance(schema["description"], str):
        raise _invalid("'description' must be a string.", f"{where}.description")


def check_text(body: dict[str, Any]) -> None:
    """Responses `text`: `{format, verbosity}`."""
    text = body.get("text")
    if text is None:
        return
    if not isinstance(text, dict):
        raise _invalid("'text' must be an object.", "text")
    check_output_format(text.get("format"), "text.format", nested=False)
    if text.get("verbosity") not in (None, *VERBOSITIES):
        raise _invalid("'text.verbosity' must be low, medium or high.", "text.verbosity")


def check_reasoning(body: dict[str, Any]) -> None:
    """Responses `reasoning`: `{effort, summary}` in OpenAI's values."""
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise _invalid("'reasoning' must be an object.", "reasoning")
    if reasoning.get("effort") not in (None, *REASONING_EFFORTS):
        raise _invalid(f"'reasoning.effort' must be one of {', '.join(REASONING_EFFORTS)}.", "reasoning.effort")
    if reasoning.get("summary") not in (None, *REASONING_SUMMARIES):
        raise _invalid("'reasoning.summary' must be auto, concise or detailed.", "reasoning.summary")

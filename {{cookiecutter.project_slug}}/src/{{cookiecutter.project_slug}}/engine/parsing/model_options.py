"""Checking the request fields that shape what the model may do: tools, tool_choice, output format, reasoning.

Both APIs carry them in slightly different shapes (Chat Completions nests a function tool under `function`,
Responses does not). They are checked here as OpenAI checks them, because the Responses API echoes them in
the response object and the `llm` example passes them on to its LLM: nothing reaches either unchecked.
A Responses `mcp` tool (a remote MCP server, `runs/remote_mcp.py`) is served. Of the other types, those that Codex
sends with every request (`custom`, `web_search`, `tool_search`) are ignored, as no model here is offered them: the
answer is useful without them. Any other type (`file_search`, `code_interpreter`, ...) is a 400: a client that asked
for a tool must not get an answer made without it, silently.

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


# Tool types ignored rather than refused: clients (Codex) send them by default, and a model answers without them.
IGNORED_TOOL_TYPES = frozenset({"custom", "web_search", "web_search_preview", "tool_search"})
APPROVAL_MODES = ("always", "never")


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
        elif tool["type"] == "mcp" and not nested:
            check_mcp_tool(tool, param, names)
        elif tool["type"] not in IGNORED_TOOL_TYPES:
            where = "" if nested else " Remote MCP servers (`mcp`) and function tools are."
            message = f"Tools of type '{tool['type']}' are not served here.{where}"
            raise OpenAIError(400, message, param=f"{param}.type", code="unsupported_value")


def check_mcp_tool(tool: dict[str, Any], param: str, names: set[str]) -> None:
    """A remote MCP server: a label the LLM's tool names can carry, a `server_url` (connectors and tunnels are
    OpenAI's own), string headers, and `allowed_tools` / `require_approval` in OpenAI's shapes."""
    label = tool.get("server_label")
    if not isinstance(label, str) or not FUNCTION_NAME.fullmatch(label):
        raise _invalid("An mcp tool's 'server_label' must be letters, digits, '_' or '-'.", f"{param}.server_label")
    if f"mcp:{label}" in names:
        raise _invalid(f"Two mcp tools are labelled '{label}'.", f"{param}.server_label")
    names.add(f"mcp:{label}")
    if not isinstance(tool.get("server_url"), str):
        message = "An mcp tool needs a 'server_url' (connectors and tunnels are OpenAI's, not served here)."
        raise _invalid(message, f"{param}.server_url")
    if tool.get("authorization") is not None and not isinstance(tool["authorization"], str):
        raise _invalid("An mcp tool's 'authorization' must be a string (an access token).", f"{param}.authorization")
    headers = tool.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(value, str) for value in headers.values())
    ):
        raise _invalid("An mcp tool's 'headers' must be an object of strings.", f"{param}.headers")
    if not _is_tool_filter(tool.get("allowed_tools"), names_only=False):
        message = '\'allowed_tools\' must be an array of tool names or {"tool_names": [...], "read_only": bool}.'
        raise _invalid(message, f"{param}.allowed_tools")
    approval = tool.get("require_approval")
    if approval is None or approval in APPROVAL_MODES:
        return
    if not (
        isinstance(approval, dict)
        and set(approval) <= set(APPROVAL_MODES)
        and all(_is_tool_filter(value, names_only=True) for value in approval.values())
    ):
        message = (
            "'require_approval' must be 'always', 'never' or {\"always\": {\"tool_names\": [...]}, \"never\": {...}}."
        )
        raise _invalid(message, f"{param}.require_approval")


def _is_tool_filter(value: object, *, names_only: bool) -> bool:
    """None, an array of tool names, or `{"tool_names": [...], "read_only": bool}` (OpenAI's MCPToolFilter)."""
    if value is None:
        return True
    if isinstance(value, list):
        return not names_only and all(isinstance(name, str) for name in value)
    if not isinstance(value, dict) or not set(value) <= {"tool_names", "read_only"}:
        return False
    tool_names = value.get("tool_names", [])
    read_only = value.get("read_only")
    return (
        isinstance(tool_names, list)
        and all(isinstance(name, str) for name in tool_names)
        and (read_only is None or isinstance(read_only, bool))
    )


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

"""Input items in the form a conversation keeps them: each rebuilt from its checked fields, with an id and a status.

What a conversation keeps is listed back to clients (`GET /v1/conversations/{id}/items`) and given to wrappers
as input on later turns, so each item is checked here and rebuilt as OpenAI lists it: a message's string content
becomes one text part (`output_text` for the assistant, `input_text` for the others), a missing `status` is
`completed`, and an item without an `id` gets one, as output items do (`msg_…`, `fc_…`). Fields the service does
not know are dropped. Types no wrapper here reads (web searches, computer calls, item references...) are refused
rather than kept unread.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import Callable
from typing import Any

from ..http.errors import OpenAIError
from ..wire.ids import new_id

ROLES = ("user", "assistant", "system", "developer")
STATUSES = ("in_progress", "completed", "incomplete")
IMAGE_DETAILS = ("low", "high", "auto", "original")
FILE_FIELDS = ("file_id", "filename", "file_data", "file_url")


def _invalid(message: str, param: str) -> OpenAIError:
    return OpenAIError(400, message, param=param, code="invalid_value")


def conversation_items(raw: object, field: str) -> list[dict[str, Any]]:
    """The items of `field` (a request's `items`, or a response's input), checked and rebuilt."""
    if not isinstance(raw, list):
        raise _invalid(f"'{field}' must be an array of items.", field)
    return [conversation_item(item, f"{field}[{position}]") for position, item in enumerate(raw)]


def conversation_item(item: object, param: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _invalid("Each item must be an object.", param)
    kind = item.get("type", "message")  # a bare {"role", "content"} is a message
    build = ITEM_BUILDERS.get(kind) if isinstance(kind, str) else None
    if build is None:
        known = ", ".join(ITEM_BUILDERS)
        raise _invalid(f"Items of type {kind!r} cannot be kept in a conversation here; it keeps {known}.", param)
    item_id = item.get("id")
    if item_id is None:
        item_id = new_id(ID_PREFIXES[kind])
    elif not isinstance(item_id, str) or not item_id:
        raise _invalid("An item's 'id' must be a non-empty string.", f"{param}.id")
    return {"type": kind, "id": item_id, **build(item, param)}


def _string(item: dict[str, Any], field: str, param: str) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        raise _invalid(f"'{field}' is required and must be a string.", f"{param}.{field}")
    return value


def _choice(item: dict[str, Any], field: str, choices: tuple[str, ...], param: str, default: str | None) -> str:
    value = item.get(field, default)
    if value not in choices:
        raise _invalid(f"'{field}' must be one of {', '.join(choices)}.", f"{param}.{field}")
    return value


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = _choice(item, "role", ROLES, param, None)
    content = item.get("content")
    if isinstance(content, str):
        parts = [_text_part("output_text" if role == "assistant" else "input_text", content)]
    elif isinstance(content, list):
        parts = [_part(part, f"{param}.content[{index}]") for index, part in enumerate(content)]
    else:
        raise _invalid("A message's 'content' must be a string or an array of parts.", f"{param}.content")
    return {"status": _choice(item, "status", STATUSES, param, "completed"), "role": role, "content": parts}


def _text_part(kind: str, text: str) -> dict[str, Any]:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": kind, "text": text}


def _part(part: object, param: str) -> dict[str, Any]:
    """One content part: text, a refusal, an image or a file (the parts a message or a tool's output holds)."""
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(part, dict) or kind not in PART_TYPES:
        raise _invalid(f"A content part must be an object whose 'type' is one of {', '.join(PART_TYPES)}.", param)
    if kind in ("input_text", "output_text"):
        return _text_part(kind, _string(part, "text", param))
    if kind == "refusal":
        return {"type": "refusal", "refusal": _string(part, "refusal", param)}
    if kind == "input_image":
        image = {key: part[key] for key in ("image_url", "file_id") if part.get(key) is not None}
        if len(image) != 1 or not all(isinstance(value, str) for value in image.values()):
            raise _invalid("An 'input_image' needs an 'image_url' or a 'file_id' (a string).", param)
        return {"type": "input_image", **image, "detail": _choice(part, "detail", IMAGE_DETAILS, param, "auto")}
    file = {key: part[key] for key in FILE_FIELDS if part.get(key) is not None}
    if not file.keys() & {"file_id", "file_data", "file_url"} or not all(isinstance(v, str) for v in file.values()):
        raise _invalid("An 'input_file' needs a 'file_id', 'file_data' or 'file_url' (strings).", param)
    return {"type": "input_file", **file}


PART_TYPES = ("input_text", "output_text", "refusal", "input_image", "input_file")


def _function_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "status": _choice(item, "status", STATUSES, param, "completed"),
        "call_id": _string(item, "call_id", param),
        "name": _string(item, "name", param),
        "arguments": _string(item, "arguments", param),
    }


def _tool_output(item: dict[str, Any], param: str) -> Any:
    """A tool's output: a string, or text, image and file parts."""
    output = item.get("output")
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise _invalid("'output' must be a string or an array of parts.", f"{param}.output")
    parts = [_part(part, f"{param}.output[{index}]") for index, part in enumerate(output)]
    if any(part["type"] not in ("input_text", "input_image", "input_file") for part in parts):
        raise _invalid("A tool's 'output' parts are input_text, input_image or input_file.", f"{param}.output")
    return parts


def _function_call_output(item: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "status": _choice(item, "status", STATUSES, param, "completed"),
        "call_id": _string(item, "call_id", param),
        "output": _tool_output(item, param),
    }


def _reasoning(item: dict[str, Any], param: str) -> dict[str, Any]:
    summary = item.get("summary")
    if not isinstance(summary, list) or not all(
        isinstance(part, dict) and part.get("type") == "summary_text" and isinstance(part.get("text"), str)
        for part in summary
    ):
        raise _invalid("A reasoning item's 'summary' must be an array of summary_text parts.", f"{param}.summary")
    rebuilt: dict[str, Any] = {"summary": [{"type": "summary_text", "text": part["text"]} for part in summary]}
    content = item.get("content")
    if content is not None:
        if not isinstance(content, list) or not all(
            isinstance(part, dict) and part.get("type") == "reasoning_text" and isinstance(part.get("text"), str)
            for part in content
        ):
            raise _invalid("A reasoning item's 'content' must be reasoning_text parts.", f"{param}.content")
        rebuilt["content"] = [{"type": "reasoning_text", "text": part["text"]} for part in content]
    if item.get("encrypted_content") is not None:
        rebuilt["encrypted_content"] = _string(item, "encrypted_content", param)
    if item.get("status") is not None:
        rebuilt["status"] = _choice(item, "status", STATUSES, param, None)
    return rebuilt


def _custom_tool_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    fields = ("call_id", "name", "input")
    return {field: _string(item, field, param) for field in fields}


def _custom_tool_call_output(item: dict[str, Any], param: str) -> dict[str, Any]:
    return {"call_id": _string(item, "call_id", param), "output": _tool_output(item, param)}


def _mcp_list_tools(item: dict[str, Any], param: str) -> dict[str, Any]:
    tools = item.get("tools")
    if not isinstance(tools, list) or not all(
        isinstance(tool, dict) and isinstance(tool.get("name"), str) for tool in tools
    ):
        raise _invalid("An mcp_list_tools item's 'tools' must be an array of tools with a 'name'.", f"{param}.tools")
    return {
        "server_label": _string(item, "server_label", param),
        "tools": tools,
        "error": _optional_string(item, "error", param),
    }


def _mcp_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    """A remote MCP server's tool call (runs/remote_mcp.py): its output, or its error (an object, as OpenAI's)."""
    error = item.get("error")
    if error is not None and not isinstance(error, dict | str):
        raise _invalid("An mcp_call's 'error' must be an object.", f"{param}.error")
    return {
        **_mcp_approval_request(item, param),
        "output": _optional_string(item, "output", param),
        "error": error,
        "status": _choice(item, "status", ("completed", "failed", "incomplete"), param, "completed"),
        "approval_request_id": _optional_string(item, "approval_request_id", param),
    }


def _mcp_approval_request(item: dict[str, Any], param: str) -> dict[str, Any]:
    return {field: _string(item, field, param) for field in ("server_label", "name", "arguments")}


def _mcp_approval_response(item: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(item.get("approve"), bool):
        raise _invalid("'approve' is required and must be a boolean.", f"{param}.approve")
    return {
        "approval_request_id": _string(item, "approval_request_id", param),
        "approve": item["approve"],
        "reason": _optional_string(item, "reason", param),
    }


def _optional_string(item: dict[str, Any], field: str, param: str) -> str | None:
    return None if item.get(field) is None else _string(item, field, param)


ITEM_BUILDERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
    "reasoning": _reasoning,
    "custom_tool_call": _custom_tool_call,
    "custom_tool_call_output": _custom_tool_call_output,
    "mcp_list_tools": _mcp_list_tools,
    "mcp_call": _mcp_call,
    "mcp_approval_request": _mcp_approval_request,
    "mcp_approval_response": _mcp_approval_response,
}
# The id an item gets when it comes without one: OpenAI's prefix for its type.
ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
    "mcp_list_tools": "mcpl_",
    "mcp_call": "mcp_",
    "mcp_approval_request": "mcpr_",
    "mcp_approval_response": "mcpa_",
}

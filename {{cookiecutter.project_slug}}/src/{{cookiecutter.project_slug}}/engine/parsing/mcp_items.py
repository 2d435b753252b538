"""MCP items of a Responses history (`mcp_list_tools`, `mcp_call`, `mcp_approval_request`, `mcp_approval_response`)
as the function calls and results they stand for, which a Chat Completions LLM reads.

A remote MCP server's tools reach the LLM as `<server_label>__<tool>` (`runs/remote_mcp.py`), a wrapper's own tools
behind approval by their names (`runs/tool_approvals.py`); a later turn shows the LLM what was called and what came
back, with or without the request's `mcp` tools.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
from typing import Any

from .declared_tools import NAMESPACE_SEPARATOR

MCP_ITEM_TYPES = frozenset({"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response"})


def llm_name(server_label: str, tool_name: str) -> str:
    """The name the LLM knows a server's tool by: the label keeps two servers' tools of one name apart."""
    return f"{server_label}{NAMESPACE_SEPARATOR}{tool_name}"


def as_llm_sees_it(
    items: list[dict[str, Any]], own_label: str | None = None, only_labels: set[str] | None = None
) -> list[dict[str, Any]]:
    """The history with its MCP items as the function calls and results they stand for; tool lists, approval
    requests still unanswered and the answers themselves are left out (an approved call is its `mcp_call`).
    The calls of `own_label` are a wrapper's own tools (`tool_approvals.py`), which the LLM knows by their names.
    With `only_labels`, the items of other servers stay as they are, for the wrapper to read (its ApprovalHook)."""
    request_labels = {
        item.get("id"): item.get("server_label") for item in items if item["type"] == "mcp_approval_request"
    }
    denials = {
        item.get("approval_request_id"): item.get("reason")
        for item in items
        if item["type"] == "mcp_approval_response" and item.get("approve") is False
    }
    seen = []
    for item in items:
        kind = item["type"]
        if kind == "mcp_approval_response":  # an answer belongs to the server of the request it answers
            label = request_labels.get(item.get("approval_request_id"))
        else:
            label = item.get("server_label")
        if kind not in MCP_ITEM_TYPES or (only_labels is not None and label not in only_labels):
            seen.append(item)
            continue
        if kind == "mcp_call":
            result = call_result_text(item)
        elif kind == "mcp_approval_request" and item.get("id") in denials:
            reason = denials[item["id"]]
            result = "The user denied this call." + (f" Their reason: {reason}" if reason else "")
        else:
            continue
        tool_name = item.get("name", "")
        name = tool_name if label == own_label else llm_name(label or "", tool_name)
        arguments = item.get("arguments") or "{}"
        call = {"type": "function_call", "call_id": item["id"], "name": name, "arguments": arguments}
        seen += [call, {"type": "function_call_output", "call_id": item["id"], "output": result}]
    return seen


def call_result_text(call: dict[str, Any]) -> str:
    """What the LLM is told an `mcp_call` gave: its output, or that it failed and why."""
    return f"The call failed: {_error_text(call['error'])}" if call.get("error") else call.get("output") or ""


def _error_text(error: object) -> str:
    """An `mcp_call` error in words: its message, or the text the tool answered with when it failed."""
    if not isinstance(error, dict):
        return str(error)
    content = error.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict)) or json.dumps(content)
    return str(error.get("message") or content)

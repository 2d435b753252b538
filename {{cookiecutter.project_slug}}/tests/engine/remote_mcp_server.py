"""A small remote MCP server for the tests of `type: "mcp"` tools: the official SDK's MCPServer over Streamable HTTP.

Run as its own process, as a real remote server is: `python remote_mcp_server.py PORT`. Its tools: `add` (read-only),
`delete_file` (has effects: the tests count its calls), `headers_seen` (the HTTP headers of the request it came in),
`calls_made`, `slow`, `fails` and `huge`.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("remote-test")
deleted: list[str] = []  # every delete_file call, so a test can tell a call ran exactly once
last_headers: dict[str, str] = {}


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_file(path: str) -> str:
    """Delete a file (pretend): a tool with effects, the kind a human approves first."""
    deleted.append(path)
    return f"deleted {path}"


@server.tool()
def calls_made() -> list[str]:
    """The paths delete_file was called with, in order."""
    return list(deleted)


@server.tool()
def headers_seen() -> dict[str, str]:
    """The HTTP headers of the request this call came in."""
    return dict(last_headers)


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after `seconds`."""
    await asyncio.sleep(seconds)
    return "late"


@server.tool()
def fails() -> str:
    """Always fails."""
    raise ValueError("the disk is on fire")


@server.tool()
def huge() -> str:
    """An answer far larger than any LLM context should get."""
    return "x" * 1_000_000


def recording_headers(app: Any) -> Any:
    """The app, noting each POST's headers for `headers_seen`."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            last_headers.clear()
            last_headers.update({key.decode(): value.decode() for key, value in scope["headers"]})
        await app(scope, receive, send)

    return wrapped


if __name__ == "__main__":
    app = recording_headers(server.streamable_http_app(stateless_http=True, json_response=True))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

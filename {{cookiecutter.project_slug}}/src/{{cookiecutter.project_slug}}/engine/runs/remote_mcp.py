"""Remote MCP servers in the Responses API: `{"type": "mcp", "server_label", "server_url", ...}` tools.

The service is the MCP client here, as OpenAI's API is. One response:

1. lists each server's tools (the official `mcp` SDK, Streamable HTTP): an `mcp_list_tools` output item, made once
   per response chain (a later turn finds the list in its history, from `previous_response_id`, the conversation or
   the input a stateless client sends back);
2. runs the calls the client approved in this request (`mcp_approval_response` items), each once;
3. calls the wrapper with the allowed tools added to `body["tools"]` as function tools named
   `<server_label>__<tool>`, which `tools_from_request` offers its LLM; each call the LLM makes of one runs here, as
   an `mcp_call` output item (arguments, then output or error), and the LLM is called again with the results, until
   it answers without calling one. A call that needs approval (`require_approval`, by default every call, as at
   OpenAI) ends the response instead, `completed`, with an `mcp_approval_request` item for the client to answer.

The wrapper sees its servers' MCP items of the history as the function calls and results they stand for (a denied
call's result says it was denied; the items of a wrapper's own tools stay as they are, for its `ApprovalHook`), so
any wrapper that offers the request's tools to its LLM and forwards its calls (the `llm` example) serves remote MCP
tools unchanged. An Agent, which runs its tools itself, gets the same tools as Haystack `Tool`s from
`remote_mcp_tools()` (the `agent` example): its calls of them run here too, as `mcp_call` items in order with its
output (each put in the stream at the tool result that follows it), and a call that needs approval is held by the
Agent's `ApprovalHook` (`tool_approvals.py`), or else not run.

Safety: the service connects only to URLs under MCP_SERVER_URLS, sends a server only the tool's own `headers`,
bounds each connection and call in time and its output in size, and a server that fails becomes an item carrying
the error, never a failed response.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import contextvars
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from haystack.dataclasses import StreamingChunk
from haystack.tools import Tool
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..http.errors import OpenAIError
from ..parsing.mcp_items import as_llm_sees_it, call_result_text, llm_name
from ..settings import Settings, split_list
from ..wire.ids import new_id
from .events import Event, OutputItem, StreamError, TextDelta, ToolCallDelta
from .runner import Deadlines, Runner

logger = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 64 * 1024  # of one call's output: more is cut (the LLM's context is the scarcer resource)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one message from a server; a bigger one fails the call
MAX_TOOL_CALLS = 16  # MCP calls one response makes unless `max_tool_calls` says fewer
MAX_ROUNDS = 16  # LLM calls one response makes; the last is offered no MCP tools, so it answers
SETTING = "MCP_SERVER_URLS"
ItemLookup = Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]  # the store's `get_items`
NOT_APPROVED = "This call needs a person's approval, which this model did not ask for: the call was not run."
LIMIT_REACHED = "Not run: this response made all the MCP calls it may (max_tool_calls)."


@dataclass(frozen=True, slots=True)
class RemoteServer:
    """One `mcp` tool of the request: where the server is, what it may be sent, which of its tools the LLM sees."""

    label: str
    url: str
    headers: dict[str, str]
    allowed_tools: list[str] | dict[str, Any] | None
    require_approval: str | dict[str, Any]

    def allows(self, tool: dict[str, Any]) -> bool:
        """Whether `allowed_tools` (a list of names, or a filter by names and read-only hint) lets the LLM see it."""
        allowed = self.allowed_tools
        if allowed is None:
            return True
        if isinstance(allowed, list):
            return tool["name"] in allowed
        if "tool_names" in allowed and tool["name"] not in allowed["tool_names"]:
            return False
        read_only = ((tool.get("annotations") or {}).get("readOnlyHint")) is True
        return allowed.get("read_only") is None or allowed["read_only"] == read_only

    def needs_approval(self, tool_name: str) -> bool:
        """`always`, `never`, or per tool; a tool no filter names needs approval (OpenAI's default)."""
        policy = self.require_approval
        if isinstance(policy, str):
            return policy != "never"
        return tool_name not in (policy.get("never") or {}).get("tool_names", [])


def remote_servers(body: dict[str, Any], allowed_prefixes: str | None) -> list[RemoteServer]:
    """The request's `mcp` tools (already checked by `parsing/model_options.py`); a URL outside MCP_SERVER_URLS is
    a 400 naming the setting."""
    servers = []
    for position, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") != "mcp":
            continue
        if not url_allowed(tool["server_url"], allowed_prefixes):
            message = (
                f"The MCP server URL '{tool['server_url']}' is not one this service may connect to: an operator "
                f"allows servers with the {SETTING} setting (comma-separated URL prefixes; unset, none)."
            )
            raise OpenAIError(400, message, param=f"tools[{position}].server_url", code="invalid_value")
        headers = dict(tool.get("headers") or {})
        if tool.get("authorization"):  # an OAuth access token the client got for this server
            headers["Authorization"] = f"Bearer {tool['authorization']}"
        servers.append(
            RemoteServer(
                label=tool["server_label"],
                url=tool["server_url"],
                headers=headers,
                allowed_tools=tool.get("allowed_tools"),
                require_approval=tool.get("require_approval") or "always",
            )
        )
    return servers


def url_allowed(url: str, allowed_prefixes: str | None) -> bool:
    """Whether `url` is under one of the prefixes: same scheme, host and port, its path the prefix's or below it.

    Compared by parts, not as strings, so `https://tools.example` does not allow `https://tools.example.evil`, nor
    `/mcp` allow `/mcp-admin`; a URL with a user name or password in it is never allowed (nothing but the tool's
    `headers` is sent).
    """
    try:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname, parts.port)
        if parts.scheme not in ("http", "https") or parts.username or parts.password or not parts.hostname:
            return False
        for prefix in split_list(allowed_prefixes or ""):
            allowed = urlsplit(prefix)
            base = allowed.path.rstrip("/")
            under = parts.path == base or parts.path.startswith(base + "/")
            if origin == (allowed.scheme, allowed.hostname, allowed.port) and under:
                return True
    except ValueError:  # a port that is not a number
        return False
    return False


def check_approvals(items: list[dict[str, Any]], servers: list[RemoteServer], model: str) -> None:
    """Each `mcp_approval_response` answers an `mcp_approval_request` of its history, of a server the request still
    gives (or of the model's own tools, `tool_approvals.py`), once: a forged, foreign or already answered
    `approval_request_id` is a 400 before anything runs."""
    requests: dict[str, dict[str, Any]] = {}
    answered: set[str] = set()
    labels = {server.label for server in servers} | {model}
    for position, item in enumerate(items):
        if item["type"] == "mcp_approval_request" and isinstance(item.get("id"), str):
            requests[item["id"]] = item
        if item["type"] != "mcp_approval_response":
            continue
        request_id, approve = item.get("approval_request_id"), item.get("approve")
        if not isinstance(request_id, str) or not isinstance(approve, bool):
            message = "An mcp_approval_response needs 'approval_request_id' (a string) and 'approve' (a boolean)."
            raise OpenAIError(400, message, param=f"input[{position}]", code="invalid_value")
        if request_id not in requests:
            message = (
                f"No approval request with id '{request_id}' comes before this answer: send it back with the "
                "previous response's id (previous_response_id), in the conversation, or in the input."
            )
            raise OpenAIError(400, message, param=f"input[{position}].approval_request_id", code="invalid_value")
        if request_id in answered:
            message = f"The approval request '{request_id}' was answered already; each is answered once."
            raise OpenAIError(400, message, param=f"input[{position}].approval_request_id", code="invalid_value")
        if approve and requests[request_id].get("server_label") not in labels:
            label = requests[request_id].get("server_label")
            message = f"The approved call is of the MCP server '{label}', which this request's tools do not give."
            raise OpenAIError(400, message, param="tools", code="invalid_value")
        answered.add(request_id)


def with_remote_mcp(
    runner: Runner, method: Callable[..., Any], body: dict[str, Any], settings: Settings
) -> Callable[..., Any]:
    """The wrapper's Responses `method`, with the request's remote MCP servers around it when it gives any."""
    if not any(tool.get("type") == "mcp" for tool in body.get("tools") or ()):
        return method
    return RemoteMcpTurn(runner, method, settings.mcp_server_urls, settings.mcp_timeout_seconds).run


class RemoteMcpTurn:
    """A wrapper's Responses method with the request's remote MCP servers around it (a run like any other: the
    runner calls `run(model, input_items, body)` and reads its events, in the request or in the background)."""

    def __init__(
        self, runner: Runner, method: Callable[..., Any], allowed_prefixes: str | None, timeout_seconds: float
    ) -> None:
        self.runner = runner
        self.method = method
        self.allowed_prefixes = allowed_prefixes
        self.timeout_seconds = timeout_seconds  # MCP_TIMEOUT_SECONDS: to list a server's tools, or to run one call
        # Each LLM call must start answering in time; the whole response has the deadline of the run around it (a
        # background one's is longer), which ends these calls with it.
        self.deadlines = Deadlines(first_output=runner.deadlines.first_output)
        self.servers: dict[str, RemoteServer] = {}
        self.offered: dict[str, tuple[RemoteServer, dict[str, Any]]] = {}  # the LLM's name of a tool -> its server
        self.calls_left = MAX_TOOL_CALLS
        self.agent_calls: list[Event] = []  # the items of an Agent's calls (`remote_mcp_tools`), not yet streamed

    async def run(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> AsyncIterator[Event]:
        # Checked again here: a background run may start on a replica whose MCP_SERVER_URLS differs.
        self.servers = {server.label: server for server in remote_servers(body, self.allowed_prefixes)}
        listed = _listed_before(input_items)
        for server in self.servers.values():
            if server.label not in listed:
                async for event in self._list(server, listed):
                    yield event
        made: list[dict[str, Any]] = []  # this response's items the LLM's next call must see
        for request in approved_and_not_run(input_items, labels=set(self.servers)):
            call = new_call(request["server_label"], request["name"], request["arguments"], request["id"])
            async for event in self._call(self.servers[request["server_label"]], call):
                yield event
            made.append(call)
        self.calls_left = min(body.get("max_tool_calls") or MAX_TOOL_CALLS, MAX_TOOL_CALLS)
        for round_number in range(MAX_ROUNDS):
            offered = self._offered(listed) if self.calls_left > 0 and round_number < MAX_ROUNDS - 1 else {}
            self.offered = offered
            tools = [tool for tool in body.get("tools") or () if tool.get("type") != "mcp"]
            tools += [_function_tool(name, tool) for name, (_, tool) in offered.items()]
            history = as_llm_sees_it([*input_items, *made], only_labels=set(self.servers))
            current = _agent_turn.set(self)  # the wrapper's run starts in a copy of this context
            try:
                stream = self.runner.start(
                    self.method, model, history, body | {"tools": tools}, deadlines=self.deadlines
                )
            finally:
                _agent_turn.reset(current)
            text: list[str] = []
            calls: dict[int, tuple[str, list[str]]] = {}  # the LLM's MCP calls, by index: name, argument pieces
            client_calls = False
            try:
                while (batch := await stream.next_batch()) is not None:
                    for event in batch:
                        if isinstance(event, ToolCallDelta) and (event.index in calls or event.name in offered):
                            calls.setdefault(event.index, (event.name or "", []))[1].append(event.arguments)
                            continue
                        client_calls |= isinstance(event, ToolCallDelta)  # a client's function: it goes back
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                        yield event
                        if isinstance(event, StreamError):
                            return
            finally:
                stream.close()
            for event in self.agent_calls:  # an Agent's calls that no tool result in its stream followed
                yield event
            self.agent_calls = []
            if not calls:
                return
            if text:
                made.append({"type": "message", "role": "assistant", "content": [_output_text("".join(text))]})
            waiting = False
            for name, pieces in calls.values():
                server, tool = offered[name]
                arguments = "".join(pieces) or "{}"
                if server.needs_approval(tool["name"]):
                    waiting = True
                    item = {"id": new_id("mcpr_"), "type": "mcp_approval_request", "server_label": server.label}
                    yield OutputItem(item | {"name": tool["name"], "arguments": arguments})
                    continue
                call = new_call(server.label, tool["name"], arguments)
                async for event in self._call(server, call):
                    yield event
                made.append(call)
                self.calls_left -= 1
            if waiting or client_calls:
                return  # the client answers the approval requests, or runs its functions, in its next request

    def agent_tools(self) -> list[Tool]:
        """The tools offered in this round as Haystack `Tool`s whose calls run on their servers (`_call`); a tool
        whose input schema Haystack refuses is left out, not the Agent's whole answer."""
        tools = []
        for name, (server, tool) in self.offered.items():
            offered = _function_tool(name, tool)
            call = self._agent_call(server, tool["name"])
            try:
                tools.append(Tool(name, offered["description"], offered["parameters"], async_function=call))
            except ValueError as error:  # Haystack raises it for a schema that is not valid JSON Schema
                logger.warning("MCP server '%s': its tool '%s' is left out: %s", server.label, tool["name"], error)
        return tools

    def _agent_call(self, server: RemoteServer, tool_name: str) -> Callable[..., Awaitable[str]]:
        """An Agent's call of one remote tool: an `mcp_call` item for the stream, and its result for the Agent."""

        async def call_on_server(**arguments: Any) -> str:
            if server.needs_approval(tool_name):  # an ApprovalHook holds such a call before it gets here
                return NOT_APPROVED
            if self.calls_left <= 0:
                return LIMIT_REACHED
            self.calls_left -= 1
            call = new_call(server.label, tool_name, json.dumps(arguments))
            async for event in self._call(server, call):
                self.agent_calls.append(event)
            return call_result_text(call)

        return call_on_server

    def _offered(self, listed: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[RemoteServer, dict[str, Any]]]:
        """The LLM's name of each tool it may call -> the server and the tool (as listed, `allowed_tools` applied)."""
        return {
            llm_name(label, tool["name"]): (server, tool)
            for label, server in self.servers.items()
            for tool in listed.get(label, ())
            if server.allows(tool)
        }

    async def _list(self, server: RemoteServer, listed: dict[str, list[dict[str, Any]]]) -> AsyncIterator[Event]:
        item: dict[str, Any] = {"id": new_id("mcpl_"), "type": "mcp_list_tools", "server_label": server.label}
        item |= {"tools": [], "error": None}
        yield OutputItem(dict(item), done=False)
        try:
            with anyio.fail_after(self.timeout_seconds):
                async with _connected(server, self.timeout_seconds) as session:
                    result = await session.list_tools()
            tools = [_listed_tool(tool) for tool in result.tools]
            item["tools"] = [tool for tool in tools if server.allows(tool)]
        except Exception as error:
            item["error"] = _failure(error, self.timeout_seconds)["message"]
            logger.warning(
                "MCP server '%s' (%s): listing its tools failed: %s", server.label, server.url, item["error"]
            )
        listed[server.label] = item["tools"]
        yield OutputItem(item)

    async def _call(self, server: RemoteServer, call: dict[str, Any]) -> AsyncIterator[Event]:
        """Run one call on its server: the item opens with its arguments, and closes with the output or the error."""
        yield OutputItem(dict(call), done=False)
        try:
            arguments = json.loads(call["arguments"])
            if not isinstance(arguments, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            call["error"] = {"type": "mcp_protocol_error", "code": -32602, "message": f"Arguments not JSON: {error}"}
        else:
            try:
                with anyio.fail_after(self.timeout_seconds):
                    async with _connected(server, self.timeout_seconds) as session:
                        result = await session.call_tool(call["name"], arguments)
                output = _cut(_content_text(result.content, result.structured_content))
                if result.is_error:
                    call["error"] = {"type": "mcp_tool_execution_error", "content": _content_json(result.content)}
                else:
                    call["output"] = output
            except Exception as error:
                call["error"] = _failure(error, self.timeout_seconds)
                logger.warning("MCP server '%s': call of '%s' failed: %s", server.label, call["name"], call["error"])
        call["status"] = "failed" if call["error"] is not None else "completed"
        yield OutputItem(call)


_agent_turn: contextvars.ContextVar[RemoteMcpTurn | None] = contextvars.ContextVar("remote_mcp_turn", default=None)


def remote_mcp_tools() -> list[Tool]:
    """The remote MCP tools of this request (its `type: "mcp"` tools, `allowed_tools` applied) as Haystack `Tool`s,
    for an Agent to call in its own loop (`Agent.run_async(tools=...)`); none when the request gives no server.

    Each call runs on its server and shows as an `mcp_call` item; a call that needs approval (`require_approval`) is
    held by the Agent's `ApprovalHook` and ends the answer with an `mcp_approval_request` for the client to answer
    (without the hook, it is not run, and the Agent is told so).
    """
    turn = _agent_turn.get()
    return turn.agent_tools() if turn is not None else []


def remote_tool_needing_approval(llm_tool_name: str) -> tuple[str, str] | None:
    """The server label and tool name of a remote MCP tool of this request whose calls wait for approval."""
    turn = _agent_turn.get()
    offered = turn.offered.get(llm_tool_name) if turn is not None else None
    if offered is None or not offered[0].needs_approval(offered[1]["name"]):
        return None
    return offered[0].label, offered[1]["name"]


def agent_calls_before(chunk: StreamingChunk) -> list[Event]:
    """At a tool result in an Agent's stream, the items of the remote MCP calls that finished before it: so they
    stream after the text that preceded the call, and before what the Agent says next."""
    if chunk.tool_call_result is None or (turn := _agent_turn.get()) is None or not turn.agent_calls:
        return []
    events, turn.agent_calls = turn.agent_calls, []
    return events


@asynccontextmanager
async def _connected(server: RemoteServer, seconds: float) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session to `server`, sending its headers and nothing else of the service's.

    Redirects are not followed: one could lead outside MCP_SERVER_URLS.
    """
    async with (
        httpx2.AsyncClient(headers=server.headers, timeout=httpx2.Timeout(seconds), follow_redirects=False) as http,
        streamable_http_client(server.url, http_client=http, max_sse_event_size=MAX_MESSAGE_BYTES) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _listed_before(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each server's tools as this response chain listed them last (a failed listing is tried again)."""
    return {
        item["server_label"]: item.get("tools") or []
        for item in items
        if item["type"] == "mcp_list_tools" and item.get("error") is None and isinstance(item.get("server_label"), str)
    }


def approved_and_not_run(items: list[dict[str, Any]], labels: set[str]) -> list[dict[str, Any]]:
    """The approval requests of the servers `labels` names that the history approved (checked by `check_approvals`)
    and whose call has not run yet."""
    requests = {
        item["id"]: item
        for item in items
        if item["type"] == "mcp_approval_request" and item.get("server_label") in labels
    }
    ran = {item.get("approval_request_id") for item in items if item["type"] == "mcp_call"}
    return [
        requests[item["approval_request_id"]]
        for item in items
        if item["type"] == "mcp_approval_response"
        and item["approve"]
        and item["approval_request_id"] in requests
        and item["approval_request_id"] not in ran
    ]


def approved_call_id(approval_request_id: str) -> str:
    """The id of the call an approval runs, made from the request's: a store that holds it shows the call ran."""
    return "mcp_" + approval_request_id.removeprefix("mcpr_")


async def check_not_run_elsewhere(items: list[dict[str, Any]], labels: set[str], stored: ItemLookup) -> None:
    """An approval the history shows unrun, whose call a stored response holds: it ran in another branch of the
    chain (an older `previous_response_id`), and runs once only. A 400, before anything runs."""
    pending = [request["id"] for request in approved_and_not_run(items, labels)]
    ran = await stored([approved_call_id(request_id) for request_id in pending]) if pending else {}
    if ran:
        request_id = next(ran_call["approval_request_id"] for ran_call in ran.values())
        message = f"The call approved by '{request_id}' ran already, in another response: each approval runs once."
        raise OpenAIError(400, message, param="input", code="invalid_value")


def new_call(label: str, name: str, arguments: str, approval_request_id: str | None = None) -> dict[str, Any]:
    return {
        "id": approved_call_id(approval_request_id) if approval_request_id else new_id("mcp_"),
        "type": "mcp_call",
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": None,
        "status": "in_progress",
        "approval_request_id": approval_request_id,
    }


def _listed_tool(tool: Any) -> dict[str, Any]:
    """A tool as an `mcp_list_tools` item lists it (OpenAI's MCPListToolsTool)."""
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "annotations": annotations,
    }


def _function_tool(name: str, tool: dict[str, Any]) -> dict[str, Any]:
    """A listed tool as the function tool the LLM is offered."""
    parameters = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "name": name, "description": tool.get("description") or "", "parameters": parameters}


def _content_text(content: list[Any], structured: Any) -> str:
    """A result's text parts joined; other parts (images, resources) as their JSON; structured content alone when
    there is no content."""
    if not content and structured is not None:
        return json.dumps(structured)
    return "\n".join(
        part.text if getattr(part, "type", None) == "text" else json.dumps(part.model_dump(mode="json", by_alias=True))
        for part in content
    )


def _content_json(content: list[Any]) -> list[dict[str, Any]]:
    return [part.model_dump(mode="json", by_alias=True, exclude_none=True) for part in content]


def _cut(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n[output cut at {MAX_OUTPUT_CHARS} characters]"


def _failure(error: BaseException, seconds: float) -> dict[str, Any]:
    """What went wrong talking to a server, as an `mcp_call` error: a JSON-RPC error, an HTTP status, or no answer."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:  # the SDK's task groups wrap what they raise
        error = error.exceptions[0]
    if isinstance(error, MCPError):
        return {"type": "mcp_protocol_error", "code": error.code, "message": error.message}
    if isinstance(error, httpx2.HTTPStatusError):
        status = error.response.status_code
        return {"type": "http_error", "code": status, "message": f"The MCP server answered HTTP {status}."}
    if isinstance(error, TimeoutError):
        return {"type": "http_error", "code": 504, "message": f"The MCP server did not answer within {seconds:g} s."}
    return {"type": "http_error", "code": 502, "message": f"Could not reach the MCP server: {error}"}


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}

"""`/mcp`: the service as an MCP server (Streamable HTTP, the official `mcp` SDK), beside the Quart app.

Every typed entry (`run_api`, docs/tools.md) is a tool: its schema from the signature, its description from the
docstring, its annotations from the wrapper's `tool_annotations`; the chat models MCP_CHAT_TOOLS names are tools
that take a question. The SDK's session manager runs stateless (a fresh transport per request, no session id), so
any worker or replica answers any request, with no sticky sessions. It is an ASGI layer rather than a Quart route
(the SDK speaks ASGI), in front of the app and behind the request tracking: /mcp gets request ids, the access
line and metrics like every route, and the same API_KEYS check.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from ..http.auth import key_names
from ..http.errors import UNREAD_BODY_READ_BYTES, OpenAIError
from ..runs.events import StreamError, TextDelta
from ..runs.registry import LoadedWrapper
from ..runs.typed_entry import TypedEntry, typed_entry
from ..services import Services
from ..settings import split_list
from ..wire.json_text import compact_json

logger = logging.getLogger(__name__)

PATH = "/mcp"
LOADING_WAIT_SECONDS = 30.0  # a request while the wrappers load waits this long for them
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]], Any]
QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "description": "What to ask, in plain words"}},
    "required": ["question"],
}


class ToolError(Exception):
    """A call the tool refuses or fails: told to the client as a tool result with `isError`, so its LLM can
    correct the call; never a traceback."""


class McpServer:
    """The MCP server over the app's services: which tools there are, and running them."""

    def __init__(self, app_services: Services) -> None:
        self.services = app_services
        settings = app_services.settings
        self.chat_tools = split_list(settings.mcp_chat_tools or "")
        self.server: Server[Any] = Server(
            settings.wrappers_package.split(".")[0],
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)  # checked in McpEndpoint
        # The SDK notes at INFO each stateless request's end ("Terminating session: None"): one line per call.
        logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)
        self.manager = StreamableHTTPSessionManager(self.server, stateless=True, security_settings=security)

    def typed_tools(self) -> dict[str, tuple[LoadedWrapper, TypedEntry]]:
        found = {}
        for wrapper in self.services.registry.wrappers.values():
            if (entry := typed_entry(wrapper.model_id, wrapper.instance)) is not None:
                found[wrapper.model_id] = (wrapper, entry)
        return found

    def question_tools(self) -> dict[str, LoadedWrapper]:
        """The chat models offered as tools: named by MCP_CHAT_TOOLS (or all), serving Chat Completions."""
        chat = [wrapper for wrapper in self.services.registry.serving() if wrapper.method_for("chat")]
        return {w.model_id: w for w in chat if "all" in self.chat_tools or w.model_id in self.chat_tools}

    async def loaded(self) -> None:
        """Wait (bounded) for the wrappers to load: a client connecting while the service starts gets every tool,
        not the few loaded so far (its tool list is cached), and a call is not refused as unknown."""
        deadline = asyncio.get_running_loop().time() + LOADING_WAIT_SECONDS
        while self.services.registry.loading and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def list_tools(self, context: Any, params: Any) -> types.ListToolsResult:
        await self.loaded()
        tools = [
            types.Tool(
                name=model_id,
                description=entry.description,
                input_schema=entry.request_schema(),
                annotations=types.ToolAnnotations.model_validate(wrapper.instance.tool_annotations or {}),
            )
            for model_id, (wrapper, entry) in self.typed_tools().items()
        ]
        for model_id in self.question_tools().keys() - {tool.name for tool in tools}:
            description = f"Ask the '{model_id}' model a question; it answers in text."
            tools.append(types.Tool(name=model_id, description=description, input_schema=QUESTION_SCHEMA))
        return types.ListToolsResult(tools=sorted(tools, key=lambda tool: tool.name))

    async def call_tool(self, context: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        await self.loaded()
        try:
            if (typed := self.typed_tools().get(params.name)) is not None:
                result = await self.run_typed(*typed, arguments, context)
            elif (wrapper := self.question_tools().get(params.name)) is not None:
                result = await self.ask(wrapper, arguments)
            else:
                raise ToolError(f"There is no tool named '{params.name}'.")
        except ToolError as error:
            return types.CallToolResult(content=[types.TextContent(text=str(error))], is_error=True)
        text = result if isinstance(result, str) else compact_json(result)
        structured = {"result": result} if not isinstance(result, str) else None
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)

    async def run_typed(
        self, wrapper: LoadedWrapper, entry: TypedEntry, arguments: dict[str, Any], context: Any
    ) -> Any:
        """The typed entry's answer as JSON data; a streaming one's items as a list, each reported as progress."""
        try:
            keywords = await entry.with_files(entry.arguments(arguments), self.services.files)
        except OpenAIError as error:
            raise ToolError(error.message) from None
        method = getattr(wrapper.instance, entry.method_name)
        try:
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
                result = method(**keywords)
                result = await result if inspect.isawaitable(result) else result
            else:
                result = await self.services.runner.call(partial(method, **keywords))
            if not (inspect.isasyncgen(result) or isinstance(result, Iterator)):
                return entry.dump(result)
            items = []
            async for item in each(result, self.services):
                items.append(entry.dump(item))
                await context.session.report_progress(len(items), message=compact_json(items[-1]))
            return items
        except OpenAIError as error:
            raise ToolError(error.message) from None
        except Exception as error:
            logger.error(
                "The run of model '%s' (%s, an MCP tool call) failed", entry.model_id, entry.method_name, exc_info=error
            )
            raise ToolError(f"The tool '{entry.model_id}' failed ({type(error).__name__}).") from None

    async def ask(self, wrapper: LoadedWrapper, arguments: dict[str, Any]) -> str:
        """A chat model as a tool: the question as the one user message, the answer's text."""
        question = arguments.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ToolError("'question' must be a non-empty string.")
        method_name = wrapper.method_for("chat")
        assert method_name is not None  # question_tools() holds chat models only
        messages = [{"role": "user", "content": question}]
        body = {"model": wrapper.model_id, "messages": messages}
        method = getattr(wrapper.instance, method_name)
        events = await self.services.runner.collect(method, wrapper.model_id, messages, body)
        if failed := next((event for event in events if isinstance(event, StreamError)), None):
            raise ToolError(failed.message)
        return "".join(event.text for event in events if isinstance(event, TextDelta))


async def each(items: Any, app_services: Services) -> Any:
    """The items of a sync or async generator; a sync one is advanced in the thread pool."""
    done = object()
    try:
        while True:
            if inspect.isasyncgen(items):
                item = await anext(items, done)
            else:
                item = await app_services.runner.call(next, items, done)
            if item is done:
                return
            yield item
    finally:
        closing = getattr(items, "aclose", None) or getattr(items, "close", None)
        if closing is not None and inspect.isawaitable(closed := closing()):
            await closed


class McpEndpoint:
    """ASGI: `/mcp` to the MCP server (after the API key, host and origin checks), the rest to the app."""

    def __init__(self, app: ASGIApp, mcp_server: McpServer) -> None:
        self.app = app
        self.mcp = mcp_server
        settings = mcp_server.services.settings
        self.allowed_hosts = split_list(settings.mcp_allowed_hosts or "")
        origins = settings.mcp_allowed_origins or settings.cors_allow_origins or ""
        self.allowed_origins = split_list(origins)

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """The app's own coroutine for every other path, handed back rather than awaited: no frame of this layer
        on their requests."""
        if scope["type"] != "http" or scope["path"].rstrip("/") != PATH:
            return self.app(scope, receive, send)
        return self._serve_mcp(scope, receive, send)

    async def _serve_mcp(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            refusal = self.refusal(headers)
        except Exception:
            logger.exception("The checks of a request to /mcp failed")
            refusal = OpenAIError(500, "The request could not be checked; see the server log.", code="server_error")
        if refusal is not None:
            # Its body read first, so that the connection can carry the client's next request (as errors.py does).
            await send_error(send, refusal, keep_alive=await drained(receive))
            return
        await self.mcp.manager.handle_request({**scope, "path": PATH}, receive, send)

    def refusal(self, headers: dict[str, str]) -> OpenAIError | None:
        if (
            self.mcp.services.api_keys
            and key_names(headers.get("authorization", ""), self.mcp.services.api_keys) is None
        ):
            return OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key")
        if self.allowed_hosts and not matches(headers.get("host", ""), self.allowed_hosts):
            return OpenAIError(421, "This host is not one /mcp answers (MCP_ALLOWED_HOSTS).", code="host_not_allowed")
        origin = headers.get("origin")
        if origin and "*" not in self.allowed_origins and not matches(origin, self.allowed_origins):
            message = "Browser pages may not call /mcp from this origin (MCP_ALLOWED_ORIGINS)."
            return OpenAIError(403, message, code="origin_not_allowed")
        return None


def matches(value: str, allowed: list[str]) -> bool:
    """`value` is listed, or matches a `host:*` / `scheme://host:*` entry with any port."""
    return value in allowed or any(
        entry.endswith(":*") and value.startswith(entry[:-1]) and value[len(entry) - 1 :].isdigit() for entry in allowed
    )


async def drained(receive: Any) -> bool:
    """Read and drop the request's body, up to UNREAD_BODY_READ_BYTES; whether all of it was read."""
    read = 0
    while read <= UNREAD_BODY_READ_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return False
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


async def send_error(send: Any, error: OpenAIError, *, keep_alive: bool) -> None:
    body = compact_json(error.envelope()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    if not keep_alive:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def start(mcp_server: McpServer) -> Callable[[], Awaitable[None]]:
    """Run the session manager (its task group) in a task of its own while the app serves; returns its stop."""
    stopping = asyncio.Event()

    async def serve() -> None:
        async with mcp_server.manager.run():
            await stopping.wait()

    task = asyncio.create_task(serve())

    async def stop() -> None:
        stopping.set()
        await task

    return stop

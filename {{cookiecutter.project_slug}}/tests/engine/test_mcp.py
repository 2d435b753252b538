"""The service as an MCP server (`/mcp`), through the official `mcp` SDK's client over Streamable HTTP.

Typed entries are tools (tests/engine/typed_wrappers), chat models too when MCP_CHAT_TOOLS names them; the
server keeps no session, so two workers answer one client; API_KEYS, hosts and origins are checked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from engines import Nginx
from support import ServiceProcess, assert_error, base_env, serve, wait_until


@pytest.fixture(scope="module")
def tools_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = base_env(WRAPPERS_PACKAGE="typed_wrappers")
    yield from serve(tmp_path_factory.mktemp("mcp"), "mcp", env)


@asynccontextmanager
async def mcp_session(service: ServiceProcess, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialised client session, as Claude, Codex or VS Code open one."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=30) as http,
        streamable_http_client(f"{service.base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_typed_entries_are_tools_with_their_schema(tools_service: ServiceProcess) -> None:
    async with mcp_session(tools_service) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"search_docs", "shout", "count_up", "count_words", "fails"}, "takes_anything failed to load"
    assert tools["count_words"].input_schema["properties"]["document"]["type"] == "string", "a file by its id"
    search = tools["search_docs"]
    assert search.description is not None and search.description.startswith("Search the documentation.")
    assert search.input_schema["required"] == ["query"]
    assert search.input_schema["properties"]["top_k"]["default"] == 2
    assert search.annotations is not None and search.annotations.read_only_hint is True
    assert search.annotations.open_world_hint is False
    shout = tools["shout"].input_schema
    assert shout["properties"]["style"]["anyOf"][0]["$ref"] == "#/$defs/Style" and "Style" in shout["$defs"]


async def test_a_tool_call_answers_with_structured_content(tools_service: ServiceProcess) -> None:
    async with mcp_session(tools_service) as session:
        found = await session.call_tool("search_docs", {"query": "Which framework has Flask's API?", "top_k": 1})
        said = await session.call_tool("shout", {"text": "hi", "style": {"suffix": "?"}})
    assert not found.is_error
    assert [passage["source"] for passage in found.structured_content["result"]] == ["quart.md"]
    assert json.loads(found.content[0].text) == found.structured_content["result"], "the text is the same JSON"
    assert said.structured_content == {"result": {"said": "HI?"}}


@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("search_docs", {"top_k": 1}, "query"),
        ("search_docs", {"query": "x", "top_k": "many"}, "top_k"),
        ("shout", {"text": "hi", "times": 11}, "At most 10 times"),
        ("fails", {"question": "?"}, "ValueError"),
        ("nope", {}, "no tool named 'nope'"),
    ],
    ids=["missing", "wrong type", "refused by the wrapper", "pipeline fails", "unknown tool"],
)
async def test_a_bad_call_is_a_tool_error_the_model_can_read(
    tools_service: ServiceProcess, name: str, arguments: dict[str, Any], says: str
) -> None:
    async with mcp_session(tools_service) as session:
        result = await session.call_tool(name, arguments)
    assert result.is_error
    text = result.content[0].text
    assert says in text and "secret" not in text and "Traceback" not in text


async def test_a_streaming_tool_reports_each_item_as_progress(tools_service: ServiceProcess) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with mcp_session(tools_service) as session:
        result = await session.call_tool("count_up", {"upto": 3}, progress_callback=on_progress)
    assert result.structured_content == {"result": [1, 2, 3]}
    assert progress == [(1, "1"), (2, "2"), (3, "3")]


async def test_a_chat_model_named_in_the_setting_is_a_question_tool(tmp_path: Path) -> None:
    service = ServiceProcess("mcp_chat", tmp_path, base_env(MCP_CHAT_TOOLS="chat")).start()
    try:
        async with mcp_session(service) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            answer = await session.call_tool("chat", {"question": "What is Haystack?"})
            empty = await session.call_tool("chat", {"question": ""})
    finally:
        service.stop()
    assert set(tools) == {"chat", "rag"}, "the rag example's typed entry, and the chat model the setting names"
    assert tools["chat"].input_schema["required"] == ["question"]
    assert tools["rag"].annotations is not None and tools["rag"].annotations.read_only_hint is True
    assert not answer.is_error and "What is Haystack?" in answer.content[0].text, "offline: the answer echoes"
    assert empty.is_error


async def test_api_keys_hosts_and_origins_are_checked(tmp_path: Path) -> None:
    env = base_env(WRAPPERS_PACKAGE="typed_wrappers", API_KEYS="sk-mcp", MCP_ALLOWED_HOSTS="127.0.0.1:*")
    service = ServiceProcess("mcp_keys", tmp_path, env, ready_path="/health/live").start()
    try:
        keyed = {"authorization": "Bearer sk-mcp"}
        with service.http() as http:
            wait_until(lambda: http.post("/shout/run", json={"text": "a"}, headers=keyed).status_code != 503)
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            accept = {"accept": "application/json, text/event-stream"}
            assert_error(http.post("/mcp", json=ping, headers=accept), 401, code="invalid_api_key")
            other_host = {**keyed, **accept, "host": "attacker.example"}
            assert_error(http.post("/mcp", json=ping, headers=other_host), 421, code="host_not_allowed")
            from_page = {**keyed, **accept, "origin": "http://attacker.example"}
            assert_error(http.post("/mcp", json=ping, headers=from_page), 403, code="origin_not_allowed")
        async with mcp_session(service, keyed) as session:
            assert (await session.call_tool("shout", {"text": "a"})).structured_content == {"result": {"said": "A!"}}
    finally:
        service.stop()


async def test_two_workers_serve_one_client_without_sessions(tmp_path: Path) -> None:
    """Stateless: no Mcp-Session-Id, so each request may reach either worker (as behind a load balancer)."""
    env = base_env(WRAPPERS_PACKAGE="typed_wrappers")
    service = ServiceProcess("mcp_workers", tmp_path, env, args=["--workers", "2"]).start()
    try:
        async with mcp_session(service) as session:
            for number in range(20):
                result = await session.call_tool("shout", {"text": f"n{number}"})
                assert result.structured_content == {"result": {"said": f"N{number}!"}}
        with httpx.Client(base_url=service.base_url, trust_env=False) as http:
            initialize = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
            response = http.post("/mcp", json=initialize, headers={"accept": "application/json, text/event-stream"})
        assert response.status_code == 200 and "mcp-session-id" not in response.headers
    finally:
        service.stop()


def test_a_haystack_agent_s_mcp_toolset_calls_the_service(tools_service: ServiceProcess) -> None:
    """`mcp-haystack`'s MCPToolset, as a Haystack Agent would use it: the tools load, and one runs."""
    from haystack_integrations.tools.mcp import MCPToolset, StreamableHttpServerInfo

    toolset = MCPToolset(StreamableHttpServerInfo(url=f"{tools_service.base_url}/mcp"), tool_names=["search_docs"])
    try:
        toolset.warm_up()
        (tool,) = list(toolset)
        assert tool.name == "search_docs" and tool.parameters["required"] == ["query"]
        result = tool.invoke(query="Which framework has Flask's API?", top_k=1)
    finally:
        toolset.close()
    assert "quart.md" in json.dumps(result)


async def test_the_openai_agents_sdk_mcp_client_calls_the_service(tools_service: ServiceProcess) -> None:
    """The OpenAI Agents SDK's Streamable HTTP client: what an agent built with it lists and calls."""
    from agents.mcp import MCPServerStreamableHttp

    async with MCPServerStreamableHttp(params={"url": f"{tools_service.base_url}/mcp"}) as server:
        names = {tool.name for tool in await server.list_tools()}
        result = await server.call_tool("shout", {"text": "agents"})
    assert {"search_docs", "shout"} <= names
    assert result.structured_content == {"result": {"said": "AGENTS!"}}


async def test_replicas_behind_nginx_serve_one_client_without_sessions(tmp_path: Path) -> None:
    """Two processes behind nginx's round robin, with no shared state: a client's calls land on either one."""
    env = base_env(WRAPPERS_PACKAGE="typed_wrappers")
    replicas = [ServiceProcess(f"mcp_replica_{n}", tmp_path / f"replica-{n}", env).start() for n in (1, 2)]
    nginx = Nginx(tmp_path / "nginx", [replica.port for replica in replicas]).start()
    try:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            streamable_http_client(f"{nginx.base_url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for number in range(6):
                result = await session.call_tool("shout", {"text": f"r{number}"})
                assert result.structured_content == {"result": {"said": f"R{number}!"}}
        assert all("POST /mcp" in replica.log_tail() for replica in replicas), "both replicas answered"
    finally:
        nginx.stop()
        for replica in replicas:
            replica.stop()

"""Remote MCP servers given to the model in a Responses request (`{"type": "mcp", ...}` tools), and approvals.

The client is the official SDK; the remote server is a separate process made with the `mcp` SDK
(`remote_mcp_server.py`) or the service's own `/mcp`; the LLM is the scripted upstream, through the passthrough
model `llm`. The service lists the server's tools, runs the LLM's calls of them as `mcp_call` items, and stops at
an `mcp_approval_request` where a call needs approval, resumed by the client's `mcp_approval_response`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from openai_schema import RESPONSE_EVENT_SCHEMAS, validate
from support import TESTS_DIR, ServiceProcess, base_env, check_event_order, free_port, stop_process, wait_until
from upstream import ScriptedUpstream

REMOTE = "remote"


@pytest.fixture(scope="module")
def remote_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The separate MCP server, on loopback; a fresh one per module, so its call log starts empty."""
    port = free_port()
    log = (tmp_path_factory.mktemp("remote_mcp") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(TESTS_DIR / "remote_mcp_server.py"), str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    log.close()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        assert wait_until(listening, timeout=30), "the remote MCP server did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def mcp_service(
    upstream: ScriptedUpstream, remote_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The examples, allowed to connect to the remote server and to their own `/mcp` (where `rag` is a tool)."""
    port = free_port()
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        MCP_SERVER_URLS=f"{remote_url},http://127.0.0.1:{port}/mcp",
        MCP_CHAT_TOOLS="rag",
        MCP_TIMEOUT_SECONDS="3",
    )
    service = ServiceProcess(name="mcp_service", workdir=tmp_path_factory.mktemp("mcp_service"), env=env, port=port)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def remote_tool(url: str, **settings: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": REMOTE, "server_url": url, **settings}


def call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """A tool call the scripted LLM makes."""
    return {"id": call_id, "name": name, "arguments": json.dumps(arguments)}


def calls_made(url: str) -> list[str]:
    """What the remote server's delete_file was called with, asked of the server itself."""

    async def ask() -> list[str]:
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("calls_made", {})
        return result.structured_content["result"]

    return asyncio.run(ask())


def dump(response: Any) -> dict[str, Any]:
    return response.model_dump(mode="json", exclude_unset=True)


def tool_messages(request: dict[str, Any]) -> list[str]:
    """The tool results the LLM was given in one of its requests."""
    return [message["content"] for message in request["messages"] if message["role"] == "tool"]


# --- what is refused ---


def test_a_server_url_outside_mcp_server_urls_is_a_400_naming_the_setting(
    mcp_service: ServiceProcess, remote_url: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        mcp_service.client().responses.create(
            model="llm", input="hi", tools=[remote_tool("http://127.0.0.1:1/elsewhere/mcp")]
        )
    error = refused.value.body
    assert error["param"] == "tools[0].server_url" and "MCP_SERVER_URLS" in error["message"]
    port = remote_url.split(":")[2].split("/")[0]
    for lookalike in (
        f"http://127.0.0.1.nip.io:{port}/mcp",
        f"{remote_url}-admin",
        f"http://user:pw@127.0.0.1:{port}/mcp",
    ):
        with pytest.raises(openai.BadRequestError):
            mcp_service.client().responses.create(model="llm", input="hi", tools=[remote_tool(lookalike)])


def test_a_tool_type_the_service_cannot_serve_is_a_400(mcp_service: ServiceProcess) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        mcp_service.client().responses.create(
            model="llm", input="hi", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}]
        )
    assert refused.value.body["param"] == "tools[0].type"
    assert refused.value.body["code"] == "unsupported_value"


# --- listing and calling ---


def test_the_llm_lists_and_calls_a_remote_tool(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__add", {"a": 2, "b": 3})])
    upstream.script(text="2 and 3 make 5.")
    tool = remote_tool(remote_url, allowed_tools=["add", "headers_seen"], require_approval="never")
    response = mcp_service.client().responses.create(model="llm", input="What is 2 + 3?", tools=[tool])

    assert response.status == "completed"
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    listing, tool_call, answer = response.output
    assert {listed.name for listed in listing.tools} == {"add", "headers_seen"}, "allowed_tools applied"
    assert (tool_call.name, tool_call.server_label, json.loads(tool_call.arguments)) == (
        "add",
        REMOTE,
        {"a": 2, "b": 3},
    )
    assert (tool_call.output, tool_call.error, tool_call.status) == ("5", None, "completed")
    assert answer.content[0].text == "2 and 3 make 5."
    offered = {tool["function"]["name"] for tool in upstream.requests[0]["tools"]}
    assert offered == {"remote__add", "remote__headers_seen"}
    assert tool_messages(upstream.requests[1]) == ["5"], "the LLM is told the result"
    assert response.tools[0].type == "mcp" and response.tools[0].headers is None
    validate(dump(response), "Response")


def test_the_same_streamed_every_event_valid(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__add", {"a": 40, "b": 2})])
    upstream.script(text="It is 42.")
    tool = remote_tool(remote_url, allowed_tools={"read_only": True}, require_approval="never")
    with mcp_service.client().responses.stream(model="llm", input="40 + 2?", tools=[tool]) as stream:
        events = [event.model_dump(mode="json", exclude_unset=True) for event in stream]
        final = stream.get_final_response()

    check_event_order(events)
    for event in events:
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])
    kinds = [event["type"] for event in events]
    for expected in (
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ):
        assert expected in kinds
    assert kinds.index("response.mcp_call_arguments.done") < kinds.index("response.mcp_call.completed")
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert [tool.name for tool in final.output[0].tools] == ["add"], "read_only: the annotated read-only tool only"
    assert final.output[1].output == "42"


def test_headers_reach_the_server_and_no_secret_of_the_service_does(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__headers_seen", {})])
    upstream.script(text="Done.")
    tool = remote_tool(remote_url, headers={"X-Api-Token": "t0ken"}, require_approval="never")
    response = mcp_service.client().responses.create(model="llm", input="headers?", tools=[tool])

    seen = json.loads(response.output[1].output)
    assert seen["x-api-token"] == "t0ken"
    assert "authorization" not in seen and "test-key" not in json.dumps(seen)

    # OpenAI's `authorization` field: an access token, sent as a bearer token, echoed nowhere.
    upstream.script(text="", tool_calls=[call("remote__headers_seen", {})])
    upstream.script(text="Done.")
    tool = remote_tool(remote_url, authorization="oauth-token", require_approval="never")
    response = mcp_service.client().responses.create(model="llm", input="headers?", tools=[tool])
    assert json.loads(response.output[1].output)["authorization"] == "Bearer oauth-token"
    assert "oauth-token" not in json.dumps(dump(response.tools[0]))


def test_a_failing_tool_and_an_unreachable_server_are_items_with_errors(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__fails", {})])
    upstream.script(text="The tool failed.")
    response = mcp_service.client().responses.create(
        model="llm", input="fail", tools=[remote_tool(remote_url, require_approval="never")]
    )
    failed = response.output[1]
    assert response.status == "completed" and failed.status == "failed"
    assert failed.error.type == "mcp_tool_execution_error" and failed.output is None
    assert tool_messages(upstream.requests[1]) == ["The call failed: Error executing tool fails"]
    validate(dump(response), "Response")

    # An allowed URL where nothing listens: the listing fails, the LLM answers without the tools.
    gone = f"{remote_url.rsplit('/', 1)[0]}/mcp/nothing-here"
    upstream.script(text="No tools today.")
    response = mcp_service.client().responses.create(
        model="llm", input="list", tools=[remote_tool(gone, require_approval="never")]
    )
    assert response.status == "completed"
    assert response.output[0].type == "mcp_list_tools" and response.output[0].error
    assert response.output[1].content[0].text == "No tools today."


def test_a_server_that_does_not_answer_in_time_is_an_error_item(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__slow", {"seconds": 30})])
    upstream.script(text="It timed out.")
    response = mcp_service.client().responses.create(
        model="llm", input="slow", tools=[remote_tool(remote_url, require_approval="never")]
    )
    late = response.output[1]
    assert (late.status, late.error.type, late.error.code) == ("failed", "http_error", 504)
    assert late.error.message == "The MCP server did not answer within 3 s."
    assert response.output_text == "It timed out."


def test_a_huge_output_is_cut(mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str) -> None:
    upstream.script(text="", tool_calls=[call("remote__huge", {})])
    upstream.script(text="Big.")
    response = mcp_service.client().responses.create(
        model="llm", input="big", tools=[remote_tool(remote_url, require_approval="never")]
    )
    output = response.output[1].output
    assert 64 * 1024 <= len(output) < 70 * 1024 and output.endswith("characters]")


def test_a_later_turn_reuses_the_listed_tools(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    client = mcp_service.client()
    tool = remote_tool(remote_url, require_approval="never")
    upstream.script(text="Hello.")
    first = client.responses.create(model="llm", input="hi", tools=[tool])
    upstream.script(text="", tool_calls=[call("remote__add", {"a": 1, "b": 1})])
    upstream.script(text="Two.")
    second = client.responses.create(model="llm", input="1+1?", tools=[tool], previous_response_id=first.id)
    assert [item.type for item in first.output] == ["mcp_list_tools", "message"]
    assert [item.type for item in second.output] == ["mcp_call", "message"], "listed once per response chain"
    assert second.output[0].output == "2"


def test_a_later_turn_without_the_tool_still_shows_the_llm_what_ran(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    client = mcp_service.client()
    upstream.script(text="", tool_calls=[call("remote__add", {"a": 2, "b": 2})])
    upstream.script(text="Four.")
    first = client.responses.create(
        model="llm", input="2+2?", tools=[remote_tool(remote_url, require_approval="never")]
    )
    upstream.script(text="Still four.")
    second = client.responses.create(model="llm", input="Sure?", previous_response_id=first.id)
    assert second.output_text == "Still four."
    messages = upstream.requests[-1]["messages"]
    assert [call["function"]["name"] for message in messages for call in message.get("tool_calls") or []] == [
        "remote__add"
    ]
    assert tool_messages(upstream.requests[-1]) == ["4"]


def test_the_services_own_mcp_as_a_remote_server(mcp_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The `rag` example's typed entry, a search tool at the service's own `/mcp`."""
    own = {"type": "mcp", "server_label": "docs", "server_url": f"{mcp_service.base_url}/mcp"}
    upstream.script(text="", tool_calls=[call("docs__rag", {"query": "How do clients upload files?", "top_k": 1})])
    upstream.script(text="Found it.")
    response = mcp_service.client().responses.create(
        model="llm", input="Streaming?", tools=[own | {"allowed_tools": ["rag"], "require_approval": "never"}]
    )
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert [tool.name for tool in response.output[0].tools] == ["rag"]
    passages = json.loads(response.output[1].output)
    assert [passage["title"] for passage in passages] == ["Files"], response.output[1]


# --- approvals ---


def ask_to_delete(
    service: ServiceProcess, upstream: ScriptedUpstream, url: str, path: str, model: str = "llm", **create: Any
) -> Any:
    """A first turn whose call needs approval: it ends with the approval request, the call not run."""
    upstream.script(text="", tool_calls=[call("remote__delete_file", {"path": path})])
    return service.client().responses.create(model=model, input=f"Delete {path}", tools=[remote_tool(url)], **create)


def approval(request_id: str, approve: bool, reason: str | None = None) -> dict[str, Any]:
    answer = {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve}
    return answer | ({"reason": reason} if reason else {})


def test_approval_always_stops_then_an_approval_runs_the_call_once(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    client = mcp_service.client()
    first = ask_to_delete(mcp_service, upstream, remote_url, "/tmp/a.txt")
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.name, json.loads(request.arguments)) == ("delete_file", {"path": "/tmp/a.txt"})
    assert "/tmp/a.txt" not in calls_made(remote_url), "nothing runs before approval"
    validate(dump(first), "Response")

    upstream.script(text="Deleted.")
    second = client.responses.create(
        model="llm", tools=[remote_tool(remote_url)], previous_response_id=first.id, input=[approval(request.id, True)]
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].approval_request_id == request.id and second.output[0].output == "deleted /tmp/a.txt"
    assert calls_made(remote_url).count("/tmp/a.txt") == 1

    upstream.script(text="Anything else?")
    third = client.responses.create(
        model="llm", tools=[remote_tool(remote_url)], previous_response_id=second.id, input="thanks"
    )
    assert [item.type for item in third.output] == ["message"]
    with pytest.raises(openai.BadRequestError) as stale:
        client.responses.create(
            model="llm",
            tools=[remote_tool(remote_url)],
            previous_response_id=third.id,
            input=[approval(request.id, True)],
        )
    assert "answered already" in stale.value.body["message"]
    with pytest.raises(openai.BadRequestError) as branch:  # the same approval again, from the first response
        client.responses.create(
            model="llm",
            tools=[remote_tool(remote_url)],
            previous_response_id=first.id,
            input=[approval(request.id, True)],
        )
    assert "ran already" in branch.value.body["message"]
    assert calls_made(remote_url).count("/tmp/a.txt") == 1, "approved once, run once"


@pytest.mark.parametrize("model", ["llm", "agent"])
def test_a_denied_call_is_told_to_the_model(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str, model: str
) -> None:
    """The `llm` passthrough, and the `agent` example, whose ApprovalHook holds its call of the remote tool."""
    path = f"/tmp/denied-by-{model}.txt"
    first = ask_to_delete(mcp_service, upstream, remote_url, path, model=model)
    upstream.script(text="I did not delete it.")
    second = mcp_service.client().responses.create(
        model=model,
        tools=[remote_tool(remote_url)],
        previous_response_id=first.id,
        input=[approval(first.output[1].id, False, "keep it")],
    )
    assert [item.type for item in second.output] == ["message"]
    assert tool_messages(upstream.requests[-1]) == ["The user denied this call. Their reason: keep it"]
    assert path not in calls_made(remote_url)


def test_a_stateless_client_sends_the_whole_input_back(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    first = ask_to_delete(mcp_service, upstream, remote_url, "/tmp/c.txt", store=False)
    history = [{"role": "user", "content": "Delete /tmp/c.txt"}, *[dump(item) for item in first.output]]
    upstream.script(text="Deleted it.")
    second = mcp_service.client().responses.create(
        model="llm", tools=[remote_tool(remote_url)], store=False, input=[*history, approval(first.output[1].id, True)]
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"], "the stored list is reused"
    assert calls_made(remote_url).count("/tmp/c.txt") == 1


def test_per_tool_approval(mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str) -> None:
    upstream.script(
        text="",
        tool_calls=[call("remote__add", {"a": 1, "b": 2}), call("remote__delete_file", {"path": "/tmp/d"}, "call_2")],
    )
    tool = remote_tool(remote_url, require_approval={"never": {"tool_names": ["add"]}})
    response = mcp_service.client().responses.create(model="llm", input="both", tools=[tool])
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    assert response.output[1].output == "3" and response.output[2].name == "delete_file"


def test_a_forged_approval_request_id_is_a_400(mcp_service: ServiceProcess, remote_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as forged:
        mcp_service.client().responses.create(
            model="llm", tools=[remote_tool(remote_url)], input=[approval("mcpr_forged", True)]
        )
    assert forged.value.body["param"] == "input[0].approval_request_id"
    assert calls_made(remote_url).count("/tmp/forged") == 0


def test_approval_in_a_conversation(mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str) -> None:
    client = mcp_service.client()
    conversation = client.conversations.create()
    first = ask_to_delete(mcp_service, upstream, remote_url, "/tmp/e.txt", conversation=conversation.id)
    upstream.script(text="Gone.")
    second = client.responses.create(
        model="llm",
        tools=[remote_tool(remote_url)],
        conversation=conversation.id,
        input=[approval(first.output[1].id, True)],
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert calls_made(remote_url).count("/tmp/e.txt") == 1
    kept = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kept == [
        "message",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "message",
    ]


def test_a_background_response_waits_for_approval_and_is_resumed(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    client = mcp_service.client()

    def finished(response_id: str) -> Any:
        ended = ("completed", "failed", "incomplete", "cancelled")
        return wait_until(lambda: (found := client.responses.retrieve(response_id)).status in ended and found)

    first = finished(ask_to_delete(mcp_service, upstream, remote_url, "/tmp/f.txt", background=True).id)
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    upstream.script(text="Deleted in the background.")
    second = client.responses.create(
        model="llm",
        tools=[remote_tool(remote_url)],
        previous_response_id=first.id,
        input=[approval(first.output[1].id, True)],
        background=True,
    )
    second = finished(second.id)
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert calls_made(remote_url).count("/tmp/f.txt") == 1


async def test_the_openai_agents_sdk_approves_a_hosted_mcp_call(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    """The OpenAI Agents SDK's HostedMCPTool, with an approval callback: the SDK answers the approval request
    itself in its next request, and the agent ends with the answer."""
    from agents import Agent, HostedMCPTool, OpenAIResponsesModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    asked: list[str] = []

    def approve(request: Any) -> dict[str, Any]:
        asked.append(request.data.name)
        return {"approve": True}

    client = AsyncOpenAI(base_url=f"{mcp_service.base_url}/v1", api_key="unused", max_retries=0)
    tool = HostedMCPTool(tool_config=remote_tool(remote_url), on_approval_request=approve)  # type: ignore[arg-type]
    agent = Agent(name="files", model=OpenAIResponsesModel(model="llm", openai_client=client), tools=[tool])
    upstream.script(text="", tool_calls=[call("remote__delete_file", {"path": "/tmp/g.txt"})])
    upstream.script(text="The agent deleted it.")
    result = await Runner.run(agent, "Delete /tmp/g.txt")

    assert result.final_output == "The agent deleted it."
    assert asked == ["delete_file"]
    assert (await asyncio.to_thread(calls_made, remote_url)).count("/tmp/g.txt") == 1


# --- an Agent wrapper: the `agent` example runs the remote tools in its own loop ---


def test_the_agent_example_calls_a_remote_tool_in_its_own_loop(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="", tool_calls=[call("remote__add", {"a": 2, "b": 3})])
    upstream.script(text="2 and 3 make 5.")
    tool = remote_tool(remote_url, allowed_tools=["add"], require_approval="never")
    response = mcp_service.client().responses.create(model="agent", input="What is 2 + 3?", tools=[tool])

    assert response.status == "completed"
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    tool_call = response.output[1]
    assert (tool_call.server_label, tool_call.name, json.loads(tool_call.arguments)) == (
        REMOTE,
        "add",
        {"a": 2, "b": 3},
    )
    assert (tool_call.output, tool_call.error, tool_call.status) == ("5", None, "completed")
    assert response.output_text == "2 and 3 make 5."
    offered = {tool["function"]["name"] for tool in upstream.requests[0]["tools"]}
    assert offered == {"get_current_time", "cancel_meeting", "remote__add"}, "its own tools and the server's"
    assert tool_messages(upstream.requests[1]) == ["5"], "the agent is told the result"
    validate(dump(response), "Response")


def test_the_agent_example_streams_its_remote_call_in_order_every_event_valid(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    upstream.script(text="Let me add them.", tool_calls=[call("remote__add", {"a": 40, "b": 2})])
    upstream.script(text="It is 42.")
    tool = remote_tool(remote_url, require_approval="never")
    with mcp_service.client().responses.stream(model="agent", input="40 + 2?", tools=[tool]) as stream:
        events = [event.model_dump(mode="json", exclude_unset=True) for event in stream]
        final = stream.get_final_response()

    check_event_order(events)
    for event in events:
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])
    kinds = [event["type"] for event in events]
    for expected in (
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
    ):
        assert expected in kinds
    call_done = kinds.index("response.mcp_call.completed")

    def text(part: list[dict[str, Any]]) -> str:
        return "".join(event["delta"] for event in part if event["type"] == "response.output_text.delta")

    assert (text(events[:call_done]), text(events[call_done:])) == ("Let me add them.", "It is 42."), "in order"
    assert [item.type for item in final.output] == ["mcp_list_tools", "message", "mcp_call", "message"]
    assert final.output[2].output == "42" and final.output[3].content[0].text == "It is 42."


def test_the_agent_example_waits_for_approval_of_a_remote_call_then_runs_it_once(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    client = mcp_service.client()
    first = ask_to_delete(mcp_service, upstream, remote_url, "/tmp/agent.txt", model="agent")
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.server_label, request.name, json.loads(request.arguments)) == (
        REMOTE,
        "delete_file",
        {"path": "/tmp/agent.txt"},
    )
    assert "/tmp/agent.txt" not in calls_made(remote_url), "nothing runs before approval"
    validate(dump(first), "Response")

    upstream.script(text="Deleted.")
    second = client.responses.create(
        model="agent",
        tools=[remote_tool(remote_url)],
        previous_response_id=first.id,
        input=[approval(request.id, True)],
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].approval_request_id == request.id and second.output[0].output == "deleted /tmp/agent.txt"
    assert tool_messages(upstream.requests[-1]) == ["deleted /tmp/agent.txt"], "the agent is told the result"
    assert second.output_text == "Deleted."
    assert calls_made(remote_url).count("/tmp/agent.txt") == 1, "approved once, run once"


def test_the_agent_examples_own_approval_runs_in_a_request_that_also_gives_a_server(
    mcp_service: ServiceProcess, upstream: ScriptedUpstream, remote_url: str
) -> None:
    """Its own held tool (`server_label` the model) and a remote server in one chain: the approval runs its tool."""
    client = mcp_service.client()
    tool = remote_tool(remote_url, require_approval="never")
    upstream.script(text="", tool_calls=[call("cancel_meeting", {"title": "Standup"})])
    first = client.responses.create(model="agent", input="Cancel the standup", tools=[tool])
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.server_label, request.name) == ("agent", "cancel_meeting")

    upstream.script(text="Cancelled.")
    second = client.responses.create(
        model="agent", tools=[tool], previous_response_id=first.id, input=[approval(request.id, True)]
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].output == "The meeting 'Standup' is cancelled."
    assert tool_messages(upstream.requests[-1]) == ["The meeting 'Standup' is cancelled."]

"""An Agent wrapper's own tools behind a person's approval (`ApprovalHook`), through the Responses API's approval
items: test_wrappers/agent_approvals.py, its LLM the scripted upstream, the official SDK as the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai_schema import RESPONSE_EVENT_SCHEMAS, validate
from support import ServiceProcess, check_event_order, stream_events, stream_raw, user
from upstream import ScriptedUpstream

MODEL = "agent_approvals"
OPEN_WEBUI = {"X-OpenWebUI-Client": "open-webui"}  # the header docs/openwebui.md has its connection send
NOT_ASKED = "This tool needs a person's approval, which this client cannot give: the call was not run."


def deletions(state_dir: Path, name: str) -> int:
    """How many times the wrapper's delete_note ran for `name`."""
    path = state_dir / f"delete-{name}.count"
    return int(path.read_text()) if path.exists() else 0


def delete_call(name: str, call_id: str = "call_del") -> dict[str, Any]:
    return {"id": call_id, "name": "delete_note", "arguments": json.dumps({"name": name})}


def answer(request_id: str, approve: bool) -> list[dict[str, Any]]:
    return [{"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve}]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [message["content"] for message in request["messages"] if message["role"] == "tool"]


def test_a_held_call_waits_for_approval_then_runs_once(
    test_service: ServiceProcess, upstream: ScriptedUpstream, wrapper_state_dir: Path
) -> None:
    client = test_service.client()
    upstream.script(text="", tool_calls=[delete_call("groceries")])
    first = client.responses.create(model=MODEL, input="Delete my groceries note.")
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["mcp_approval_request"]
    request = first.output[0]
    assert (request.server_label, request.name, json.loads(request.arguments)) == (
        MODEL,
        "delete_note",
        {"name": "groceries"},
    )
    assert deletions(wrapper_state_dir, "groceries") == 0 and len(upstream.requests) == 1

    upstream.script(text="Deleted it.")
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input=answer(request.id, True))
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    call = second.output[0]
    assert (call.output, call.approval_request_id, call.status) == ("deleted groceries", request.id, "completed")
    assert second.output_text == "Deleted it."
    assert tool_results(upstream.requests[-1]) == ["deleted groceries"], "the Agent goes on with the result"
    assert deletions(wrapper_state_dir, "groceries") == 1
    validate(second.model_dump(mode="json", exclude_unset=True), "Response")


def test_a_denied_call_is_told_to_the_agent(
    test_service: ServiceProcess, upstream: ScriptedUpstream, wrapper_state_dir: Path
) -> None:
    client = test_service.client()
    upstream.script(text="", tool_calls=[delete_call("diary")])
    first = client.responses.create(model=MODEL, input="Delete my diary.")
    upstream.script(text="I left it.")
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, input=answer(first.output[0].id, False)
    )
    assert [item.type for item in second.output] == ["message"]
    assert tool_results(upstream.requests[-1]) == ["The user denied this call."]
    assert deletions(wrapper_state_dir, "diary") == 0


def test_the_calls_that_need_no_approval_run_and_the_run_stops(
    test_service: ServiceProcess, upstream: ScriptedUpstream, wrapper_state_dir: Path
) -> None:
    counting = {"id": "call_count", "name": "count_notes", "arguments": "{}"}
    upstream.script(text="Let me see.", tool_calls=[counting, delete_call("old")])
    events = stream_events(test_service, {"model": MODEL, "input": "Count my notes and delete the old one."})
    check_event_order(events)
    for event in events:
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "mcp_approval_request"]
    assert len(upstream.requests) == 1, "no LLM call after a held call"
    assert deletions(wrapper_state_dir, "old") == 0


def test_chat_completions_cannot_ask_so_the_agent_is_told(
    test_service: ServiceProcess, upstream: ScriptedUpstream, wrapper_state_dir: Path
) -> None:
    upstream.script(text="", tool_calls=[delete_call("taxes")])
    upstream.script(text="I may not delete it from here.")
    completion = test_service.client().chat.completions.create(model=MODEL, messages=user("Delete my taxes note."))
    assert completion.choices[0].message.content == "I may not delete it from here."
    assert tool_results(upstream.requests[-1]) == [NOT_ASKED]
    assert deletions(wrapper_state_dir, "taxes") == 0


# --- the agent example: `cancel_meeting` waits for approval ---

CANCEL = {"id": "call_cancel", "name": "cancel_meeting", "arguments": json.dumps({"title": "Standup"})}


def test_the_agent_examples_tool_waits_for_approval(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = service.client()
    upstream.script(text="", tool_calls=[CANCEL])
    first = client.responses.create(model="agent", input="Cancel the standup.")
    assert [(item.type, item.server_label, item.name) for item in first.output] == [
        ("mcp_approval_request", "agent", "cancel_meeting")
    ]
    upstream.script(text="The standup is cancelled.")
    second = client.responses.create(
        model="agent", previous_response_id=first.id, input=answer(first.output[0].id, True)
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].output == "The meeting 'Standup' is cancelled."
    assert tool_results(upstream.requests[-1]) == ["The meeting 'Standup' is cancelled."]


def test_open_webui_users_see_the_agent_say_it_could_not(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open WebUI speaks Chat Completions, where nobody can approve: the agent's stand-in tool answers that the call
    was not run, Open WebUI shows that as the tool's result, and the agent says so."""
    upstream.script(text="", tool_calls=[CANCEL])
    upstream.script(text="I need your approval to cancel it, which I cannot ask for here.")
    body = {"model": "agent", "messages": user("Cancel the standup."), "stream": True}
    with service.http() as http:
        http.headers.update(OPEN_WEBUI)
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    content = "".join(choice["delta"].get("content") or "" for chunk in sse.chunks() for choice in chunk["choices"])
    assert content.endswith("which I cannot ask for here."), content
    assert "cannot give: the call was not run." in content, "the tool's block holds the stand-in's answer"
    assert tool_results(upstream.requests[-1]) == [NOT_ASKED]
    statuses = [chunk["event"]["data"] for chunk in sse.chunks() if chunk.get("event", {}).get("type") == "status"]
    assert [status["done"] for status in statuses] == [False, True], "the tool's status ends"

"""What the service sends validates against OpenAI's own published schemas (OPENAI_OPENAPI_SPEC), and every
Responses object and event also against the Open Responses specification (`openresponses-types`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_schema import RESPONSE_EVENT_SCHEMAS, require_spec, validate
from openresponses_schema import validate_event, validate_response
from support import ServiceProcess, stream_events, stream_raw, user
from upstream import ScriptedUpstream

pytestmark = pytest.mark.usefixtures("spec")

EXAMPLE_MODELS = ["chat", "chat_stream", "agent", "files_qa", "rag", "llm"]


@pytest.fixture(scope="module")
def spec() -> None:
    """Skip the whole module, with the reason, when the spec is not configured."""
    require_spec()


@pytest.mark.parametrize("model", EXAMPLE_MODELS)
def test_example_models(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Non-stream body and every streamed chunk (usage chunk included) of each example model."""
    upstream.script(text="Schema check, one two three.", reasoning="thinking first", usage=(4, 6))
    upstream.script(text="Schema check, one two three.", reasoning="thinking first", usage=(4, 6))
    with service.http() as http:
        response = http.post("/v1/chat/completions", json={"model": model, "messages": user("hi")})
        assert response.status_code == 200
        validate(response.json(), "CreateChatCompletionResponse")
        body = {"model": model, "messages": user("hi"), "stream": True, "stream_options": {"include_usage": True}}
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    chunks = sse.chunks()
    assert chunks
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")


@pytest.mark.parametrize("model", ["plain_sync", "sync_gen", "async_gen", "chunks", "events_tool_calls"])
def test_edge_case_wrappers(test_service: ServiceProcess, model: str) -> None:
    """Tool calls, reasoning, keep-alive streams: still exactly OpenAI's shapes."""
    with test_service.http() as http:
        response = http.post("/v1/chat/completions", json={"model": model, "messages": user("hi")})
        assert response.status_code == 200
        validate(response.json(), "CreateChatCompletionResponse")
        for options in (None, {"include_usage": True}):
            body = {"model": model, "messages": user("hi"), "stream": True}
            if options:
                body["stream_options"] = options
            _, sse = stream_raw(http, "/v1/chat/completions", body)
            for chunk in sse.chunks():
                validate(chunk, "CreateChatCompletionStreamResponse")


def check_response_and_events(service: ServiceProcess, body: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed response and every streamed event against both schemas; returns the response."""
    with service.http() as http:
        reply = http.post("/v1/responses", json=body)
    assert reply.status_code == 200, reply.text
    validate_response(reply.json())
    validate(reply.json(), "Response")
    events = stream_events(service, body)
    assert events
    for event in events:
        validate_event(event)
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])
    return reply.json()


@pytest.mark.parametrize("model", EXAMPLE_MODELS)
def test_example_models_on_the_responses_api(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """Every example model serves the Responses API, and its objects and events match both schemas."""
    upstream.set_default(text="Schema check, one two three.", reasoning="thinking first", usage=(4, 6))
    check_response_and_events(service, {"model": model, "input": "hi"})
    # What the request sets is echoed in the spec's types, and what it leaves out has the spec's defaults.
    settings = {"temperature": 0.5, "top_p": 0.9, "max_output_tokens": 50, "metadata": {"tenant": "a"}}
    settings |= {"instructions": "Be brief.", "store": False, "user": "u-1", "safety_identifier": "s-1"}
    response = check_response_and_events(service, {"model": model, "input": "hi", **settings})
    with service.http() as http:
        stored = http.get(f"/v1/responses/{check_response_and_events(service, {'model': model, 'input': 'hi'})['id']}")
    assert stored.status_code == 200, stored.text
    validate_response(stored.json())
    validate(stored.json(), "Response")
    assert (response["temperature"], response["top_p"], response["max_output_tokens"]) == (0.5, 0.9, 50)
    assert (response["metadata"], response["safety_identifier"], response["store"]) == ({"tenant": "a"}, "s-1", False)


def test_client_tools_and_structured_output_on_the_responses_api(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """A function_call item, the request's tools echoed with the spec's defaults, a json_schema text format."""
    upstream.set_default(text="", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'}])
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    text_format = {"type": "json_schema", "name": "answer", "schema": {"type": "object", "properties": {}}}
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]}
    body = {"model": "llm", "input": "Weather?", "tools": [tool], "tool_choice": {**allowed, "extra": "not echoed"}}
    body["text"] = {"format": text_format}
    response = check_response_and_events(service, body)
    assert [item["type"] for item in response["output"]] == ["function_call"]
    assert response["tools"][0]["name"] == "get_weather"
    assert response["tool_choice"] == allowed, "rebuilt from its checked parts"


def test_namespace_tools_reach_the_llm_flat_and_come_back_with_their_namespace(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Codex sends its MCP servers' tools as `namespace` tools: the LLM, which knows no namespaces, is offered
    `crm__lookup`; its call comes back as a function_call with `namespace` and `name` apart, and is offered again
    flat in the next turn's history."""
    upstream.set_default(text="", tool_calls=[{"id": "call_1", "name": "crm__lookup", "arguments": '{"id":"7"}'}])
    lookup = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    namespace = {"type": "namespace", "name": "crm", "description": "The CRM", "tools": [lookup]}
    response = check_response_and_events(service, {"model": "llm", "input": "Who is 7?", "tools": [namespace]})
    assert [tool["function"]["name"] for tool in upstream.requests[-1]["tools"]] == ["crm__lookup"]
    (call,) = response["output"]
    assert (call["type"], call["namespace"], call["name"]) == ("function_call", "crm", "lookup")
    assert response["tools"] == [], "the Open Responses schema has no place for a namespace tool in the echo"
    upstream.set_default(text="Customer 7 is Ada.")
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "Ada"}
    follow_up = {"model": "llm", "input": ["Who is 7?", call, output], "tools": [namespace]}
    follow_up["input"][0] = {"role": "user", "content": "Who is 7?"}
    assert check_response_and_events(service, follow_up)["output"][0]["content"][0]["text"] == "Customer 7 is Ada."
    history = upstream.requests[-1]["messages"]
    assert history[-2]["tool_calls"][0]["function"]["name"] == "crm__lookup" and history[-1]["content"] == "Ada"
    with service.http() as http:
        too_long = {**namespace, "tools": [{**lookup, "name": "x" * 60}]}
        refused = http.post("/v1/responses", json={"model": "llm", "input": "hi", "tools": [too_long]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools[0].tools[0].name"


def test_an_incomplete_response(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Cut at the length limit: status incomplete, the reason given, no completed_at."""
    upstream.set_default(text="Cut short", finish_reason="length", usage=(2, 2))
    response = check_response_and_events(service, {"model": "llm", "input": "Go on", "max_output_tokens": 2})
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert response["completed_at"] is None


@pytest.mark.parametrize("model", ["responses_events", "responses_failing", "responses_only"])
def test_edge_case_wrappers_on_the_responses_api(test_service: ServiceProcess, model: str) -> None:
    """Reasoning, tool calls, keep-alive streams and failures mid-stream: still both schemas' shapes."""
    events = stream_events(test_service, {"model": model, "input": "midway"})
    assert events
    for event in events:
        validate_event(event)
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])


def test_error_envelopes(test_service: ServiceProcess) -> None:
    """Error bodies, before and inside a stream, match ErrorResponse."""
    with test_service.http() as http:
        bodies = [
            http.post("/v1/chat/completions", content=b"{", headers={"Content-Type": "application/json"}).json(),
            http.post("/v1/chat/completions", json={"model": "nope", "messages": user("x")}).json(),
            http.post("/v1/chat/completions", json={"model": "fails_before", "messages": user("x")}).json(),
            http.get("/v1/models/nope").json(),
            http.get("/nowhere").json(),
        ]
        _, sse = stream_raw(
            http, "/v1/chat/completions", {"model": "fails_midstream", "messages": user("x"), "stream": True}
        )
    bodies += [event for event in sse.json_events() if "error" in event]
    assert len(bodies) == 6, json.dumps(bodies)
    for body in bodies:
        validate(body, "ErrorResponse")


def test_models(test_service: ServiceProcess) -> None:
    """The model list and one model."""
    with test_service.http() as http:
        validate(http.get("/v1/models").json(), "ListModelsResponse")
        validate(http.get("/v1/models/plain_sync").json(), "Model")


# Every item type a conversation keeps, as a client may send it (shorthand included).
CONVERSATION_ITEMS = [
    {"role": "user", "content": "A string."},
    {"role": "assistant", "content": "An answer."},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Parts."}]},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_image", "image_url": "https://example.com/cat.png"},
            # inline: the response in the conversation reads its files, and a file_id would have to be uploaded
            {"type": "input_file", "filename": "notes.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
        ],
    },
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi", "annotations": []}]},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking."}]},
    {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
    {"type": "custom_tool_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "done"}]},
]


def test_conversations(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The Conversations API's objects, each item type a conversation keeps, and a response in a conversation."""
    with service.http() as http:
        created = http.post("/v1/conversations", json={"metadata": {"a": "b"}, "items": CONVERSATION_ITEMS[:2]})
        validate(created.json(), "ConversationResource")
        conversation_id = created.json()["id"]
        path = f"/v1/conversations/{conversation_id}"
        added = http.post(f"{path}/items", json={"items": CONVERSATION_ITEMS[2:]}).json()
        validate(added, "ConversationItemList")
        upstream.script(text="In a conversation.")
        body = {"model": "chat_stream", "input": "Hi", "conversation": conversation_id}
        response = http.post("/v1/responses", json=body)
        validate_response(response.json())
        validate(response.json(), "Response")
        listed = http.get(f"{path}/items", params={"limit": 100, "order": "asc"}).json()
        validate(listed, "ConversationItemList")
        assert len(listed["data"]) == len(CONVERSATION_ITEMS) + 2
        for item in listed["data"]:
            validate(item, "ConversationItem")
        validate(http.get(f"{path}/items/{listed['first_id']}").json(), "ConversationItem")
        validate(http.delete(f"{path}/items/{listed['first_id']}").json(), "ConversationResource")
        validate(http.post(path, json={"metadata": {"c": "d"}}).json(), "ConversationResource")
        validate(http.get(path).json(), "ConversationResource")
        validate(http.delete(path).json(), "DeletedConversationResource")
        validate(http.get(path).json(), "ErrorResponse")

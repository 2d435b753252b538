"""The Responses API: the official SDK end to end, the event order clients enforce, and OpenAI's schemas."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from openai_schema import RESPONSE_EVENT_SCHEMAS, spec_path, validate
from openresponses_schema import validate_event, validate_response
from support import ServiceProcess, assert_error, check_event_order, stream_events
from test_wrappers import responses_events, responses_failing
from upstream import ScriptedUpstream


def check_schemas(events: list[dict[str, Any]]) -> None:
    """Every event against Open Responses, and against OpenAI's spec when it is configured."""
    for event in events:
        validate_event(event)
        if spec_path() is not None:  # the schema test below reports the skip
            validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])


@pytest.mark.parametrize("model", ["chat_stream", "agent"])
def test_sdk_create_non_stream(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    upstream.script(text="Hello from the pipeline.", usage=(12, 5))
    response = service.client().responses.create(model=model, input="Hi there")
    assert response.status == "completed"
    assert response.output_text == "Hello from the pipeline."
    assert response.id.startswith("resp_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 5, 17)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    user_messages = [m for m in upstream.requests[0]["messages"] if m["role"] == "user"]
    assert user_messages[-1]["content"] == "Hi there"


@pytest.mark.parametrize("model", ["chat_stream", "agent"])
def test_sdk_stream_helper_final_response(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    """`responses.stream(...).get_final_response()` raises on any out-of-order event."""
    upstream.script(text="Streamed answer, token by token.", usage=(8, 6))
    with service.client().responses.stream(model=model, input="Stream please") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Streamed answer, token by token."
    assert final.output_text == "Streamed answer, token by token."
    assert final.status == "completed"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (8, 6)


def test_sdk_create_stream_iterates_events(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="One two three.")
    events = list(service.client().responses.create(model="chat_stream", input="Count", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "One two three."


@pytest.mark.parametrize("model", ["chat_stream", "agent"])
def test_raw_event_order_and_schemas(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    upstream.script(text="Checked answer.", reasoning="Thinking first.", usage=(3, 4))
    events = stream_events(service, {"model": model, "input": "Check"})
    check_event_order(events)
    check_schemas(events)


def test_reasoning_becomes_a_reasoning_item_before_the_message(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script(reasoning="The user wants a greeting.", text="Hello!")
    with service.client().responses.stream(model="chat_stream", input="Hi") as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "The user wants a greeting."
    assert final.output_text == "Hello!"


def test_agent_tool_calls_never_reach_the_client(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Codex runs every function_call it receives: the agent's own must stay inside, or it loops."""
    upstream.script(text="", tool_calls=[{"id": "call_t", "name": "get_current_time", "arguments": "{}"}])
    upstream.script(text="It is noon.")
    events = stream_events(service, {"model": "agent", "input": "What time is it?"})
    check_event_order(events)
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message"]
    assert not any("function_call" in event["type"] for event in events)
    assert final["output"][0]["content"][0]["text"] == "It is noon."
    tool_messages = [m for m in upstream.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_t"]


def test_client_tool_call_is_a_function_call_item(test_service: ServiceProcess) -> None:
    """A wrapper may emit a function_call on purpose, for a tool the client declared."""
    events = stream_events(test_service, {"model": "responses_events", "input": "Use my tool"})
    check_event_order(events)
    check_schemas(events)
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    call = final["output"][2]
    assert call["call_id"] == responses_events.CALL["id"]
    assert call["name"] == responses_events.CALL["name"]
    assert json.loads(call["arguments"]) == {"query": "weather"}
    assert final["usage"]["input_tokens"] == responses_events.USAGE[0]

    response = test_service.client().responses.create(model="responses_events", input="Use my tool")
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name) for c in calls] == [(responses_events.CALL["id"], responses_events.CALL["name"])]
    assert response.output_text == "".join(responses_events.TEXT)


def test_multi_turn_with_function_call_items(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """A history with function_call / function_call_output pairs reaches the LLM as tool messages."""
    upstream.script(text="It is sunny in Paris.")
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "function_call", "call_id": "call_w", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_w", "output": "sunny, 24 C"},
        {"role": "user", "content": "Summarise."},
    ]
    response = service.client().responses.create(model="chat_stream", input=history, instructions="Be terse.")
    assert response.output_text == "It is sunny in Paris."
    sent = upstream.requests[0]["messages"]
    assert any(m["role"] == "system" and m["content"] == "Be terse." for m in sent), sent
    calls = [c for m in sent if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("call_w", "get_weather", {"city": "Paris"})
    ]
    tool = [m for m in sent if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool] == [("call_w", "sunny, 24 C")]
    assert sent[-1] == {"role": "user", "content": "Summarise."}


def test_previous_response_id_continues_the_conversation(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = service.client()
    upstream.script(text="My name is Hay.")
    first = client.responses.create(model="chat_stream", input="What is your name?")
    upstream.script(text="I said Hay.")
    second = client.responses.create(model="chat_stream", input="Say it again", previous_response_id=first.id)
    assert second.output_text == "I said Hay."
    assert second.previous_response_id == first.id
    sent = [(m["role"], m["content"]) for m in upstream.requests[1]["messages"] if m["role"] != "system"]
    assert sent == [("user", "What is your name?"), ("assistant", "My name is Hay."), ("user", "Say it again")]

    assert client.responses.retrieve(first.id).output_text == "My name is Hay."
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="chat_stream", input="Again", previous_response_id=first.id)
    assert raised.value.code == "previous_response_not_found"


def test_store_false_is_honoured(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Codex sends `store: false`: such a response is never kept, so it cannot be continued."""
    client = service.client()
    response = client.responses.create(model="chat_stream", input="Forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with service.http() as http:
        reply = http.post(
            "/v1/responses", json={"model": "chat_stream", "input": "x", "previous_response_id": response.id}
        )
    assert_error(reply, 400, param="previous_response_id", code="previous_response_not_found")


def test_input_forms(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """A string, a list of shorthand messages, and no input at all (only instructions) are all accepted."""
    client = service.client()
    assert client.responses.create(model="chat_stream", input=[{"role": "user", "content": "Echo me"}]).output_text
    upstream.script(text="From instructions alone.")
    with service.http() as http:
        reply = http.post("/responses", json={"model": "chat_stream", "instructions": "Introduce yourself."})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"][0]["content"][0]["text"] == "From instructions alone."
    assert [m["role"] for m in upstream.requests[-1]["messages"]] == ["system", "system"]


def test_failure_mid_stream_is_response_failed(test_service: ServiceProcess) -> None:
    events = stream_events(test_service, {"model": "responses_failing", "input": "midway"})
    check_event_order(events)
    check_schemas(events)
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert "secret" not in json.dumps(events)
    assert any(e.get("delta") == responses_failing.FIRST for e in events)


def test_failure_before_output_is_a_json_error(test_service: ServiceProcess) -> None:
    with test_service.http() as http:
        for stream in (True, False):
            body = {"model": "responses_failing", "input": "before", "stream": stream}
            reply = http.post("/v1/responses", json=body)
            assert_error(reply, 500, err_type="server_error")
            assert reply.headers["x-should-retry"] == "false"
            assert "secret" not in reply.text
        reply = http.post("/v1/responses", json={"model": "responses_failing", "input": "midway"})
        assert_error(reply, 500)
        assert "secret" not in reply.text


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"input": "x"}, 400, "model", None),
        ({"model": "chat_stream", "input": 42}, 400, "input", None),
        ({"model": "chat_stream", "input": ["not an item"]}, 400, "input[0]", None),
        ({"model": "chat_stream", "input": "x", "stream": "yes"}, 400, "stream", None),
        ({"model": "no_such_model", "input": "x"}, 404, "model", "model_not_found"),
        ({"model": "chat_stream", "input": "x", "background": "yes"}, 400, "background", None),
        ({"model": "chat_stream", "input": "x", "background": True, "store": False}, 400, "store", None),
        ({"model": "chat_stream", "input": "x", "conversation": "conv_1"}, 404, "conversation", None),
        ({"model": "chat_stream", "input": "x", "tools": [{"type": "function"}]}, 400, "tools[0].name", None),
        ({"model": "chat_stream", "input": "x", "tool_choice": {"type": "web_search"}}, 400, "tool_choice", None),
        ({"model": "chat_stream", "input": "x", "text": {"format": {"type": "xml"}}}, 400, "text.format", None),
        ({"model": "chat_stream", "input": "x", "reasoning": {"effort": "max"}}, 400, "reasoning.effort", None),
    ],
)
def test_bad_requests(service: ServiceProcess, body: dict[str, Any], status: int, param: str, code: str | None) -> None:
    with service.http() as http:
        reply = http.post("/v1/responses", json=body)
    assert_error(reply, status, param=param, code=code)


def test_unknown_stored_response(service: ServiceProcess) -> None:
    with service.http() as http:
        assert_error(http.get("/v1/responses/resp_missing"), 404, param="response_id")
        assert_error(http.delete("/v1/responses/resp_missing"), 404, param="response_id")


def test_compaction_has_its_own_route(service: ServiceProcess) -> None:
    """`/v1/responses/compact` is served (test_compaction.py), not taken for a stored response's id by the routes of
    `/v1/responses/<id>`: a body without `model` is its 400 (not the 405 of a POST to a stored response's id)."""
    with service.http() as http:
        assert_error(http.post("/v1/responses/compact", json={"input": "A long conversation"}), 400, param="model")
        assert_error(http.post("/responses/compact", json={"input": "A long conversation"}), 400, param="model")


def test_schemas_of_a_completed_response(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open Responses always; OpenAI's spec skips (with the reason) when OPENAI_OPENAPI_SPEC is not set."""
    upstream.script(text="Schema-checked.", reasoning="Briefly.")
    with service.http() as http:
        reply = http.post("/v1/responses", json={"model": "chat_stream", "input": "Check"})
    assert reply.status_code == 200
    validate_response(reply.json())
    check_schemas(stream_events(service, {"model": "chat_stream", "input": "Check"}))
    if spec_path() is None:
        pytest.skip("OPENAI_OPENAPI_SPEC is not set; OpenAI's schema checks skipped")
    validate(reply.json(), "Response")


def test_http_client_sees_sse_headers(service: ServiceProcess) -> None:
    body = {"model": "chat_stream", "input": "Hi", "stream": True}
    with (
        httpx.Client(base_url=service.base_url, timeout=30) as http,
        http.stream("POST", "/v1/responses", json=body) as r,
    ):
        r.read()
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"

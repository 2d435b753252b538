"""The Open Responses compliance cases, against the passthrough model `llm` with the scripted upstream.

Each case is what a compliance suite (or any client with its own tools) asks of a model: basic, streaming,
system prompt, tool calling streamed and not, image input, multi-turn, structured output. The upstream must
receive what the client sent (its tools, images, instructions, sampling fields, output format); what the
LLM answers must come back in the client's terms (tool calls as function_call items for the client to run).
Every response and event is also checked against both schemas.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from openresponses_schema import validate_event, validate_response
from support import ServiceProcess, check_event_order, stream_events, user
from upstream import ScriptedUpstream

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_CALL = {"id": "call_w1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}


def create(service: ServiceProcess, **body: Any) -> dict[str, Any]:
    """POST /v1/responses (not streamed) and check the response against Open Responses."""
    with service.http() as http:
        reply = http.post("/v1/responses", json={"model": "llm", **body})
    assert reply.status_code == 200, reply.text
    validate_response(reply.json())
    return reply.json()


def stream(service: ServiceProcess, **body: Any) -> list[dict[str, Any]]:
    """The streamed events, in order and valid."""
    events = stream_events(service, {"model": "llm", **body})
    check_event_order(events)
    for event in events:
        validate_event(event)
    return events


def message(role: str, content: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


WEATHER_IN_SF = {
    "input": [message("user", "What's the weather like in San Francisco?")],
    "tools": [{**WEATHER_TOOL, "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}],
}
# The requests of the Open Responses compliance suite, case by case (the same shapes; our own texts and image).
SUITE_CASES = {
    "basic-response": {"input": [message("user", "Say hello in exactly 3 words.")]},
    "streaming-response": {"input": [message("user", "Count from 1 to 5.")], "stream": True},
    "system-prompt": {"input": [message("system", "You are a pirate."), message("user", "Say hello.")]},
    "tool-calling": WEATHER_IN_SF,
    "tool-calling-streaming": {**WEATHER_IN_SF, "stream": True},
    "image-input": {
        "input": [
            message(
                "user",
                [
                    {"type": "input_text", "text": "What do you see?"},
                    {"type": "input_image", "image_url": PNG_DATA_URL},
                ],
            )
        ]
    },
    "multi-turn": {
        "input": [
            message("user", "My name is Alice."),
            message("assistant", "Hello Alice!"),
            message("user", "What is my name?"),
        ]
    },
}


@pytest.mark.parametrize("case", SUITE_CASES)
def test_the_compliance_suites_requests(service: ServiceProcess, upstream: ScriptedUpstream, case: str) -> None:
    """Each of the suite's requests: a valid response with output; completed, or a function_call for a tool."""
    body = dict(SUITE_CASES[case])
    if "tools" in body:
        arguments = json.dumps({"location": "San Francisco, CA"})
        upstream.script(text="", tool_calls=[{"id": "call_sf", "name": "get_weather", "arguments": arguments}])
    else:
        upstream.script(text="Ahoy, matey.")
    if body.pop("stream", False):
        events = stream(service, **body)
        response = events[-1]["response"]
        if "tools" in body:
            kinds = {(e["type"], e.get("item", {}).get("type")) for e in events}
            assert ("response.output_item.added", "function_call") in kinds
            assert ("response.output_item.done", "function_call") in kinds
            assert ("response.function_call_arguments.delta", None) in kinds
            assert ("response.function_call_arguments.done", None) in kinds
    else:
        response = create(service, **body)
    assert response["output"], "the response has output items"
    assert response["status"] == "completed"
    if "tools" in body:
        assert [item["type"] for item in response["output"]] == ["function_call"]
    sent = upstream.requests[0]["messages"]
    assert [m["role"] for m in sent] == [item["role"] for item in body["input"]], "the conversation as sent"


def test_basic(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="Hello there.", usage=(3, 2))
    response = create(service, input="Say hello")
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "Hello there."
    assert response["usage"]["total_tokens"] == 5
    # No system prompt of ours: the LLM gets the client's conversation and nothing else.
    assert upstream.requests[0]["messages"] == [{"role": "user", "content": "Say hello"}]


def test_streaming(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="One two three.")
    events = stream(service, input="Count")
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "One two three."
    assert events[-1]["type"] == "response.completed"
    assert upstream.requests[0]["stream"] is True


def test_system_prompt_and_sampling(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """`instructions` and a developer message reach the LLM first; the sampling fields reach it too."""
    upstream.script(text="Ahoy.")
    sampling = {"temperature": 0.2, "top_p": 0.7, "max_output_tokens": 20, "presence_penalty": 0.5}
    response = create(
        service,
        instructions="Talk like a pirate.",
        input=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        **sampling,
    )
    sent = upstream.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user"]
    assert [m["content"] for m in sent["messages"][:2]] == ["Talk like a pirate.", "Be brief."]
    assert (sent["temperature"], sent["top_p"], sent["presence_penalty"]) == (0.2, 0.7, 0.5)
    assert sent["max_completion_tokens"] == 20
    assert (response["temperature"], response["top_p"], response["max_output_tokens"]) == (0.2, 0.7, 20)


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_calling(service: ServiceProcess, upstream: ScriptedUpstream, streamed: bool) -> None:
    """The client's tool reaches the LLM; the LLM's call comes back as a function_call item for the client."""
    upstream.script(text="", tool_calls=[WEATHER_CALL])
    body = {"input": "Weather in Oslo?", "tools": [WEATHER_TOOL], "tool_choice": "required"}
    if streamed:
        events = stream(service, **body)
        final = events[-1]["response"]
        arguments = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        assert [json.loads(e["arguments"]) for e in arguments] == [{"city": "Oslo"}]
    else:
        final = create(service, **body)
    assert final["status"] == "completed"
    calls = [item for item in final["output"] if item["type"] == "function_call"]
    assert [(c["call_id"], c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("call_w1", "get_weather", {"city": "Oslo"})
    ]
    sent = upstream.requests[0]
    assert [(t["type"], t["function"]["name"]) for t in sent["tools"]] == [("function", "get_weather")]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["parameters"]
    assert sent["tool_choice"] == "required"
    assert final["tools"] == [{**WEATHER_TOOL, "strict": False}]


def test_tool_choice_naming_a_function_and_parallel_calls(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="", tool_calls=[WEATHER_CALL])
    choice = {"type": "function", "name": "get_weather"}
    create(service, input="Oslo?", tools=[WEATHER_TOOL], tool_choice=choice, parallel_tool_calls=False)
    sent = upstream.requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False

    other_tool = {**WEATHER_TOOL, "name": "get_time"}
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]}
    upstream.script(text="", tool_calls=[WEATHER_CALL])
    create(service, input="Oslo?", tools=[other_tool, WEATHER_TOOL], tool_choice=allowed)
    sent = upstream.requests[1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"], "only the allowed tools are offered"
    assert sent["tool_choice"] == "required"


def test_sdk_tool_loop_multi_turn(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The client runs the tool and sends its output in the next turn; the LLM sees call and result."""
    client = service.client()
    upstream.script(text="", tool_calls=[WEATHER_CALL])
    first = client.responses.create(model="llm", input="Weather in Oslo?", tools=[WEATHER_TOOL])
    call = next(item for item in first.output if item.type == "function_call")
    upstream.script(text="It is 4 C in Oslo.")
    second = client.responses.create(
        model="llm",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "4 C, cloudy"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "It is 4 C in Oslo."
    sent = upstream.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == "call_w1"
    assert (sent[2]["tool_call_id"], sent[2]["content"]) == ("call_w1", "4 C, cloudy")


def test_multi_turn_history_in_the_input(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="Your name is Ada.")
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    response = create(service, input=history)
    assert response["output"][0]["content"][0]["text"] == "Your name is Ada."
    assert [(m["role"], m["content"]) for m in upstream.requests[0]["messages"]] == [
        (turn["role"], turn["content"]) for turn in history
    ]


def image_parts_sent(upstream: ScriptedUpstream) -> list[dict[str, Any]]:
    content = upstream.requests[-1]["messages"][-1]["content"]
    return [part for part in content if part["type"] == "image_url"]


@pytest.mark.parametrize("streamed", [False, True])
def test_image_input(service: ServiceProcess, upstream: ScriptedUpstream, streamed: bool) -> None:
    """A data URL and a remote URL reach the LLM; the remote one as its URL, never fetched by the service."""
    upstream.set_default(text="A red pixel and a cat.")
    remote = "https://images.example/cat.jpg"
    content = [
        {"type": "input_text", "text": "What is in these images?"},
        {"type": "input_image", "image_url": PNG_DATA_URL, "detail": "low"},
        {"type": "input_image", "image_url": remote},
    ]
    body = {"input": [{"role": "user", "content": content}]}
    if streamed:
        stream(service, **body)
    else:
        create(service, **body)
    parts = image_parts_sent(upstream)
    assert [part["image_url"]["url"] for part in parts] == [PNG_DATA_URL, remote]
    assert parts[0]["image_url"]["detail"] == "low"
    text = [part["text"] for part in upstream.requests[-1]["messages"][-1]["content"] if part["type"] == "text"]
    assert text == ["What is in these images?"]


def test_image_by_file_id(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = service.client()
    uploaded = client.files.create(file=("pixel.png", PNG, "image/png"), purpose="vision")
    content = [{"type": "input_image", "file_id": uploaded.id}, {"type": "input_text", "text": "Describe it."}]
    create(service, input=[{"role": "user", "content": content}])
    assert [part["image_url"]["url"] for part in image_parts_sent(upstream)] == [PNG_DATA_URL]


def test_bad_images_are_a_400(service: ServiceProcess) -> None:
    client = service.client()
    text = client.files.create(file=("notes.txt", b"not an image", "text/plain"), purpose="user_data")
    for part, code in [
        ({"type": "input_image", "image_url": "file:///etc/passwd"}, "invalid_image_url"),
        ({"type": "input_image", "image_url": "data:image/png;base64,@@@"}, "invalid_image"),
        ({"type": "input_image", "file_id": text.id}, "unsupported_image_media_type"),
        ({"type": "input_image", "file_id": "file-missing"}, "file_not_found"),
    ]:
        with pytest.raises(openai.APIStatusError) as raised:
            client.responses.create(model="llm", input=[{"role": "user", "content": [part]}])
        assert raised.value.status_code in (400, 404) and raised.value.code == code, (part, raised.value)


@pytest.mark.parametrize("streamed", [False, True])
def test_structured_output(service: ServiceProcess, upstream: ScriptedUpstream, streamed: bool) -> None:
    upstream.set_default(text='{"city": "Oslo"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    text_format = {"type": "json_schema", "name": "place", "schema": schema, "strict": True}
    body = {"input": "Where?", "text": {"format": text_format}}
    final = stream(service, **body)[-1]["response"] if streamed else create(service, **body)
    assert json.loads(final["output"][0]["content"][0]["text"]) == {"city": "Oslo"}
    assert final["text"]["format"] == {**text_format, "description": None}
    assert upstream.requests[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }


# --- the same model on Chat Completions ---


def test_chat_tools_images_and_response_format(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="", tool_calls=[WEATHER_CALL])
    chat_tool = {"type": "function", "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"}}
    messages = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where this photo was taken?"},
                {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
            ],
        },
    ]
    completion = service.client().chat.completions.create(
        model="llm", messages=messages, tools=[chat_tool], tool_choice="auto", max_tokens=30, seed=3, stop=["END"]
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_w1",
        "get_weather",
        {"city": "Oslo"},
    )
    sent = upstream.requests[0]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert [part["image_url"]["url"] for part in image_parts_sent(upstream)] == [PNG_DATA_URL]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert (sent["tool_choice"], sent["max_tokens"], sent["seed"], sent["stop"]) == ("auto", 30, 3, ["END"])

    upstream.script(text='{"ok": true}')
    response_format = {"type": "json_schema", "json_schema": {"name": "ok", "schema": {"type": "object"}}}
    service.client().chat.completions.create(model="llm", messages=user("ok?"), response_format=response_format)
    assert upstream.requests[1]["response_format"] == response_format


def test_chat_image_beside_an_inline_file(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """A user message keeps all its parts in order: text, the image, and a file sent inline."""
    upstream.script(text="Seen both.")
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 tiny").decode()
    content = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
        {"type": "file", "file": {"file_data": pdf, "filename": "tiny.pdf"}},
    ]
    service.client().chat.completions.create(model="llm", messages=[{"role": "user", "content": content}])
    sent = upstream.requests[0]["messages"][-1]["content"]
    assert [part["type"] for part in sent] == ["text", "image_url", "file"]
    assert sent[2]["file"] == {"file_data": pdf, "filename": "tiny.pdf"}


def test_chat_tool_results_in_the_next_turn(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="4 C.")
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"id": "call_w1", "type": "function", "function": WEATHER_CALL}]},
        {"role": "tool", "tool_call_id": "call_w1", "content": "4 C, cloudy"},
    ]
    messages[1]["tool_calls"][0]["function"] = {"name": "get_weather", "arguments": WEATHER_CALL["arguments"]}
    completion = service.client().chat.completions.create(model="llm", messages=messages)
    assert completion.choices[0].message.content == "4 C."
    sent = upstream.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[2] == {"role": "tool", "content": "4 C, cloudy", "tool_call_id": "call_w1"}


def test_images_reach_the_llm_through_the_other_examples(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """chat_stream and agent keep a user's images in the conversation they give their LLM."""
    content = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": PNG_DATA_URL}]
    for model in ("chat_stream", "agent"):
        upstream.script(text="A pixel.")
        service.client().responses.create(model=model, input=[{"role": "user", "content": content}])
        assert [part["image_url"]["url"] for part in image_parts_sent(upstream)] == [PNG_DATA_URL], model

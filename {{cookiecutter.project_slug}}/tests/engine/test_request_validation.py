"""Hostile or careless request bodies: each gets a 400 naming what is wrong, and nothing unchecked is echoed back."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from support import ServiceProcess, assert_error, user
from upstream import ScriptedUpstream

ROUTES = [
    ("/v1/chat/completions", {"model": "chat", "messages": user("hi")}),
    ("/v1/responses", {"model": "chat_stream", "input": "hi"}),
]
ROUTE_IDS = ["chat", "responses"]
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


def _post_raw(service: ServiceProcess, path: str, raw: str) -> httpx.Response:
    with service.http() as http:
        return http.post(path, content=raw.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=ROUTE_IDS)
def test_deeply_nested_json_is_a_400(service: ServiceProcess, path: str, body: dict[str, Any]) -> None:
    """100,000 levels of `[[[...]]]` used to be an uncaught RecursionError (500)."""
    depth = 100_000
    raw = '{"model": "chat", "junk": ' + "[" * depth + "]" * depth + "}"
    assert_error(_post_raw(service, path, raw), 400, err_type="invalid_request_error", code="invalid_json")
    with service.http() as http:
        assert http.post(path, json=body).status_code == 200, "the server still answers"


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(("path", "body"), ROUTES, ids=ROUTE_IDS)
def test_numbers_json_cannot_carry_are_refused(
    service: ServiceProcess, path: str, body: dict[str, Any], number: str
) -> None:
    """Python's parser turns these into inf and nan, which would go back to the client as `Infinity`: not JSON."""
    raw = httpx.Request("POST", "/", json=body).content.decode()[:-1] + f', "temperature": {number}}}'
    error = assert_error(_post_raw(service, path, raw), 400, code="invalid_json")
    assert number.lstrip("-") in error["message"]


OUT_OF_RANGE = [
    ("temperature", 2.5),
    ("temperature", -0.1),
    ("temperature", "hot"),
    ("top_p", 1.5),
    ("presence_penalty", 3),
    ("frequency_penalty", -3),
    ("top_logprobs", 21),
    ("top_logprobs", 1.5),
    ("seed", "forty-two"),
    ("seed", True),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "body"), ROUTES, ids=ROUTE_IDS)
def test_sampling_fields_out_of_range_name_their_param(
    service: ServiceProcess, path: str, body: dict[str, Any], field: str, value: object
) -> None:
    with service.http() as http:
        response = http.post(path, json=body | {field: value})
    assert_error(response, 400, err_type="invalid_request_error", param=field)


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/responses", "max_output_tokens", 0),
        ("/v1/responses", "max_output_tokens", 1.5),
        ("/v1/responses", "max_tool_calls", 0),
        ("/v1/responses", "instructions", 42),
        ("/v1/responses", "truncation", "sometimes"),
        ("/v1/responses", "text", "plain"),
        ("/v1/responses", "tools", {"type": "function"}),
        ("/v1/responses", "parallel_tool_calls", "yes"),
        ("/v1/chat/completions", "max_tokens", 0),
        ("/v1/chat/completions", "max_completion_tokens", -5),
        ("/v1/chat/completions", "n", 2),
        ("/v1/chat/completions", "stop", ["a", "b", "c", "d", "e"]),
        ("/v1/chat/completions", "stop", 7),
        ("/v1/chat/completions", "stream_options", "usage"),
        ("/v1/responses", "stop", 7),
        ("/v1/chat/completions", "parallel_tool_calls", "yes"),
        ("/v1/chat/completions", "response_format", {"type": "yaml"}),
        ("/v1/chat/completions", "tools", "get_weather"),
        ("/v1/chat/completions", "tool_choice", "always"),
        ("/v1/responses", "tool_choice", {"type": "function"}),
    ],
)
def test_api_fields_out_of_range_name_their_param(
    service: ServiceProcess, path: str, field: str, value: object
) -> None:
    body = dict(ROUTES[0][1] if path == ROUTES[0][0] else ROUTES[1][1])
    with service.http() as http:
        response = http.post(path, json=body | {field: value})
    assert_error(response, 400, param=field)


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"key{index}": "v" for index in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata." + "k" * 64),
        ({"big": "v" * 513}, "metadata.big"),
        ({"number": 4}, "metadata.number"),
        ("not an object", "metadata"),
    ],
    ids=["17 pairs", "long key", "long value", "not a string", "not an object"],
)
@pytest.mark.parametrize(("path", "body"), ROUTES, ids=ROUTE_IDS)
def test_metadata_is_bounded_as_openai_bounds_it(
    service: ServiceProcess, path: str, body: dict[str, Any], metadata: object, param: str
) -> None:
    """4 MB of metadata per stored response used to be kept as it came."""
    with service.http() as http:
        response = http.post(path, json=body | {"metadata": metadata})
    assert_error(response, 400, param=param)


def test_metadata_within_bounds_is_echoed(service: ServiceProcess) -> None:
    metadata = {f"key{index}": "v" * 512 for index in range(16)}
    response = service.client().responses.create(model="chat_stream", input="hi", metadata=metadata)
    assert response.metadata == metadata


@pytest.mark.parametrize(("path", "field"), [("/v1/chat/completions", "messages"), ("/v1/responses", "input")])
def test_more_items_than_max_input_items_is_a_400(service: ServiceProcess, path: str, field: str) -> None:
    """MAX_INPUT_ITEMS (4096 by default) bounds what one request makes the service convert on its event loop."""
    items = [{"role": "user", "content": "hi"}] * 4097
    with service.http() as http:
        response = http.post(path, json={"model": "chat_stream", field: items})
    error = assert_error(response, 400, param=field, code="too_many_items")
    assert "MAX_INPUT_ITEMS" in error["message"]


def test_content_parts_count_towards_max_input_items(service: ServiceProcess) -> None:
    parts = [{"type": "text", "text": "a"}] * 4096
    with service.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": "chat_stream", "messages": [{"role": "user", "content": parts}]}
        )
    assert_error(response, 400, param="messages", code="too_many_items")


def test_a_large_body_is_parsed_off_the_event_loop_alike(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Bodies over 1 MiB take the other parser (in a thread): the same answers, the same errors."""
    big_text = "word " * 300_000  # 1.5 MB in one message
    upstream.script(text="read it")
    completion = service.client().chat.completions.create(model="chat_stream", messages=user(big_text), temperature=0.5)
    assert completion.choices[0].message.content == "read it"
    assert upstream.requests[-1]["messages"][-1]["content"] == big_text

    with service.http() as http:
        many = http.post("/v1/chat/completions", json={"model": "chat_stream", "messages": user("hi") * 40_000})
        deep = _post_raw(service, "/v1/chat/completions", '{"x": ' + "[" * 600_000 + "]" * 600_000 + "}")
        infinite = _post_raw(
            service, "/v1/responses", '{"model": "chat_stream", "input": "' + "a" * 2**20 + '", "top_p": 1e999}'
        )
    assert_error(many, 400, param="messages", code="too_many_items")
    assert_error(deep, 400, code="invalid_json")
    assert_error(infinite, 400, code="invalid_json")


WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].name"),
        ("/v1/chat/completions", {"tools": [{"type": "function"}]}, "tools[0].function"),
        (
            "/v1/chat/completions",
            {"tools": [{"type": "function", "function": {**WEATHER, "parameters": []}}]},
            "tools[0].parameters",
        ),
        (
            "/v1/chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
        ),
        (
            "/v1/responses",
            {"tools": [{"type": "function", **WEATHER}, {"type": "function", **WEATHER}]},
            "tools[1].name",
        ),
        ("/v1/responses", {"tools": [{"type": "function", **WEATHER, "strict": "yes"}]}, "tools[0].strict"),
        (
            "/v1/responses",
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": "any"}}},
            "text.format.schema",
        ),
        ("/v1/responses", {"text": {"verbosity": "loud"}}, "text.verbosity"),
        ("/v1/responses", {"reasoning": {"summary": "short"}}, "reasoning.summary"),
        ("/v1/responses", {"tool_choice": {"type": "allowed_tools", "mode": "any", "tools": []}}, "tool_choice"),
    ],
)
def test_tools_and_formats_are_checked_before_they_reach_an_llm_or_an_echo(
    service: ServiceProcess, path: str, extra: dict[str, Any], param: str
) -> None:
    body = dict(ROUTES[0][1] if path == ROUTES[0][0] else ROUTES[1][1])
    with service.http() as http:
        response = http.post(path, json=body | extra)
    assert_error(response, 400, err_type="invalid_request_error", param=param, code="invalid_value")


@pytest.mark.parametrize("path", [ROUTES[0][0], ROUTES[1][0]], ids=ROUTE_IDS)
def test_tools_of_other_types_are_accepted_and_not_echoed(service: ServiceProcess, path: str) -> None:
    """Codex sends `custom` and hosted tools beside its functions: ignored, as no model here is offered them."""
    body = dict(ROUTES[0][1] if path == ROUTES[0][0] else ROUTES[1][1])
    body["tools"] = [{"type": "custom", "name": "apply_patch"}, {"type": "web_search"}]
    with service.http() as http:
        response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    if path == "/v1/responses":
        assert response.json()["tools"] == []


BAD_MESSAGES = [
    ({"role": "wizard", "content": "hi"}, "messages[0].role", "invalid_value"),
    ({"content": "hi"}, "messages[0].role", None),
    ({"role": "user", "content": 42}, "messages[0].content", "invalid_type"),
    ({"role": "user", "content": {"text": "hi"}}, "messages[0].content", "invalid_type"),
    ({"role": "user"}, "messages[0].content", None),
    ({"role": "system", "content": None}, "messages[0].content", None),
    ({"role": "user", "content": ["hi"]}, "messages[0].content[0]", "invalid_type"),
    ({"role": "user", "content": [{"text": "hi"}]}, "messages[0].content[0]", "invalid_type"),
]


@pytest.mark.parametrize(("message", "param", "code"), BAD_MESSAGES)
def test_a_message_the_service_cannot_read_is_a_400_naming_its_field(
    service: ServiceProcess, message: dict[str, Any], param: str, code: str | None
) -> None:
    """It was answered 200 with an empty question (`content: 42`, `role: "wizard"`)."""
    messages = [message, {"role": "user", "content": "and then?"}]
    with pytest.raises(openai.BadRequestError) as raised:
        service.client().chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
    error = raised.value
    assert (error.param, error.code) == (param, code), error.message
    assert error.type == "invalid_request_error"


def test_every_role_and_content_openai_takes_is_accepted(service: ServiceProcess) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Really brief."}]},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": TOOL_CALL["id"], "content": "sunny"},
        {"role": "function", "name": "legacy", "content": None},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]
    completion = service.client().chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
    assert completion.choices[0].message.content

"""What real OpenAI-compatible servers do, reproduced on the scripted upstream (see tests/engine/test_real_model.py).

- llama-cpp-python's server streams no usage, even when asked (`stream_options.include_usage`), yet counts the
  answers it sends whole. A client that asks for a whole answer gets the server's count (the LLM is then asked for
  a whole answer too); a streamed one gets no usage, never a made-up 0/0.
- A server refuses a request it cannot take with a 400 in its own words; llama.cpp's context overflow has an
  int `code` and a `type` of its own. The client gets a 400 with the server's reason, and OpenAI's code
  `context_length_exceeded`, which clients act on.
- The request's sampling fields reach the server: the example wrappers pass them on as `generation_kwargs`.
- llama-cpp-python's server and Ollama read the length limit from `max_tokens` only and ignore
  `max_completion_tokens` (the name the Responses API's `max_output_tokens` becomes): the limit goes under both
  names to any server but OpenAI's, so the answer stops there.
- Some servers repeat a streamed tool call's id and name on every piece: the call is still read once, by name.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from support import ServiceProcess, assert_error, user
from upstream import ScriptedUpstream

STREAMING_MODELS = ("chat_stream", "agent", "llm")
# Every example that streams from its LLM, whatever its client asked for (`chat` never does).
ALL_STREAMING_MODELS = (*STREAMING_MODELS, "rag", "files_qa")
# llama.cpp's llama-server, asked for more than its context holds (its words, as it sends them).
LLAMA_CPP_CONTEXT_OVERFLOW = {
    "error": {
        "code": 400,
        "message": "request (3331 tokens) exceeds the available context size (2048 tokens), try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 3331,
        "n_ctx": 2048,
    }
}
SERVER_REASON = LLAMA_CPP_CONTEXT_OVERFLOW["error"]["message"]


def _chat_usage(service: ServiceProcess, model: str, stream: bool) -> Any:
    client = service.client()
    if not stream:
        return client.chat.completions.create(model=model, messages=user("Hi")).usage
    chunks = list(
        client.chat.completions.create(
            model=model, messages=user("Hi"), stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    return next((c.usage for c in chunks if c.usage is not None), None)


def _response_usage(service: ServiceProcess, model: str, stream: bool) -> Any:
    client = service.client()
    if not stream:
        response = client.responses.create(model=model, input="Hi")
    else:
        with client.responses.stream(model=model, input="Hi") as events:
            response = events.get_final_response()
    assert response.status == "completed" and response.output_text == "Echo: Hi"
    return response.usage


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("model", STREAMING_MODELS)
def test_a_stream_without_usage_reports_no_usage_rather_than_zero(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, api: str
) -> None:
    upstream.set_default(streams_usage=False)
    usage = (_chat_usage if api == "chat" else _response_usage)(service, model, True)
    assert usage is None, "the server counted nothing, so there is no count to report"
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}  # it was asked for


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("model", ALL_STREAMING_MODELS)
def test_a_whole_answer_carries_the_count_of_a_server_that_streams_none(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, api: str
) -> None:
    """The examples that stream from their LLM ask it for a whole answer when their client wants one (nobody reads
    the chunks), and such a server counts that answer: the client gets its count."""
    upstream.set_default(streams_usage=False, usage=(21, 3))
    client = service.client()
    if api == "chat":
        usage = client.chat.completions.create(model=model, messages=user("Hi")).usage
        assert usage is not None, "the server counted this answer: its count must reach the client"
        counted = (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    else:
        usage = client.responses.create(model=model, input="Hi").usage
        assert usage is not None, "the server counted this answer: its count must reach the client"
        counted = (usage.input_tokens, usage.output_tokens, usage.total_tokens)
    assert counted == (21, 3, 24)
    assert upstream.requests[-1].get("stream") is not True


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather by city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _chat_answer(service: ServiceProcess, stream: bool) -> tuple[str, str, list[tuple[str, str]]]:
    """`llm`'s answer to a client that declared a tool: its text, its reasoning and its tool calls (name, arguments)."""
    request: dict[str, Any] = {"model": "llm", "messages": user("Weather in Oslo?"), "tools": [WEATHER_TOOL]}
    if not stream:
        message = service.client().chat.completions.create(**request).choices[0].message
        calls = [(call.function.name, call.function.arguments) for call in message.tool_calls or ()]
        return message.content or "", (message.model_extra or {}).get("reasoning_content", ""), calls
    text, reasoning, calls = "", "", {}
    for chunk in service.client().chat.completions.create(**request, stream=True):
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None:
            continue
        text += delta.content or ""
        reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        for call in delta.tool_calls or ():
            name, arguments = calls.get(call.index, ("", ""))
            calls[call.index] = (name + (call.function.name or ""), arguments + (call.function.arguments or ""))
    return text, reasoning, list(calls.values())


def test_a_whole_answer_holds_what_its_stream_would_have(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Asked whole, the LLM's answer reaches the streaming helpers as the chunks of its stream: the client gets the
    same reasoning, text and tool calls either way."""
    script = {"reasoning": "Oslo is a city.", "text": "Let me look.", "streams_usage": False}
    script["tool_calls"] = [{"name": "weather", "arguments": '{"city": "Oslo"}'}]
    answers = []
    for stream in (False, True):
        upstream.script(**script)
        answers.append(_chat_answer(service, stream))
        assert bool(upstream.requests[-1].get("stream")) is stream
    whole, streamed = answers
    assert whole == streamed == ("Let me look.", "Oslo is a city.", [("weather", '{"city": "Oslo"}')])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("model", STREAMING_MODELS)
def test_a_stream_with_usage_reports_the_servers_counts(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, api: str, stream: bool
) -> None:
    upstream.set_default(usage=(21, 3))
    if api == "chat":
        usage = _chat_usage(service, model, stream)
        assert (usage.prompt_tokens, usage.completion_tokens) == (21, 3)
    else:
        usage = _response_usage(service, model, stream)
        assert (usage.input_tokens, usage.output_tokens) == (21, 3)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", ["chat", *STREAMING_MODELS])
def test_a_context_overflow_is_a_400_with_the_servers_reason(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, stream: bool
) -> None:
    upstream.script(status=400, error_body=LLAMA_CPP_CONTEXT_OVERFLOW)
    body = {"model": model, "messages": user("A very long conversation"), "stream": stream}
    with service.http() as http:
        response = http.post("/v1/chat/completions", json=body)
    error = assert_error(response, 400, err_type="invalid_request_error", code="context_length_exceeded")
    assert SERVER_REASON in error["message"], error
    assert "Traceback" not in response.text
    assert len(upstream.requests) == 1, "a refusal is not retried"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_refusal_reaches_a_responses_client_as_a_400(
    service: ServiceProcess, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script(status=400, error_body=LLAMA_CPP_CONTEXT_OVERFLOW)
    with pytest.raises(openai.BadRequestError) as raised:
        if stream:
            with service.client().responses.stream(model="chat_stream", input="A very long conversation") as events:
                events.get_final_response()
        else:
            service.client().responses.create(model="chat_stream", input="A very long conversation")
    assert raised.value.code == "context_length_exceeded"
    assert SERVER_REASON in raised.value.message


def test_a_refusal_keeps_the_servers_own_string_code(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """OpenAI's own refusals name a code (`invalid_value`...) that the client gets as it is (here a server that
    takes temperatures up to 1 only, where OpenAI's range, which the service checks, goes to 2)."""
    refusal = {"message": "temperature: must be at most 1", "type": "invalid_request_error", "code": "invalid_value"}
    upstream.script(status=400, error_body={"error": {**refusal, "param": "temperature"}})
    with pytest.raises(openai.BadRequestError) as raised:
        service.client().chat.completions.create(model="chat_stream", messages=user("Hi"), temperature=1.5)
    assert raised.value.code == "invalid_value"
    assert "temperature: must be at most 1" in raised.value.message


CHAT_SAMPLING = {"temperature": 0.2, "top_p": 0.5, "seed": 7, "stop": ["END"]}


@pytest.mark.parametrize("length_field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent", "files_qa", "rag"])
def test_the_requests_sampling_fields_reach_the_llm_server(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, length_field: str
) -> None:
    body = {"model": model, "messages": user("Hi"), **CHAT_SAMPLING, length_field: 30, "presence_penalty": None}
    with service.http() as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    sent = upstream.requests[-1]
    assert {name: sent.get(name) for name in [*CHAT_SAMPLING, length_field]} == {**CHAT_SAMPLING, length_field: 30}
    assert "presence_penalty" not in sent, "a field the client left null keeps the server's default"


@pytest.mark.parametrize("model", ["chat_stream", "agent", "files_qa", "rag"])
def test_a_responses_requests_sampling_fields_reach_the_llm_server(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    service.client().responses.create(model=model, input="Hi", temperature=0.3, top_p=0.9, max_output_tokens=20)
    sent = upstream.requests[-1]
    assert (sent.get("temperature"), sent.get("top_p"), sent.get("max_completion_tokens")) == (0.3, 0.9, 20)
    assert sent.get("max_tokens") == 20, "a server that is not OpenAI's may know only the older name"
    assert "max_output_tokens" not in sent, "Chat Completions, which the server speaks, has no such field"


LONG_TEXT = "one two three four five six seven eight"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", ["chat", *STREAMING_MODELS])
def test_max_output_tokens_stops_a_server_that_reads_only_max_tokens(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str, stream: bool
) -> None:
    """As llama-cpp-python's server: with `max_output_tokens` 3 the answer was its whole length, status completed."""
    upstream.set_default(text=LONG_TEXT, length_limit_fields=("max_tokens",))
    client = service.client()
    if stream:
        events = list(client.responses.create(model=model, input="Count", max_output_tokens=3, stream=True))
        assert events[-1].type == "response.incomplete", events[-1]
        response = events[-1].response
    else:
        response = client.responses.create(model=model, input="Count", max_output_tokens=3)
    assert response.output_text == "one two three "
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("model", ["chat", *STREAMING_MODELS])
def test_max_completion_tokens_stops_a_server_that_reads_only_max_tokens(
    service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    upstream.set_default(text=LONG_TEXT, length_limit_fields=("max_tokens",))
    answer = service.client().chat.completions.create(model=model, messages=user("Count"), max_completion_tokens=3)
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == ("one two three ", "length")


WEATHER = {"id": "call_w1", "name": "get_weather", "arguments": '{"city": "Oslo", "unit": "celsius"}'}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def test_an_agent_runs_a_tool_call_whose_head_repeats(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The agent's LLM asks for its tool with the name on every piece: the tool runs, by its own name."""
    call = {"id": "call_t1", "name": "get_current_time", "arguments": '{"timezone": "UTC"}'}
    upstream.script(text="", tool_calls=[call], repeats_call_head=True)
    upstream.script(text="It is tea time.")
    answer = service.client().chat.completions.create(model="agent", messages=user("What time is it?"))
    assert answer.choices[0].message.content == "It is tea time."
    second = upstream.requests[1]["messages"]
    assert [c["function"]["name"] for m in second for c in m.get("tool_calls") or ()] == ["get_current_time"]
    results = [m for m in second if m.get("role") == "tool"]
    assert [m["tool_call_id"] for m in results] == ["call_t1"] and "UTC" in results[0]["content"], results


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_client_gets_a_tool_call_whose_head_repeats_once(
    service: ServiceProcess, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script(text="", tool_calls=[WEATHER], repeats_call_head=True)
    client = service.client()
    request = {"model": "llm", "messages": user("Weather in Oslo?"), "tools": [WEATHER_TOOL]}
    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        pieces = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
        assert [(call.id, call.function.name) for call in pieces if call.id] == [("call_w1", "get_weather")]
        arguments = "".join(call.function.arguments or "" for call in pieces)
    else:
        calls = client.chat.completions.create(**request).choices[0].message.tool_calls or []
        assert [(call.id, call.function.name) for call in calls] == [("call_w1", "get_weather")]
        arguments = calls[0].function.arguments
    assert arguments == WEATHER["arguments"]

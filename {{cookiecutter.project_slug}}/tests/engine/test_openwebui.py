"""Open WebUI as a client: events only for it, the agent's tool calls shown in it, its background tasks answered.

Open WebUI is told apart by the X-OpenWebUI-* headers it forwards when started with
ENABLE_FORWARD_USER_INFO_HEADERS=true (OPENWEBUI_HEADERS are the ones it sends), or by one set on its
connection (CONNECTION_HEADER); by default it sends none (DEFAULT_HEADERS, read from Open WebUI 0.12.4's
`utils/headers.py`: aiohttp's own User-Agent, which any aiohttp client sends, tells nothing). The task prompts below
have the shape of Open WebUI's (`### Task:`, an output format naming the JSON key, the chat history as
`USER: ...` lines). The real Open WebUI, in a browser, is driven by `openwebui/run.sh` in the template
repository; these tests pin the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import SSE, TESTS_DIR, ServiceProcess, base_env, stream_raw, user
from test_wrappers import handles_tasks, openwebui_events
from upstream import ScriptedUpstream

OPENWEBUI_HEADERS = {
    "X-OpenWebUI-User-Name": "Ada",
    "X-OpenWebUI-User-Id": "3f1c6f1e-0000-4000-8000-000000000001",
    "X-OpenWebUI-User-Email": "ada@example.com",
    "X-OpenWebUI-User-Role": "admin",
    "X-OpenWebUI-Chat-Id": "5d1e2f3a-0000-4000-8000-000000000002",
}
# What Open WebUI 0.12.4 sends with its default settings (no forwarded user): its session is aiohttp's.
DEFAULT_HEADERS = {"Content-Type": "application/json", "User-Agent": "Python/3.11 aiohttp/3.13.2", "Accept": "*/*"}
# A header set in the connection's Headers field (or OPENAI_API_CONFIGS), as docs/openwebui.md says.
CONNECTION_HEADER = {"X-OpenWebUI-Client": "open-webui"}
TOOL = "get_current_time"
FINAL = "It is tea time."
QUESTION = "What time is it in Berlin right now, please?"


def script_tool_then_text(upstream: ScriptedUpstream) -> None:
    upstream.script(text="", tool_calls=[{"id": "call_1", "name": TOOL, "arguments": '{"timezone": "UTC"}'}])
    upstream.script(text=FINAL)


def http_client(service: ServiceProcess, *, openwebui: bool, headers: dict[str, str] | None = None) -> httpx.Client:
    http = service.http()
    if openwebui:
        http.headers.update(OPENWEBUI_HEADERS)
    http.headers.update(headers or {})
    return http


def stream_chat(
    service: ServiceProcess, model: str, *, openwebui: bool, text: str = QUESTION, headers: dict[str, str] | None = None
) -> SSE:
    body = {"model": model, "messages": user(text), "stream": True, "stream_options": {"include_usage": True}}
    with http_client(service, openwebui=openwebui, headers=headers) as http:
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    return sse


def content_of(sse: SSE) -> str:
    return "".join(choice["delta"].get("content") or "" for chunk in sse.chunks() for choice in chunk["choices"])


def events_of(sse: SSE) -> list[dict[str, Any]]:
    return [chunk["event"] for chunk in sse.chunks() if "event" in chunk]


# --- events: only for Open WebUI, in the form it reads ---


def test_agent_tool_call_shows_as_status_and_details(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """A running status, then a done status and a tool-call block with arguments and result, then the answer."""
    script_tool_then_text(upstream)
    sse = stream_chat(service, "agent", openwebui=True)
    statuses = [event["data"] for event in events_of(sse) if event["type"] == "status"]
    assert statuses == [
        {"description": f"Running {TOOL}…", "done": False, "hidden": False},
        {"description": f"Used {TOOL}", "done": True, "hidden": False},
    ]
    content = content_of(sse)
    assert content.endswith(FINAL), content
    block = content[content.index("<details") : content.index("</details>")]
    assert 'type="tool_calls"' in block and f'name="{TOOL}"' in block and 'done="true"' in block, block
    assert 'arguments="{&quot;timezone&quot;: &quot;UTC&quot;}"' in block, block
    assert "(UTC)" in block, "the tool's result should be in the block"
    # The running status comes before the block, the block before the answer.
    kinds = ["status" if "event" in c else "text" for c in sse.chunks() if c["choices"] or "event" in c]
    assert kinds.index("status") < kinds.index("text")
    chunk_ids = {chunk["id"] for chunk in sse.chunks()}
    assert len(chunk_ids) == 1, "event chunks belong to the same completion"
    for chunk in sse.chunks():
        if "event" in chunk:
            assert chunk["object"] == "chat.completion.chunk" and chunk["choices"] == [] and chunk["usage"] is None


def test_open_webuis_default_connection_is_not_recognised(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """What docs/openwebui.md says: with Open WebUI's defaults the agent's answer comes without its tool calls."""
    script_tool_then_text(upstream)
    sse = stream_chat(service, "agent", openwebui=False, headers=DEFAULT_HEADERS)
    assert (events_of(sse), content_of(sse)) == ([], FINAL)


def test_a_header_set_on_the_connection_shows_the_tool_calls(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """One X-OpenWebUI-* header on the connection, without forwarding anyone's identity, is enough."""
    script_tool_then_text(upstream)
    sse = stream_chat(service, "agent", openwebui=False, headers={**DEFAULT_HEADERS, **CONNECTION_HEADER})
    assert [event["data"]["description"] for event in events_of(sse)] == [f"Running {TOOL}…", f"Used {TOOL}"]
    assert f'name="{TOOL}"' in content_of(sse) and content_of(sse).endswith(FINAL)


def test_agent_without_openwebui_headers_gets_no_events(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    script_tool_then_text(upstream)
    sse = stream_chat(service, "agent", openwebui=False)
    assert events_of(sse) == []
    assert content_of(sse) == FINAL
    assert "<details" not in sse.raw and "event" not in sse.raw


def test_sdk_reads_the_stream_with_openwebui_headers(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Event chunks are valid chunks: the SDK and its stream helper read the stream that Open WebUI gets."""
    script_tool_then_text(upstream)
    client = service.client()
    chunks = list(
        client.chat.completions.create(
            model="agent", messages=user(QUESTION), stream=True, extra_headers=OPENWEBUI_HEADERS
        )
    )
    events = [chunk.model_extra["event"] for chunk in chunks if chunk.model_extra and "event" in chunk.model_extra]
    assert [event["type"] for event in events] == ["status", "status"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "<details" in text and text.endswith(FINAL)

    script_tool_then_text(upstream)
    with client.chat.completions.stream(
        model="agent", messages=user(QUESTION), extra_headers=OPENWEBUI_HEADERS
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content.endswith(FINAL)
    assert final.choices[0].finish_reason == "stop"


def test_no_events_when_not_streamed_or_on_responses(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    script_tool_then_text(upstream)
    client = service.client()
    completion = client.chat.completions.create(model="agent", messages=user(QUESTION), extra_headers=OPENWEBUI_HEADERS)
    assert completion.choices[0].message.content == FINAL

    script_tool_then_text(upstream)
    response = client.responses.create(model="agent", input=QUESTION, extra_headers=OPENWEBUI_HEADERS)
    assert response.output_text == FINAL

    script_tool_then_text(upstream)
    with client.responses.stream(model="agent", input=QUESTION, extra_headers=OPENWEBUI_HEADERS) as stream:
        streamed = stream.get_final_response()
    assert streamed.output_text == FINAL


def test_every_helper_in_the_form_openwebui_reads(test_service: ServiceProcess) -> None:
    sse = stream_chat(test_service, "openwebui_events", openwebui=True)
    events = events_of(sse)
    assert [event["type"] for event in events] == ["status", "notification", "source", "source", "replace", "status"]
    status, notification, source, web_source, replace, done = (event["data"] for event in events)
    assert status == {"description": "Looking things up", "done": False, "hidden": False}
    assert notification == {"type": "success", "content": "Found it"}
    assert source["source"] == {"name": "manual.pdf"} and source["document"] == ["Page 3 says so."]
    assert source["metadata"] == [{"source": "manual.pdf", "name": "manual.pdf", "external": False}]
    assert web_source["source"] == {"name": "Docs", "url": "https://example.com/docs"}
    assert web_source["metadata"][0]["source"] == "https://example.com/docs"
    assert replace == {"content": "Replaced."}
    assert done == {"description": "Looked things up", "done": True, "hidden": True}
    details = "\n\n<details>\n<summary>Search</summary>\n**3** hits\n</details>\n\n"
    expected = f"{openwebui_events.BEFORE}{details}{openwebui_events.ONLY_FOR_OPENWEBUI}{openwebui_events.AFTER}"
    assert content_of(sse) == f"{expected} [takes events: True]"


def test_every_helper_is_dropped_for_other_clients(test_service: ServiceProcess) -> None:
    sse = stream_chat(test_service, "openwebui_events", openwebui=False)
    assert events_of(sse) == []
    assert content_of(sse) == f"{openwebui_events.BEFORE}{openwebui_events.AFTER} [takes events: False]"
    with http_client(test_service, openwebui=True) as http:
        body = {"model": "openwebui_events", "messages": user("x")}
        reply = http.post("/v1/chat/completions", json=body).json()
    content = reply["choices"][0]["message"]["content"]
    assert content == f"{openwebui_events.BEFORE}{openwebui_events.AFTER} [takes events: False]", "not streamed"
    client = test_service.client()
    with client.responses.stream(model="openwebui_events", input="x", extra_headers=OPENWEBUI_HEADERS) as stream:
        response = stream.get_final_response()
    assert response.output_text == f"{openwebui_events.BEFORE}{openwebui_events.AFTER} [takes events: False]"


@pytest.fixture(scope="module", params=["always", "never"])
def events_setting_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServiceProcess]]:
    """The test wrappers with OPENWEBUI_EVENTS set to `always`, then `never`."""
    env = base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        TEST_WRAPPERS_DIR=str(tmp_path_factory.mktemp("events_state")),
        OPENWEBUI_EVENTS=request.param,
    )
    service = ServiceProcess(name=f"events_{request.param}", workdir=tmp_path_factory.mktemp("events"), env=env)
    service.start()
    yield request.param, service
    service.stop()


def test_events_setting_overrides_the_headers(events_setting_service: tuple[str, ServiceProcess]) -> None:
    mode, service = events_setting_service
    for openwebui in (False, True):
        sse = stream_chat(service, "openwebui_events", openwebui=openwebui)
        assert bool(events_of(sse)) is (mode == "always"), (mode, openwebui)
        assert content_of(sse).endswith(f"[takes events: {mode == 'always'}]")


# --- the client's own tools: ignored by the examples, forwarded by a wrapper that opts in ---

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_examples_ignore_the_clients_tools(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open WebUI sends its built-in tools with every request; no example offers them to its LLM."""
    client = service.client()
    for model in ("chat", "chat_stream"):
        client.chat.completions.create(model=model, messages=user("Weather?"), tools=[WEATHER_TOOL])
    script_tool_then_text(upstream)
    client.chat.completions.create(model="agent", messages=user("Weather?"), tools=[WEATHER_TOOL])
    offered = [sorted(tool["function"]["name"] for tool in body.get("tools") or []) for body in upstream.requests]
    assert offered == [[], [], ["cancel_meeting", TOOL], ["cancel_meeting", TOOL]], "the agent's own tools only"


def test_wrapper_that_opts_in_forwards_the_clients_tool_calls(
    test_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Offered to the LLM, its call streamed to the client (with no tool display of ours), the result sent back."""
    upstream.script(text="", tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": '{"city": "Paris"}'}])
    body = {"model": "client_tools", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL], "stream": True}
    with http_client(test_service, openwebui=True) as http:
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    assert events_of(sse) == [], "the client shows the calls it runs itself"
    calls = [
        call
        for chunk in sse.chunks()
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or []
    ]
    assert calls[0]["id"] == "call_w" and calls[0]["function"]["name"] == "get_weather"
    assert "".join(call["function"]["arguments"] for call in calls) == '{"city": "Paris"}'
    assert sse.chunks()[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert [tool["function"]["name"] for tool in upstream.requests[0]["tools"]] == ["get_weather"]

    upstream.script(text="Sunny in Paris.")
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    tool_result = {"role": "tool", "tool_call_id": "call_w", "content": "Sunny, 24 °C"}
    completion = test_service.client().chat.completions.create(
        model="client_tools", messages=[*user("Weather in Paris?"), assistant, tool_result], tools=[WEATHER_TOOL]
    )
    assert completion.choices[0].message.content == "Sunny in Paris."
    assert upstream.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_w", "content": "Sunny, 24 °C"}


# --- background tasks: answered without running the pipeline ---


def task_prompt(kind: str, history: list[tuple[str, str]]) -> str:
    """A task prompt shaped like Open WebUI's: instructions, the JSON output format, the chat history."""
    instructions, output = {
        "title": ("Generate a concise title summarizing the chat history.", '{ "title": "your concise title" }'),
        "tags": ("Generate 1-3 broad tags categorizing the chat history.", '{ "tags": ["tag1", "tag2"] }'),
        "follow_ups": ("Predict messages this user might send next.", '{ "follow_ups": ["Next 1", "Next 2"] }'),
        "queries": ("Generate search queries when they would help.", '{ "queries": ["query1", "query2"] }'),
        "autocomplete": ("You are an autocompletion system.", '{ "text": "<your_completion>" }'),
    }[kind]
    turns = "\n".join(f"{role}: {text}" for role, text in history)
    return (
        f"### Task:\n{instructions}\n### Guidelines:\n- Answer with the JSON object only.\n"
        f"### Output:\nJSON format: {output}\n### Chat History:\n<chat_history>\n{turns}\n</chat_history>"
    )


HISTORY = [("USER", QUESTION), ("ASSISTANT", "It is noon.\nAnything else?"), ("USER", "And in Tokyo?")]
DEFAULT_ANSWERS = {
    "title": {"title": "What time is it in Berlin…"},
    "tags": {"tags": []},
    "follow_ups": {"follow_ups": []},
    "queries": {"queries": ["And in Tokyo?"]},
    "autocomplete": {"text": ""},
}


@pytest.mark.parametrize("kind", list(DEFAULT_ANSWERS))
@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
def test_task_answered_without_the_pipeline(
    service: ServiceProcess, upstream: ScriptedUpstream, kind: str, model: str
) -> None:
    """The JSON Open WebUI reads back, and no LLM call: the wrapper never ran."""
    completion = service.client().chat.completions.create(
        model=model, messages=user(task_prompt(kind, HISTORY)), extra_headers=OPENWEBUI_HEADERS
    )
    assert completion.model == model and completion.choices[0].finish_reason == "stop"
    assert json.loads(completion.choices[0].message.content) == DEFAULT_ANSWERS[kind]
    assert upstream.requests == []


def test_requests_that_only_look_like_tasks_run_the_pipeline(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Streamed, within a conversation, or a `### Task:` prompt of no known kind (Open WebUI's RAG prompt): ordinary."""
    client = service.client()
    title_prompt = task_prompt("title", HISTORY)
    rag_prompt = "### Task:\nRespond to the user query using the provided context.\n<context>\nNoon.\n</context>"
    upstream.set_default(text="From the pipeline.")
    chunks = client.chat.completions.create(model="chat_stream", messages=user(title_prompt), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "From the pipeline."
    conversation = [*user("Hello"), {"role": "assistant", "content": "Hi!"}, *user(title_prompt)]
    for messages in (conversation, user(rag_prompt)):
        completion = client.chat.completions.create(model="chat_stream", messages=messages)
        assert completion.choices[0].message.content == "From the pipeline."
    assert len(upstream.requests) == 3


def test_task_after_a_system_prompt_is_still_a_task(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open WebUI puts a model's system prompt (from its model settings) before the task prompt."""
    messages = [{"role": "system", "content": "You are Ada's assistant."}, *user(task_prompt("title", HISTORY))]
    completion = service.client().chat.completions.create(model="agent", messages=messages)
    assert json.loads(completion.choices[0].message.content) == DEFAULT_ANSWERS["title"]
    assert upstream.requests == []


def test_wrapper_that_handles_tasks_itself(test_service: ServiceProcess) -> None:
    client = test_service.client()
    completion = client.chat.completions.create(model="handles_tasks", messages=user(task_prompt("title", HISTORY)))
    assert json.loads(completion.choices[0].message.content) == {"title": handles_tasks.TITLE}
    completion = client.chat.completions.create(model="handles_tasks", messages=user("hello"))
    assert completion.choices[0].message.content == handles_tasks.ANSWER


@pytest.mark.parametrize(
    ("first_message", "title"),
    [
        ("Plan a trip", "Plan a trip"),
        ("  How do I reset my password on the admin page?\nThanks", "How do I reset my password…"),
        ("Why?", "Why"),
    ],
)
def test_title_is_the_start_of_the_first_user_message(service: ServiceProcess, first_message: str, title: str) -> None:
    prompt = task_prompt("title", [("USER", first_message), ("ASSISTANT", "Sure."), ("USER", "Thanks")])
    completion = service.client().chat.completions.create(model="chat", messages=user(prompt))
    assert json.loads(completion.choices[0].message.content) == {"title": title}


@pytest.fixture(scope="module")
def task_llm_service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The example wrappers with a task model: the scripted upstream stands in for it."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        TASK_MODEL="scripted-task-model",
        TASK_BASE_URL=f"{upstream.base_url}/v1",
        TASK_API_KEY="task-key",
    )
    service = ServiceProcess(name="task_llm_service", workdir=tmp_path_factory.mktemp("task_llm"), env=env)
    service.start()
    yield service
    service.stop()


def test_task_answered_by_the_task_model(task_llm_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    prompt = task_prompt("title", HISTORY)
    upstream.script(text='Sure! {"title": "Berlin Time"}')
    completion = task_llm_service.client().chat.completions.create(
        model="agent", messages=user(prompt), extra_headers=OPENWEBUI_HEADERS
    )
    assert json.loads(completion.choices[0].message.content) == {"title": "Berlin Time"}
    [sent] = upstream.requests
    assert sent["model"] == "scripted-task-model"
    assert sent["messages"] == [{"role": "user", "content": prompt}]
    assert not sent.get("stream") and not sent.get("tools")


def test_unusable_task_model_answer_falls_back(task_llm_service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="A fine title would be Berlin Time.")
    completion = task_llm_service.client().chat.completions.create(
        model="agent", messages=user(task_prompt("title", HISTORY))
    )
    assert json.loads(completion.choices[0].message.content) == DEFAULT_ANSWERS["title"]
    assert len(upstream.requests) == 1

"""Every kind of Responses input item: resolved (`item_reference`), converted for the LLM, or refused with a 400.

Through the official SDK against `llm`, which gives the LLM the whole conversation: what the scripted upstream
receives is what the model saw. docs/responses.md has the table these tests follow.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from support import ServiceProcess, assert_error
from upstream import ScriptedUpstream

QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."
FOLLOW_UP = "How many people live there?"
WEATHER_TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def prompt(upstream: ScriptedUpstream, call: int = -1) -> list[tuple[str, Any]]:
    """(role, content) of each message of one LLM call."""
    return [(message["role"], message.get("content")) for message in upstream.requests[call]["messages"]]


def ask(client: openai.OpenAI, stream: bool, **request: Any) -> Any:
    """One response, streamed or not; the final response object either way."""
    if not stream:
        return client.responses.create(**request)
    events = list(client.responses.create(**request, stream=True))
    assert events[-1].type == "response.completed", events[-1]
    return events[-1].response


# --- item_reference ---


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_item_reference_brings_back_the_stored_answer(
    service: ServiceProcess, upstream: ScriptedUpstream, stream: bool
) -> None:
    """The issue's case: the second turn sends the first answer back as a reference, as clients with `store` do."""
    client = service.client()
    upstream.script(text=ANSWER)
    first = ask(client, stream, model="llm", input=QUESTION)
    upstream.script(text="About two million.")
    turn = [
        {"role": "user", "content": QUESTION},
        {"type": "item_reference", "id": first.output[0].id},
        {"role": "user", "content": FOLLOW_UP},
    ]
    second = ask(client, stream, model="llm", input=turn)
    assert second.output_text == "About two million."
    assert prompt(upstream) == [("user", QUESTION), ("assistant", ANSWER), ("user", FOLLOW_UP)]
    stored = client.responses.input_items.list(second.id).data
    assert [item.type for item in stored] == ["message"] * 3, "the item itself is stored, not the reference"
    assert stored[1].id == first.output[0].id


def test_references_to_a_reasoning_item_and_a_function_call(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """A tool loop as clients with `store` send it: the call by reference, its output inline."""
    client = service.client()
    upstream.script(
        text="",
        reasoning="The user wants the weather.",
        tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": "{}"}],
    )
    first = client.responses.create(model="llm", input="Weather?", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    upstream.script(text="It is sunny.")
    turn = [
        {"role": "user", "content": "Weather?"},
        *({"type": "item_reference", "id": item.id} for item in first.output),
        {"type": "function_call_output", "call_id": "call_w", "output": "sunny"},
    ]
    second = client.responses.create(model="llm", input=turn, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    assert second.output_text == "It is sunny."
    sent = upstream.requests[1]["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "tool"], "reasoning is not sent back"
    assert [(call["id"], call["function"]["name"]) for call in sent[1]["tool_calls"]] == [("call_w", "get_weather")]
    assert (sent[2]["tool_call_id"], sent[2]["content"]) == ("call_w", "sunny")


def test_an_input_item_stored_with_its_id_can_be_referenced(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    client = service.client()
    note = {"type": "message", "id": "msg_client_note_1", "role": "user", "content": "The door code is 7421."}
    client.responses.create(model="llm", input=[note])
    upstream.script(text="It is 7421.")
    turn = [{"id": "msg_client_note_1"}, {"role": "user", "content": "What is the door code?"}]  # a bare {"id"} too
    client.responses.create(model="llm", input=turn)  # type: ignore[arg-type]
    assert prompt(upstream) == [("user", "The door code is 7421."), ("user", "What is the door code?")]


def test_references_to_a_conversation_item_and_a_background_answer(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Items are found wherever the store keeps them: in a conversation, and in a background response's output."""
    client = service.client()
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": QUESTION}])
    question_id = client.conversations.items.list(conversation.id).data[0].id
    upstream.script(text=ANSWER)
    background = client.responses.create(model="llm", input=QUESTION, background=True)
    for _ in range(600):
        done = client.responses.retrieve(background.id)
        if done.status not in ("queued", "in_progress"):
            break
    assert done.status == "completed", done.status
    upstream.script(text="About two million.")
    turn = [
        {"type": "item_reference", "id": question_id},
        {"type": "item_reference", "id": done.output[0].id},
        {"role": "user", "content": FOLLOW_UP},
    ]
    client.responses.create(model="llm", input=turn)
    assert prompt(upstream) == [("user", QUESTION), ("assistant", ANSWER), ("user", FOLLOW_UP)]


def test_a_reference_to_nothing_stored_is_a_400(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Never a silent drop: unknown, made with `store: false`, deleted; streamed or not, before anything runs."""
    client = service.client()
    unstored = client.responses.create(model="llm", input="Forget this.", store=False)
    deleted = client.responses.create(model="llm", input="Delete this.")
    client.responses.delete(deleted.id)
    calls_before = len(upstream.requests)
    for missing in ("msg_never_stored", unstored.output[0].id, deleted.output[0].id):
        for stream in (False, True):
            turn = [{"role": "user", "content": "Hi"}, {"type": "item_reference", "id": missing}]
            with pytest.raises(openai.BadRequestError) as raised:
                client.responses.create(model="llm", input=turn, stream=stream)  # type: ignore[arg-type]
            error = raised.value
            assert (error.param, error.type) == ("input[1]", "invalid_request_error"), error
            assert f"'{missing}' not found" in error.message
    with service.http() as http:
        reply = http.post("/v1/responses", json={"model": "llm", "input": [{"type": "item_reference"}]})
    assert_error(reply, 400, param="input[0].id")
    assert len(upstream.requests) == calls_before, "no LLM call for a request that was refused"


# --- what the helpers convert ---


def test_refusals_and_custom_tool_calls_reach_the_llm(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    conversation = [
        {"role": "user", "content": "Patch the file, and tell me a secret."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot share secrets."}]},
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": [{"type": "input_text", "text": "Done"}]},
        {"type": "reasoning", "id": "rs_from_before", "summary": [{"type": "summary_text", "text": "Hmm."}]},
    ]
    service.client().responses.create(model="llm", input=conversation)  # type: ignore[arg-type]
    question, refusal, call, result = upstream.requests[-1]["messages"]
    assert question["content"] == "Patch the file, and tell me a secret."
    assert refusal == {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot share secrets."}]}
    [tool_call] = call["tool_calls"]
    assert (tool_call["id"], tool_call["function"]["name"]) == ("call_p", "apply_patch")
    assert json.loads(tool_call["function"]["arguments"]) == {"input": "*** Begin Patch"}
    assert (result["role"], result["tool_call_id"], result["content"]) == ("tool", "call_p", "Done")


def test_input_files_reach_the_llm(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Inline (`file_data`) and uploaded (`file_id`), as a chat `file` part with the bytes."""
    client = service.client()
    uploaded = client.files.create(file=("minutes.txt", b"Meeting moved to Friday."), purpose="user_data")
    inline = base64.b64encode(b"%PDF-1.4 not really").decode()
    content = [
        {"type": "input_file", "file_id": uploaded.id},
        {"type": "input_file", "filename": "report.pdf", "file_data": f"data:application/pdf;base64,{inline}"},
        {"type": "input_text", "text": "Summarise both."},
    ]
    client.responses.create(model="llm", input=[{"role": "user", "content": content}])  # type: ignore[list-item]
    [(role, parts)] = prompt(upstream)
    assert role == "user"
    assert [part["type"] for part in parts] == ["file", "file", "text"]
    first, second = (part["file"] for part in parts[:2])
    assert (first["filename"], first["file_data"]) == (
        "minutes.txt",
        "data:text/plain;base64," + base64.b64encode(b"Meeting moved to Friday.").decode(),
    )
    assert (second["filename"], second["file_data"]) == ("report.pdf", f"data:application/pdf;base64,{inline}")


# --- what the helpers refuse ---

IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
REFUSED = {  # what the request holds besides a user message, and the kind the error names
    "a built-in tool's call": ({"type": "web_search_call", "id": "ws_1", "status": "completed"}, "web_search_call"),
    "an image in a system message": (
        {"role": "system", "content": [{"type": "input_image", "image_url": IMAGE}]},
        "input_image",
    ),
    "an image in a tool result": (
        {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_image", "image_url": IMAGE}]},
        "input_image",
    ),
    "a part of unknown type": (
        {"role": "user", "content": [{"type": "input_video", "video_url": "https://example.com/v.mp4"}]},
        "input_video",
    ),
}


@pytest.mark.parametrize(("item", "kind"), REFUSED.values(), ids=REFUSED.keys())
def test_what_no_message_can_carry_is_a_400(
    service: ServiceProcess, upstream: ScriptedUpstream, item: dict[str, Any], kind: str
) -> None:
    with service.http() as http:
        reply = http.post("/v1/responses", json={"model": "llm", "input": [{"role": "user", "content": "Hi"}, item]})
    error = assert_error(reply, 400, err_type="invalid_request_error", param="input", code="unsupported_value")
    assert f"'{kind}'" in error["message"], error
    assert not upstream.requests, "refused before the LLM is called"


@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
def test_every_example_refuses_the_same(service: ServiceProcess, model: str) -> None:
    with service.http() as http:
        reply = http.post("/v1/responses", json={"model": model, "input": [REFUSED["a built-in tool's call"][0]]})
    assert_error(reply, 400, param="input", code="unsupported_value")

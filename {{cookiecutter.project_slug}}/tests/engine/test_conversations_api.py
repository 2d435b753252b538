"""The Conversations API through the official SDK, and `conversation` on `POST /v1/responses`, on both stores.

Every test runs against the service on SQLite (the default) and on Redis (STATE_URL), each talking to the scripted
upstream LLM; what the LLM was sent shows what history a turn carried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from engines import RedisServer
from support import ServiceProcess, assert_error, base_env, stream_events
from upstream import ScriptedUpstream


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def conversations_service(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The example wrappers on the scripted upstream, their state in SQLite or in a Redis of their own."""
    env = base_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=f"{upstream.base_url}/v1", OPENAI_MODEL="scripted")
    redis_server = None
    if request.param == "redis":
        redis_server = RedisServer(tmp_path_factory.mktemp("conversations_redis")).start()
        env["STATE_URL"] = redis_server.url
    service = ServiceProcess(f"conversations_{request.param}", tmp_path_factory.mktemp("conversations"), env)
    try:
        yield service.start()
    finally:
        service.stop()
        if redis_server is not None:
            redis_server.close()


@pytest.fixture
def client(conversations_service: ServiceProcess) -> openai.OpenAI:
    return conversations_service.client()


def sent_history(upstream: ScriptedUpstream, call: int = -1) -> list[tuple[str, str]]:
    """(role, text) of what one LLM call was sent, without the wrapper's own system prompt."""
    messages = upstream.requests[call]["messages"]
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


def item_texts(client: openai.OpenAI, conversation_id: str) -> list[tuple[str, str]]:
    """(role, text) of every message the conversation holds, oldest first."""
    listed = client.conversations.items.list(conversation_id, order="asc", limit=100)
    return [(item.role, item.content[0].text) for item in listed if item.type == "message"]


def test_three_turns_through_conversation(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """Each turn sees the ones before it; a plain response, a streamed one, and `{"id": ...}` all append theirs."""
    conversation = client.conversations.create(
        metadata={"topic": "names"}, items=[{"type": "message", "role": "user", "content": "My name is Ada."}]
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "names"}

    upstream.script(text="Nice to meet you, Ada.")
    first = client.responses.create(model="chat_stream", conversation=conversation.id, input="Hello!")
    assert first.conversation is not None and first.conversation.id == conversation.id
    assert sent_history(upstream) == [("user", "My name is Ada."), ("user", "Hello!")]

    upstream.script(text="Your name is Ada.")
    with client.responses.stream(model="chat_stream", conversation=conversation.id, input="My name?") as stream:
        second = stream.get_final_response()
    assert second.output_text == "Your name is Ada."
    assert sent_history(upstream)[-3:] == [
        ("user", "Hello!"),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "My name?"),
    ]

    upstream.script(text="Three turns.")
    third = client.responses.create(model="chat_stream", conversation={"id": conversation.id}, input="How many?")
    assert third.conversation is not None and third.conversation.id == conversation.id
    expected = [
        ("user", "My name is Ada."),
        ("user", "Hello!"),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "My name?"),
        ("assistant", "Your name is Ada."),
        ("user", "How many?"),
        ("assistant", "Three turns."),
    ]
    assert sent_history(upstream) == expected[:-1]
    assert item_texts(client, conversation.id) == expected
    # The stored response's input items are the conversation as that turn read it, with the items' ids.
    input_items = client.responses.input_items.list(third.id, order="asc", limit=100).data
    listed = client.conversations.items.list(conversation.id, order="asc", limit=100).data
    assert [item.id for item in input_items] == [item.id for item in listed[:-1]]
    assert listed[-1].id == third.output[0].id, "output items keep their ids in the conversation"
    assert client.responses.retrieve(third.id).conversation.id == conversation.id


def test_items_are_listed_and_paged(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    assert conversation.metadata == {}
    added: list[str] = []
    for batch in range(3):  # at most 20 items a request
        items = [{"role": "user", "content": f"item {batch * 10 + n}"} for n in range(10)]
        created = client.conversations.items.create(conversation.id, items=items)  # type: ignore[arg-type]
        assert len(created.data) == 10 and created.has_more is False
        assert (created.first_id, created.last_id) == (created.data[0].id, created.data[-1].id)
        assert all(item.id.startswith("msg_") and item.status == "completed" for item in created.data)
        added += [item.id for item in created.data]

    first_page = client.conversations.items.list(conversation.id, limit=7)
    assert [item.id for item in first_page.data] == added[::-1][:7], "newest first by default"
    assert first_page.has_more is True and first_page.last_id == added[-7]
    paged = [item.id for item in client.conversations.items.list(conversation.id, limit=7)]  # the auto-pager
    assert paged == added[::-1], "every item once, and the pager stops"
    assert [item.id for item in client.conversations.items.list(conversation.id, order="asc", limit=4)] == added
    assert len(client.conversations.items.list(conversation.id).data) == 20, "20 a page by default"
    last_page = client.conversations.items.list(conversation.id, order="asc", after=added[-2])
    assert [item.id for item in last_page.data] == [added[-1]] and last_page.has_more is False

    item = client.conversations.items.retrieve(added[3], conversation_id=conversation.id)
    assert item.type == "message" and item.content[0].type == "input_text" and item.content[0].text == "item 3"
    updated = client.conversations.update(conversation.id, metadata={"topic": "paging"})
    assert client.conversations.retrieve(conversation.id).metadata == updated.metadata == {"topic": "paging"}
    assert client.conversations.delete(conversation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)


def test_deleting_an_item_removes_it_from_the_next_turn(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    conversation = client.conversations.create()
    upstream.script(text="Noted: the code is 4711.")
    client.responses.create(model="chat_stream", conversation=conversation.id, input="The code is 4711.")
    secret = next(item for item in client.conversations.items.list(conversation.id, order="asc") if item.role == "user")
    deleted = client.conversations.items.delete(secret.id, conversation_id=conversation.id)
    assert deleted.id == conversation.id and deleted.object == "conversation", "the answer is the conversation"
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(secret.id, conversation_id=conversation.id)

    upstream.script(text="I only know what I said.")
    client.responses.create(model="chat_stream", conversation=conversation.id, input="What was the code?")
    assert sent_history(upstream) == [("assistant", "Noted: the code is 4711."), ("user", "What was the code?")]


def test_tool_calls_and_their_outputs_join_the_conversation(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """`llm` hands the LLM's tool call to the client; the client answers in the same conversation with its output."""
    conversation = client.conversations.create()
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    upstream.script(text="", tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": '{"city":"Oslo"}'}])
    asked = client.responses.create(model="llm", conversation=conversation.id, input="Weather?", tools=[tool])  # type: ignore[list-item]
    call = asked.output[0]
    assert call.type == "function_call"
    upstream.script(text="Rainy in Oslo.")
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "rain, 9 C"}
    answer = client.responses.create(model="llm", conversation=conversation.id, input=[output], tools=[tool])  # type: ignore[list-item]
    assert answer.output_text == "Rainy in Oslo."
    sent = upstream.requests[-1]["messages"]
    assert [call["id"] for m in sent for call in m.get("tool_calls") or []] == ["call_w"]
    assert [(m["role"], m["content"]) for m in sent if m["role"] == "tool"] == [("tool", "rain, 9 C")]
    kinds = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_store_false_still_continues_the_conversation(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """`store` is about the response object; the conversation is what the client asked to keep."""
    conversation = client.conversations.create()
    upstream.script(text="Kept in the conversation only.")
    response = client.responses.create(model="chat_stream", conversation=conversation.id, input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert item_texts(client, conversation.id) == [("user", "Hi"), ("assistant", "Kept in the conversation only.")]


def test_an_incomplete_response_is_appended(
    client: openai.OpenAI, conversations_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Cut at the length limit, the response still ended: what the model said is the conversation's next turn."""
    conversation = client.conversations.create()
    upstream.script(text="Cut sh", finish_reason="length")
    events = stream_events(conversations_service, {"model": "llm", "input": "Go on", "conversation": conversation.id})
    assert events[-1]["type"] == "response.incomplete"
    assert item_texts(client, conversation.id) == [("user", "Go on"), ("assistant", "Cut sh")]


def test_a_failed_response_appends_nothing(
    client: openai.OpenAI, conversations_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """The conversation stays as it was, so the client can send the turn again."""
    conversation = client.conversations.create(items=[{"role": "user", "content": "Before."}])
    upstream.script(status=400, error_message="the LLM refuses")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="llm", conversation=conversation.id, input="Lost?")
    upstream.script(text="Half of an answer", error_event_after=2)
    body = {"model": "llm", "input": "Lost too?", "conversation": conversation.id}
    assert stream_events(conversations_service, body)[-1]["type"] == "response.failed"
    assert item_texts(client, conversation.id) == [("user", "Before.")]


# Refused requests: method, path, body, then the status, `param` and `code` of the error. CONV is a conversation
# holding one item, HELD that item's id, PREVIOUS a stored response.
REFUSED: list[tuple[str, str, Any, int, str | None, str | None]] = [
    ("POST", "/v1/responses", {"model": "chat_stream", "input": "x", "conversation": "conv_nope"}, 404, "conversation", None),
    ("POST", "/v1/responses", {"model": "chat_stream", "input": "x", "conversation": {"name": "x"}}, 400, "conversation", None),
    ("POST", "/v1/responses", {"model": "chat_stream", "input": "x", "conversation": "CONV", "previous_response_id": "PREVIOUS"},
     400, "conversation", "mutually_exclusive_parameters"),
    ("POST", "/v1/responses", {"model": "chat_stream", "conversation": "CONV", "input": [{"type": "message", "id": "HELD", "role": "user", "content": "x"}]},
     400, "input", "duplicate_item"),
    ("POST", "/v1/responses", {"model": "chat_stream", "conversation": "CONV", "input": [{"type": "web_search_call", "id": "ws_1"}]},
     400, "input[0]", None),
    ("GET", "/v1/conversations/conv_nope", None, 404, "conversation_id", None),
    ("POST", "/v1/conversations/conv_nope", {"metadata": {}}, 404, "conversation_id", None),
    ("DELETE", "/v1/conversations/conv_nope", None, 404, "conversation_id", None),
    ("GET", "/v1/conversations/conv_nope/items", None, 404, "conversation_id", None),
    ("POST", "/v1/conversations/conv_nope/items", {"items": []}, 404, "conversation_id", None),
    ("GET", "/v1/conversations/CONV/items/msg_nope", None, 404, "item_id", None),
    ("DELETE", "/v1/conversations/CONV/items/msg_nope", None, 404, "item_id", None),
    ("POST", "/v1/conversations", {"metadata": {"k": 1}}, 400, "metadata.k", None),
    ("POST", "/v1/conversations", {"items": "Hi"}, 400, "items", None),
    ("POST", "/v1/conversations", {"items": [{"role": "user", "content": "x"}] * 21}, 400, "items", None),
    ("POST", "/v1/conversations", {"items": [{"role": "robot", "content": "x"}]}, 400, "items[0].role", None),
    ("POST", "/v1/conversations", {"items": [{"role": "user", "content": [{"type": "input_text"}]}]},
     400, "items[0].content[0].text", None),
    ("POST", "/v1/conversations", "{", 400, None, "invalid_json"),
    ("POST", "/v1/conversations/CONV", {}, 400, "metadata", None),
    ("POST", "/v1/conversations/CONV/items", {}, 400, "items", None),
    ("POST", "/v1/conversations/CONV/items", {"items": [{"role": "user", "content": "x", "id": "HELD"}]},
     400, "items", "duplicate_item"),
    ("GET", "/v1/conversations/CONV/items?limit=101", None, 400, "limit", None),
    ("GET", "/v1/conversations/CONV/items?order=newest", None, 400, "order", None),
    ("GET", "/v1/conversations/CONV/items?after=msg_nope", None, 400, "after", None),
    ("GET", "/v1/conversations/CONV/items?include=everything", None, 400, "include", None),
]  # fmt: skip


def test_what_openai_refuses_is_refused(conversations_service: ServiceProcess, client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "Hi"}])
    names = {
        "CONV": conversation.id,
        "HELD": client.conversations.items.list(conversation.id).data[0].id,
        "PREVIOUS": client.responses.create(model="chat_stream", input="Alone").id,
    }

    def filled(text: str) -> str:
        for name, value in names.items():
            text = text.replace(name, value)
        return text

    with conversations_service.http() as http:
        for method, path, body, status, param, code in REFUSED:
            content = None if body is None else filled(body if isinstance(body, str) else json.dumps(body))
            headers = {"Content-Type": "application/json"}
            reply = http.request(method, filled(path), content=content, headers=headers)
            assert_error(reply, status, param=param, code=code)
            assert reply.headers["x-should-retry"] == "false"
        assert http.post("/v1/conversations").status_code == 200, "the body is optional"
    assert len(client.conversations.items.list(conversation.id).data) == 1, "nothing refused was added"


def test_a_conversation_holds_what_one_request_could_send(test_service: ServiceProcess) -> None:
    """Its bounds are MAX_INPUT_ITEMS items and MAX_BODY_BYTES (100 kB for test_service) of them."""
    client = test_service.client()
    conversation = client.conversations.create()
    items: list[Any] = [{"role": "user", "content": "x" * 4000} for _ in range(20)]
    client.conversations.items.create(conversation.id, items=items)
    with pytest.raises(openai.BadRequestError) as raised:
        client.conversations.items.create(conversation.id, items=items)
    assert raised.value.code == "conversation_too_large" and "MAX_BODY_BYTES" in raised.value.message
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="responses_only", conversation=conversation.id, input="x" * 25_000)
    assert raised.value.code == "conversation_too_large"
    assert len(client.conversations.items.list(conversation.id, limit=100).data) == 20

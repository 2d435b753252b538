"""`POST /v1/responses/compact`: a conversation shortened to its user messages and one compaction item, and the
item expanded into its summary when a later request sends it back, on any process sharing the store.

The passthrough model `llm` has no `run_compaction`: the service asks it for a summary, through the scripted
upstream, so the tests see what the LLM was asked and what it is given afterwards. The test wrapper `compacts`
writes its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import openresponses_types

from openai_schema import validate
from support import ServiceProcess, assert_error, base_env
from upstream import ScriptedUpstream

SUMMARY = "The user plans a trip to Oslo in May; trains were compared, the night train was chosen."
CONVERSATION = [
    {"type": "message", "role": "user", "content": "Plan a trip to Oslo in May."},
    {"type": "message", "role": "assistant", "content": "Night train or plane? The train takes 20 hours."},
    {"type": "message", "role": "user", "content": "The night train, please."},
]


def compact(service: ServiceProcess, **body: Any) -> dict[str, Any]:
    """The raw CompactResource from the SDK's `responses.compact`, checked against both specs."""
    raw = service.client().responses.with_raw_response.compact(**body)
    resource = raw.parse()
    assert resource.object == "response.compaction"
    data = raw.http_response.json()
    validate(data, "CompactResource")
    openresponses_types.CompactResource.model_validate_json(json.dumps(data), strict=True)
    return data


def messages_sent(upstream: ScriptedUpstream, index: int = -1) -> list[tuple[str, str]]:
    """(role, text) of each message the LLM was sent in one request."""
    return [
        (m["role"], m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content")))
        for m in upstream.requests[index]["messages"]
    ]


def test_compact_keeps_the_user_messages_and_stores_the_summary(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script(text=SUMMARY, usage=(40, 12))
    resource = compact(
        service, model="llm", input=CONVERSATION, extra_body={"tools": [{"type": "function", "name": "f"}]}
    )
    *kept, item = resource["output"]
    assert [(m["role"], m["content"][0]["text"]) for m in kept] == [
        ("user", "Plan a trip to Oslo in May."),
        ("user", "The night train, please."),
    ]
    assert item["type"] == "compaction" and item["encrypted_content"] and item["id"].startswith("cmp_")
    assert set(item) == {"type", "id", "encrypted_content"}, "the summary itself stays in the store"
    assert SUMMARY not in json.dumps(resource)
    with service.http() as http:
        stored = http.get(f"/v1/responses/{resource['id']}").json()
    assert stored["output"] == [item], "the stored record shows the item, the summary is its input"
    assert resource["usage"]["input_tokens"] == 40 and resource["usage"]["output_tokens"] == 12
    # The LLM was asked for a summary of the whole conversation, without the client's tools.
    (asked,) = upstream.requests
    sent = messages_sent(upstream)
    assert ("assistant", "Night train or plane? The train takes 20 hours.") in sent
    assert sent[-1][0] == "user" and "Summarise the conversation" in sent[-1][1]
    assert not asked.get("tools")


def test_the_next_request_continues_from_the_summary(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text=SUMMARY)
    resource = compact(service, model="llm", input=CONVERSATION)
    upstream.script(text="Booked.")
    client = service.client()
    answer = client.responses.create(
        model="llm", input=[*resource["output"], {"role": "user", "content": "Book it."}], store=False
    )
    assert answer.output_text == "Booked."
    sent = messages_sent(upstream)
    assert [role for role, _ in sent] == ["user", "user", "user", "user"]
    assert sent[0][1] == "Plan a trip to Oslo in May." and sent[1][1] == "The night train, please."
    assert SUMMARY in sent[2][1], "the compaction item became its summary"
    assert sent[3][1] == "Book it."
    assert all("20 hours" not in text for _, text in sent), "the older turns are gone"


def test_the_item_is_found_by_its_encrypted_content_alone(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text=SUMMARY)
    *_, item = compact(service, model="llm", input=CONVERSATION)["output"]
    upstream.script(text="Yes.")
    bare = {"type": "compaction", "encrypted_content": item["encrypted_content"]}
    service.client().responses.create(model="llm", input=[bare, {"role": "user", "content": "Still there?"}])
    assert SUMMARY in messages_sent(upstream)[0][1]


def test_a_custom_run_compaction_writes_the_summary(test_service: ServiceProcess) -> None:
    resource = compact(test_service, model="compacts", input=CONVERSATION)
    answer = test_service.client().responses.create(
        model="compacts", input=[*resource["output"], {"role": "user", "content": "Go on."}]
    )
    lines = answer.output_text.splitlines()
    assert lines[0] == "user: Plan a trip to Oslo in May." and lines[1] == "user: The night train, please."
    assert lines[2].startswith("user: Summary of the earlier part") and lines[2].endswith("Custom summary of 3 items.")
    assert lines[3:] == ["user: Go on."]


def test_compacting_again_summarises_the_earlier_summary(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """A second compaction is written from the first summary and what followed; the first summary is not kept
    verbatim, as the user messages are."""
    upstream.script(text=SUMMARY)
    first = compact(service, model="llm", input=CONVERSATION)
    upstream.script(text="Second summary.")
    later = [
        *first["output"],
        {"role": "assistant", "content": "Booked seat 42."},
        {"role": "user", "content": "Thanks"},
    ]
    second = compact(service, model="llm", input=later)
    assert SUMMARY in json.dumps(messages_sent(upstream)), "the first summary went into the second"
    assert [m["content"][0]["text"] for m in second["output"][:-1]] == [
        "Plan a trip to Oslo in May.",
        "The night train, please.",
        "Thanks",
    ]
    assert second["output"][-1]["id"] != first["output"][-1]["id"]


def test_an_unknown_or_deleted_compaction_is_a_400(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text=SUMMARY)
    resource = compact(service, model="llm", input=CONVERSATION)
    with service.http() as http:
        unknown = {"type": "compaction", "encrypted_content": "made-elsewhere"}
        reply = http.post("/v1/responses", json={"model": "llm", "input": [{"role": "user", "content": "Hi"}, unknown]})
        error = assert_error(
            reply, 400, err_type="invalid_request_error", param="input[1]", code="compaction_not_found"
        )
        assert "compaction" in error["message"]
        assert http.delete(f"/v1/responses/{resource['id']}").status_code == 200  # as when it expires
        reply = http.post("/v1/responses", json={"model": "llm", "input": resource["output"]})
        assert_error(reply, 400, param=f"input[{len(resource['output']) - 1}]", code="compaction_not_found")
    assert len(upstream.requests) == 1, "no run for a request that was refused"


def test_bad_compact_requests(service: ServiceProcess) -> None:
    client = service.client()
    with service.http() as http:
        assert_error(http.post("/v1/responses/compact", json={"input": "hi"}), 400, param="model")
        assert_error(http.post("/v1/responses/compact", json={"model": "llm"}), 400, param="input")
        reply = http.post("/v1/responses/compact", json={"model": "llm", "previous_response_id": "resp_none"})
        assert_error(reply, 400, param="previous_response_id", code="previous_response_not_found")
    try:
        client.responses.compact(model="no-such-model", input="hi")
    except openai.NotFoundError as error:
        assert error.code == "model_not_found"
    else:
        raise AssertionError("an unknown model is a 404")


def test_a_replica_sharing_the_store_expands_the_item(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    """Compacted on one process, continued on another: the summary is found in the store they share (SQLite in
    one DATA_DIR), not in the memory of the process that wrote it."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        DATA_DIR=str(tmp_path / "shared-data"),
    )
    first, second = (ServiceProcess(name, tmp_path / name, env) for name in ("compacts_here", "continues_there"))
    try:
        first.start()
        second.start()
        upstream.script(text=SUMMARY)
        resource = compact(first, model="llm", input=CONVERSATION)
        upstream.script(text="Continued elsewhere.")
        answer = second.client().responses.create(
            model="llm", input=[*resource["output"], {"role": "user", "content": "And then?"}], store=False
        )
        assert answer.output_text == "Continued elsewhere."
        assert SUMMARY in messages_sent(upstream)[2][1]
    finally:
        first.stop()
        second.stop()

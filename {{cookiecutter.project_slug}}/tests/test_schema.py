"""What the service sends validates against OpenAI's own published schemas (OPENAI_OPENAPI_SPEC)."""

from __future__ import annotations

import json

import pytest

from openai_schema import require_spec, validate
from support import ServiceProcess, stream_raw, user
from upstream import ScriptedUpstream

pytestmark = pytest.mark.usefixtures("spec")


@pytest.fixture(scope="module")
def spec() -> None:
    """Skip the whole module, with the reason, when the spec is not configured."""
    require_spec()


@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
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

"""openai_generator.py's ReasoningOpenAIChatGenerator against the scripted upstream: it sends what the SDK would send.

It posts the request Haystack prepared without the SDK's transform (a speed-up, measured in bench/), so
the upstream must receive the same body and headers as from Haystack's own OpenAIChatGenerator.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import openai
import pytest
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, ImageContent, StreamingChunk, ToolCall
from haystack.tools import Tool
from haystack.utils import Secret

from {{ cookiecutter.project_slug }}.engine.generators.openai_generator import (
    ReasoningOpenAIChatGenerator,
    also_as_max_tokens,
)

from support import CLIENT_TIMEOUT
from upstream import ScriptedUpstream

LOOKUP = ToolCall(id="call_1", tool_name="lookup", arguments={"city": "Berlin"})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()
CONVERSATION = [
    ChatMessage.from_system("Be brief."),
    ChatMessage.from_user(
        content_parts=["What is in this picture?", ImageContent(base64_image=PNG, mime_type="image/png")]
    ),
    ChatMessage.from_assistant(text="Let me look it up.", tool_calls=[LOOKUP]),
    ChatMessage.from_tool("Sunny", origin=LOOKUP),
    ChatMessage.from_user("And tomorrow?"),
]
LOOKUP_TOOL = Tool(
    name="lookup",
    description="Weather by city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    function=lambda city: "Sunny",
)
GENERATION_KWARGS = {
    "temperature": 0.2,
    "max_tokens": 64,
    "stop": ["\n\n"],
    "extra_body": {"top_k": 3},
    "extra_headers": {"X-Request-Tag": "tagged"},
    "timeout": CLIENT_TIMEOUT,
}
# Headers that differ between two clients by design (retry counters, timings) or that httpx sets per request.
VARYING_HEADERS = {"x-stainless-retry-count", "x-stainless-read-timeout", "content-length"}


def _generator(kind: type[OpenAIChatGenerator], upstream: ScriptedUpstream, **kwargs: Any) -> OpenAIChatGenerator:
    return kind(
        api_key=Secret.from_token("upstream-key"),
        model="scripted-model",
        api_base_url=f"{upstream.base_url}/v1",
        max_retries=0,
        tools=[LOOKUP_TOOL],
        **kwargs,
    )


def _run(generator: OpenAIChatGenerator, run_async: bool, stream: bool, **kwargs: Any) -> dict[str, Any]:
    chunks: list[StreamingChunk] = []
    if run_async:

        async def collect(chunk: StreamingChunk) -> None:
            chunks.append(chunk)

        callback = collect if stream else None
        result = asyncio.run(generator.run_async(CONVERSATION, streaming_callback=callback, **kwargs))
    else:
        result = generator.run(CONVERSATION, streaming_callback=chunks.append if stream else None, **kwargs)
    if stream:
        assert "".join(chunk.content for chunk in chunks) == result["replies"][0].text
    return result


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_upstream_receives_what_haystacks_own_generator_sends(
    upstream: ScriptedUpstream, run_async: bool, stream: bool
) -> None:
    """Same body (with `stream_options` added when streaming) and the same headers, extra_* options included."""
    upstream.script(text="Sunny again.")
    upstream.script(text="Sunny again.")
    ours = _run(
        _generator(ReasoningOpenAIChatGenerator, upstream), run_async, stream, generation_kwargs=GENERATION_KWARGS
    )
    haystacks = _run(_generator(OpenAIChatGenerator, upstream), run_async, stream, generation_kwargs=GENERATION_KWARGS)

    assert ours["replies"][0].text == haystacks["replies"][0].text == "Sunny again."
    ours_body, haystacks_body = upstream.requests
    if stream:
        assert ours_body.pop("stream_options") == {"include_usage": True}
    assert ours_body == haystacks_body
    assert ours_body["top_k"] == 3  # extra_body reached the body
    assert [message["role"] for message in ours_body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    ours_headers, haystacks_headers = (
        {name: value for name, value in headers.items() if name not in VARYING_HEADERS}
        for headers in upstream.request_headers
    )
    assert ours_headers == haystacks_headers
    assert ours_headers["x-request-tag"] == "tagged"
    assert ours_headers["authorization"] == "Bearer upstream-key"


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_a_request_only_the_sdk_can_encode_still_goes_through_it(upstream: ScriptedUpstream, run_async: bool) -> None:
    """The SDK drops an `omit` value while encoding; posted as it is, it could not be sent at all."""
    upstream.script(text="Fine.")
    result = _run(
        _generator(ReasoningOpenAIChatGenerator, upstream),
        run_async,
        stream=True,
        generation_kwargs={"seed": openai.omit, "temperature": 0.5},
    )
    assert result["replies"][0].text == "Fine."
    (body,) = upstream.requests
    assert "seed" not in body
    assert body["temperature"] == 0.5


@pytest.mark.parametrize(
    ("base_url", "both_names"),
    [
        ("https://api.openai.com/v1", False),  # refuses `max_tokens` for its reasoning models
        ("https://my-team.openai.azure.com/openai/v1", False),
        ("http://127.0.0.1:8000/v1", True),  # llama-cpp-python's server reads only `max_tokens`
        ("http://localhost:11434/v1", True),  # Ollama too
        ("https://api.openai.com.example.net/v1", True),
    ],
)
def test_a_length_limit_goes_under_both_names_to_every_server_but_openais(base_url: str, both_names: bool) -> None:
    assert also_as_max_tokens(base_url) is both_names

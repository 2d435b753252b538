"""`include_outputs_from` in the streaming helpers: `on_pipeline_end` gets the outputs of the components it names.

A retrieval pipeline (retriever, prompt, LLM) lists the documents its retriever found as sources after the
streamed answer, from the sync helper (on the event loop, and pulled in a thread of its own) and the async
one; `test_fast_paths.py` runs the same models by the general path.
"""

from __future__ import annotations

import pytest

from support import ServiceProcess, stream_raw, user
from test_wrappers.sources_stream import SOURCES_HEADING
from upstream import ScriptedUpstream

SOURCE_MODELS = pytest.mark.parametrize("model", ["sources_stream", "sources_stream_async", "sources_stream_pulled"])
QUESTION = "How do I reset my password?"
EXPECTED_SOURCES = SOURCES_HEADING + "faq.md, manual.pdf"


def assert_answer_lists_sources(service: ServiceProcess, upstream: ScriptedUpstream, model: str) -> None:
    upstream.script(text="Open Settings.")
    with service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": model, "messages": user(QUESTION), "stream": True})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks() if c["choices"])
    assert text == "Open Settings." + EXPECTED_SOURCES
    assert sse.data[-1] == "[DONE]"
    prompt = upstream.requests[-1]["messages"][-1]["content"]
    assert "A password reset link expires" in prompt and "Bananas" not in prompt, prompt


@SOURCE_MODELS
def test_streamed_answer_lists_the_retrieved_sources(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    assert_answer_lists_sources(test_service, upstream, model)


@SOURCE_MODELS
def test_answer_without_streaming_lists_them_too(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    upstream.script(text="Open Settings.")
    completion = test_service.client().chat.completions.create(model=model, messages=user(QUESTION))
    assert completion.choices[0].message.content == "Open Settings." + EXPECTED_SOURCES

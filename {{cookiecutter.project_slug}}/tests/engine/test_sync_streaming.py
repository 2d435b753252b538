"""`streaming.streaming_generator` in sync wrappers: a Pipeline and an Agent, by each path a stream can take.

`sync_pipeline_stream` returns the generator of a lone LLM as it is, so the service runs it on the event
loop; `sync_pipeline_stream_stepped` puts a sync component before the LLM, and still streams on the event
loop (`Pipeline.stream`); `sync_pipeline_stream_threaded` has an LLM that streams only synchronously, so
the pipeline runs in the worker thread and pushes its pieces from there; `sync_pipeline_stream_pulled`
iterates the generator itself, so the pipeline runs in a thread of its own. Likewise `sync_agent_stream`
runs its Agent on the event loop, and `sync_agent_stream_threaded` (a sync-only chat generator) in the
worker thread.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from support import ServiceProcess, stream_raw, user, wait_until
from test_wrappers.sync_pipeline_stream_stepped import STEP_THREAD_NOTE
from upstream import ScriptedUpstream

PIPELINE_PATHS = [
    "sync_pipeline_stream",
    "sync_pipeline_stream_stepped",
    "sync_pipeline_stream_threaded",
    "sync_pipeline_stream_pulled",
]
EVERY_PATH = pytest.mark.parametrize("model", PIPELINE_PATHS)
AGENT_PATHS = ["sync_agent_stream", "sync_agent_stream_threaded"]


@EVERY_PATH
def test_pipeline_streams_text_reasoning_and_usage(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    upstream.script(reasoning="Short thought.", text="A sync pipeline, streamed.", usage=(9, 4))
    with test_service.http() as http:
        _, sse = stream_raw(
            http,
            "/v1/chat/completions",
            {
                "model": model,
                "messages": user("Hi"),
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    chunks = sse.chunks()
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "Short thought."
    assert "".join(d.get("content") or "" for d in deltas) == "A sync pipeline, streamed."
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


@EVERY_PATH
def test_pipeline_non_stream_drains_the_generator(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    upstream.script(text="Drained into one message.", usage=(2, 3))
    completion = test_service.client().chat.completions.create(model=model, messages=user("Hi"))
    assert completion.choices[0].message.content == "Drained into one message."
    assert completion.usage is not None and completion.usage.total_tokens == 5


@pytest.mark.parametrize(
    ("model", "step_thread"),
    [("sync_pipeline_stream_stepped", "step_"), ("sync_pipeline_stream_threaded", "wrapper_")],
)
def test_where_the_sync_steps_of_a_streamed_pipeline_run(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str, step_thread: str
) -> None:
    """With an LLM that streams asynchronously, the stream leaves the wrapper's thread: a sync step before the
    LLM runs in the service's step pool. With a sync-only LLM, the whole pipeline runs in the wrapper's thread."""
    upstream.script(text="Streamed.")
    with test_service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": model, "messages": user("Hi"), "stream": True})
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks() if c["choices"]) == "Streamed."
    note = upstream.requests[-1]["messages"][0]["content"]
    assert note.startswith(STEP_THREAD_NOTE + step_thread), note


def test_callbacks_of_a_sync_wrapper_run_off_the_event_loop(
    test_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """A sync wrapper's callbacks may block: its LLM streams on the event loop, its callbacks run in threads."""
    upstream.script(reasoning="Thinking.", text="Streamed.")
    completion = test_service.client().chat.completions.create(
        model="sync_pipeline_stream_callback", messages=user("Hi")
    )
    text = completion.choices[0].message.content or ""
    in_threads = r"(\[on_reasoning ran in step_\d+\] )+Streamed\. \[on_pipeline_end ran in step_\d+\]"
    assert re.fullmatch(in_threads, text), text


@pytest.mark.parametrize("model", AGENT_PATHS)
def test_agent_callbacks_inject_text_and_tool_calls_stay_inside(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    """on_tool_call_start / on_tool_call_end return text that lands in the answer; no tool_calls leave."""
    upstream.script(text="", tool_calls=[{"id": "call_n", "name": "get_secret_number", "arguments": "{}"}])
    upstream.script(text="The number is 42.")
    with test_service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", {"model": model, "messages": user("Number?"), "stream": True})
    deltas = [c["choices"][0]["delta"] for c in sse.chunks() if c["choices"]]
    assert not any("tool_calls" in d for d in deltas)
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "[calling get_secret_number {}][get_secret_number -> 42]The number is 42."
    finish = [c["choices"][0]["finish_reason"] for c in sse.chunks() if c["choices"]]
    assert [f for f in finish if f] == ["stop"]
    tool_results = [m for m in upstream.requests[1]["messages"] if m["role"] == "tool"]
    assert [json.loads(json.dumps(m["content"])) for m in tool_results] == ["42"]


@pytest.mark.parametrize(
    ("model", "tool_thread"),
    [("sync_agent_stream", r"step_\d+"), ("sync_agent_stream_threaded", r"ThreadPoolExecutor-\d+_\d+")],
)
def test_where_the_tools_of_a_sync_wrappers_agent_run(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str, tool_thread: str
) -> None:
    """An Agent whose LLM streams asynchronously runs on the event loop and its sync tool in the service's step
    pool; with a sync-only LLM, `Agent.run` runs the tool in a pool of Haystack's own, off the step pool."""
    upstream.script(text="", tool_calls=[{"id": "call_t", "name": "name_your_thread", "arguments": "{}"}])
    upstream.script(text="Done.")
    completion = test_service.client().chat.completions.create(model=model, messages=user("Which thread?"))
    text = completion.choices[0].message.content or ""
    expected = re.escape("[calling name_your_thread {}][name_your_thread -> ") + tool_thread + re.escape("]Done.")
    assert re.fullmatch(expected, text), text


@pytest.mark.parametrize("model", PIPELINE_PATHS + AGENT_PATHS)
def test_disconnect_stops_reading_the_upstream(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    """The sync run is told to stop at its next chunk, and the upstream connection is closed right away."""
    words = " ".join(f"word{i}" for i in range(300))
    upstream.script(text=words, token_delay=0.05)
    body = {"model": model, "messages": user("Talk a lot"), "stream": True}
    with (
        httpx.Client(base_url=test_service.base_url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if '"content"' in line:
                break
    stream = wait_until(lambda: upstream.streams[0] if upstream.streams else None)
    assert wait_until(lambda: stream.disconnected, timeout=10), "the upstream never saw the service hang up"
    assert not stream.completed
    assert stream.tokens_sent < 40, f"{stream.tokens_sent} of {stream.planned_chunks} chunks sent"

"""STREAMING_FAST_PATHS=off: every run of the streaming helpers takes the general path, and streams the same.

With the fast paths on (`test_service`), a sync wrapper whose LLM streams asynchronously runs on the event loop
(its sync steps in asyncio's pool, threads named `step_*`), and a lone async LLM is called without `Pipeline`'s
scheduling. Off, the first runs in the service's worker thread (`wrapper_*`) and the second through
`Pipeline.stream`; the answers, usage and sources are the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import ServiceProcess, env_for_test_wrappers, stream_raw, user
from test_include_outputs import assert_answer_lists_sources
from test_wrappers.lone_llm_inputs import AS_GIVEN, COPIED
from test_wrappers.sync_pipeline_stream_stepped import STEP_THREAD_NOTE
from upstream import ScriptedUpstream


@pytest.fixture(scope="module")
def general_path_service(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The test wrappers with the streaming helpers' fast paths off."""
    env = env_for_test_wrappers(upstream.base_url, tmp_path_factory.mktemp("general_state"), STREAMING_FAST_PATHS="off")
    service = ServiceProcess(name="general_path_service", workdir=tmp_path_factory.mktemp("general"), env=env)
    yield service.start()
    service.stop()


def streamed_text(service: ServiceProcess, model: str) -> tuple[str, dict | None]:
    body = {"model": model, "messages": user("Hi"), "stream": True, "stream_options": {"include_usage": True}}
    with service.http() as http:
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    chunks = sse.chunks()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return text, chunks[-1].get("usage")


@pytest.mark.parametrize("model", ["sync_pipeline_stream", "sync_pipeline_stream_stepped", "sync_agent_stream"])
def test_general_path_streams_text_and_usage(
    general_path_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    upstream.script(text="By the general path.", usage=(7, 3))
    text, usage = streamed_text(general_path_service, model)
    assert text == "By the general path."
    assert usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


@pytest.mark.parametrize(("service_name", "step_thread"), [("test_service", "step_"), ("general", "wrapper_")])
def test_sync_run_leaves_the_event_loop_only_when_fast_paths_are_off(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, service_name: str, step_thread: str
) -> None:
    """The stepped pipeline's sync step runs where the run runs: asyncio's pool on the loop, else the worker."""
    service = request.getfixturevalue("general_path_service" if service_name == "general" else service_name)
    upstream.script(text="Streamed.")
    text, _ = streamed_text(service, "sync_pipeline_stream_stepped")
    assert text == "Streamed."
    note = upstream.requests[-1]["messages"][0]["content"]
    assert note.startswith(STEP_THREAD_NOTE + step_thread), note


@pytest.mark.parametrize(("service_name", "answer"), [("test_service", AS_GIVEN), ("general", COPIED)])
def test_lone_llm_goes_through_the_pipeline_only_when_fast_paths_are_off(
    request: pytest.FixtureRequest, service_name: str, answer: str
) -> None:
    service = request.getfixturevalue("general_path_service" if service_name == "general" else service_name)
    text, _ = streamed_text(service, "lone_llm_inputs")
    assert text == answer


@pytest.mark.parametrize("model", ["sources_stream", "sources_stream_async", "sources_stream_pulled"])
def test_general_path_passes_include_outputs_from(
    general_path_service: ServiceProcess, upstream: ScriptedUpstream, model: str
) -> None:
    assert_answer_lists_sources(general_path_service, upstream, model)

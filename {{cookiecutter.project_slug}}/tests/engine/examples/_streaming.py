"""Streaming helpers for your wrappers. This file is yours: read it, edit it.

`streaming_generator` (for `run_chat_completion`) and `async_streaming_generator` (for the
`_async` methods) run a Haystack `Pipeline` or `Agent` and yield what it streams, ready to return
from a wrapper:

    def run_chat_completion(self, model, messages, body):
        return streaming_generator(
            pipeline=self.pipeline,
            pipeline_run_args={"prompt_builder": {"question": get_last_user_message(messages)}},
        )

For a Pipeline, give `pipeline_run_args` per component, as in `Pipeline.run`; for an Agent, give
`Agent.run`'s keyword arguments (`{"messages": [...]}`). How the run is scheduled (on the event loop,
in a worker thread) is the service's business: see `engine/runs/pipeline_runs.py`.

Callbacks let you react to what happens inside the run. Each may return text or events (or a
list of them) to put into the stream at that point, or None:

- `on_tool_call_start(name, arguments, id)`: the LLM asked for a tool call that runs here (arguments: JSON).
- `on_tool_call_end(name, arguments, result, error)`: a tool the agent runs itself has answered.
  By default these two show the agent's tool calls the way the client shows them, when its client
  adapter knows how (see `engine/clients/adapter.py`): in Open WebUI, a status while the tool runs, then a block with its
  arguments and result; other clients get nothing. Pass None to show nothing, or your own functions.
- `on_reasoning(text, extra)`: a piece of the model's reasoning. Without this callback the
  reasoning is passed on as reasoning; with it, what you return replaces it.
- `on_pipeline_end(result)`: the run's final output, when everything has streamed; with
  `include_outputs_from={"retriever"}` it holds that component's output too (the documents, to list sources).

Tool calls that an Agent runs itself are internal: they are never sent to the client as tool
calls, or an agentic client such as Codex would run them again, and loop. The tool calls of a
pipeline without an Agent are for the client to run (tools it declared), so they are forwarded,
and the client shows them: `on_tool_call_start` is not called for them. Force either with
`forward_tool_calls=True` or `False`.
"""

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from haystack import Pipeline
from haystack.components.agents import Agent
from haystack.dataclasses import StreamingChunk

from {{ cookiecutter.project_slug }}.engine import (
    Event,
    Piece,
    PipelineStream,
    StreamedToolCalls,
    current_client,
    pieces_on_loop,
    usage_from,
    usage_from_result,
)

Injected = str | Event | list[str | Event] | None
OnToolCallStart = Callable[[str, str, str | None], Injected]
OnToolCallEnd = Callable[[str, str, str, bool], Injected]
OnReasoning = Callable[[str, dict[str, Any]], Injected]
OnPipelineEnd = Callable[[dict[str, Any]], Injected]


def show_tool_call_start(name: str, arguments: str, call_id: str | None) -> Injected:
    """The default `on_tool_call_start`: the client's own display, when its adapter has one."""
    client = current_client()
    return client.show_tool_call_start(name, arguments, call_id) if client is not None else None


def show_tool_call_end(name: str, arguments: str, result: str, error: bool) -> Injected:
    """The default `on_tool_call_end`: the client's own display, when its adapter has one."""
    client = current_client()
    return client.show_tool_call_end(name, arguments, result, error) if client is not None else None


def streaming_generator(
    pipeline: Pipeline | Agent,
    pipeline_run_args: dict[str, Any],
    *,
    on_tool_call_start: OnToolCallStart | None = show_tool_call_start,
    on_tool_call_end: OnToolCallEnd | None = show_tool_call_end,
    on_reasoning: OnReasoning | None = None,
    on_pipeline_end: OnPipelineEnd | None = None,
    forward_tool_calls: bool | None = None,
    include_outputs_from: set[str] | None = None,
) -> Iterator[Piece]:
    """Run `pipeline` and yield its chunks as they arrive.

    `include_outputs_from` names components whose outputs `on_pipeline_end` gets besides the final ones, as
    in `Pipeline.run`; an Agent refuses it (its result holds all it has: the messages, the tool results).
    """
    shaper = ChunkShaper(on_tool_call_start, on_tool_call_end, on_reasoning, on_pipeline_end)
    shaper.forward_tool_calls = _forwards_tool_calls(pipeline, forward_tool_calls)
    shaper.callbacks_may_block = True  # a sync wrapper's: if the run goes to the event loop, they do not
    return PipelineStream(pipeline, pipeline_run_args, shaper, _checked_outputs(pipeline, include_outputs_from))


def async_streaming_generator(
    pipeline: Pipeline | Agent,
    pipeline_run_args: dict[str, Any],
    *,
    on_tool_call_start: OnToolCallStart | None = show_tool_call_start,
    on_tool_call_end: OnToolCallEnd | None = show_tool_call_end,
    on_reasoning: OnReasoning | None = None,
    on_pipeline_end: OnPipelineEnd | None = None,
    forward_tool_calls: bool | None = None,
    include_outputs_from: set[str] | None = None,
) -> AsyncIterator[Piece]:
    """Run `pipeline` on the event loop and yield its chunks; stopping the iteration cancels the run."""
    shaper = ChunkShaper(on_tool_call_start, on_tool_call_end, on_reasoning, on_pipeline_end)
    shaper.forward_tool_calls = _forwards_tool_calls(pipeline, forward_tool_calls)
    return pieces_on_loop(pipeline, pipeline_run_args, shaper, _checked_outputs(pipeline, include_outputs_from))


def _checked_outputs(pipeline: Pipeline | Agent, include_outputs_from: set[str] | None) -> set[str] | None:
    if include_outputs_from and isinstance(pipeline, Agent):
        raise TypeError("include_outputs_from is for a Pipeline: an Agent's result already holds all of its output")
    return include_outputs_from


def _forwards_tool_calls(pipeline: Pipeline | Agent, forward_tool_calls: bool | None) -> bool:
    """Unless told otherwise, forward tool calls only when no Agent is there to run them."""
    if forward_tool_calls is not None:
        return forward_tool_calls
    if isinstance(pipeline, Agent):
        return False
    return not any(isinstance(instance, Agent) for _, instance in pipeline.walk())


def _injected(value: Injected) -> list[Piece]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


class ChunkShaper:
    """Applies the callbacks and the tool-call rule to each chunk, and notes whether usage streamed.

    The engine's `ChunkPolicy`: it calls `pieces`, `finish` and `may_block`, so keep those three with their
    meaning when you reshape this class; the rest is yours.
    """

    def __init__(
        self,
        on_tool_call_start: OnToolCallStart | None,
        on_tool_call_end: OnToolCallEnd | None,
        on_reasoning: OnReasoning | None,
        on_pipeline_end: OnPipelineEnd | None,
    ) -> None:
        self.on_tool_call_start = on_tool_call_start
        self.on_tool_call_end = on_tool_call_end
        self.on_reasoning = on_reasoning
        self.on_pipeline_end = on_pipeline_end
        self.forward_tool_calls = False
        # True for a sync wrapper's callbacks: on the event loop, each call of one then runs in a thread.
        self.callbacks_may_block = False
        self.calls_being_streamed = StreamedToolCalls()
        self.saw_usage = False

    def may_block(self, chunk: StreamingChunk | None) -> bool:
        """Whether `pieces(chunk)` (`finish` for None) may call a sync wrapper's callback, which may block."""
        if not self.callbacks_may_block:
            return False
        if chunk is None:
            return self.on_pipeline_end is not None
        if chunk.reasoning is not None and self.on_reasoning is not None:
            return True
        return chunk.finish_reason == "tool_calls" or chunk.tool_call_result is not None

    def pieces(self, chunk: StreamingChunk) -> list[Piece]:
        """What to yield for one chunk: usually just the chunk."""
        if usage_from(chunk.meta) is not None:
            self.saw_usage = True
        if chunk.reasoning is not None and self.on_reasoning is not None:
            return _injected(self.on_reasoning(chunk.reasoning.reasoning_text, chunk.reasoning.extra))
        out: list[Piece] = []
        if chunk.tool_calls:
            self._collect_tool_call_pieces(chunk)
            if self.forward_tool_calls:
                out.append(chunk)
        elif chunk.tool_call_result is None:
            out.append(chunk)
        if chunk.finish_reason == "tool_calls" or chunk.tool_call_result is not None:
            out.extend(self._announce_tool_calls())
        if chunk.tool_call_result is not None and self.on_tool_call_end is not None:
            result = chunk.tool_call_result
            arguments = json.dumps(result.origin.arguments)
            out += _injected(self.on_tool_call_end(result.origin.tool_name, arguments, result.result, result.error))
        return out

    def _collect_tool_call_pieces(self, chunk: StreamingChunk) -> None:
        for delta in chunk.tool_calls or ():
            self.calls_being_streamed.add(delta.index, delta.id, delta.tool_name, delta.arguments)

    def _announce_tool_calls(self) -> list[Piece]:
        """on_tool_call_start for each call the LLM has finished streaming, unless the client runs it (and shows it)."""
        calls = self.calls_being_streamed.take()
        if self.on_tool_call_start is None or self.forward_tool_calls:
            return []
        out: list[Piece] = []
        for call in calls:
            out.extend(_injected(self.on_tool_call_start(call.name, call.arguments, call.id)))
        return out

    def finish(self, result: dict[str, Any]) -> list[Piece]:
        """Usage from the final output when no chunk carried it, then whatever on_pipeline_end adds."""
        out: list[Piece] = []
        if not self.saw_usage and (usage := usage_from_result(result)):
            out.append(usage)
        if self.on_pipeline_end is not None:
            out.extend(_injected(self.on_pipeline_end(result)))
        return out

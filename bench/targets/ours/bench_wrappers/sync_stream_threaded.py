"""Model `sync_stream_threaded`: `sync_stream_stepped` with an LLM component that has no `run_async`.

Some integrations' generators stream only synchronously; `Pipeline.stream` could not stream them, so
our helpers run such a pipeline with `Pipeline.run` in its worker thread, one pool thread per stream.
This is what the thread pool columns of scenario 3 measure (ours only).
"""

from collections.abc import Callable, Iterator
from typing import Any

from bench_shared import stepped_llm_pipeline, stepped_run_args
from haystack import component
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack_service.streaming import streaming_generator

from ._engine import BasePipelineWrapper
from ._llm import chat_generator


@component
class SyncOnlyGenerator:
    """The same chat generator behind a component with `run` and no `run_async`."""

    def __init__(self) -> None:
        self.llm = chat_generator(streaming=True)

    def warm_up(self) -> None:
        self.llm.warm_up()

    @component.output_types(replies=list[ChatMessage])
    def run(
        self, messages: list[ChatMessage], streaming_callback: Callable[[StreamingChunk], None] | None = None
    ) -> dict[str, Any]:
        return self.llm.run(messages=messages, streaming_callback=streaming_callback)


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_llm_pipeline(SyncOnlyGenerator())

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        return streaming_generator(self.pipeline, stepped_run_args(messages))

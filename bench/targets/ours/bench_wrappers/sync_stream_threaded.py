"""Model `sync_stream_threaded`: `sync_stream` with a step before the LLM, so the pipeline runs in a worker thread.

A lone LLM streams on the event loop even from a sync wrapper; this is the path of every other sync
pipeline, one pool thread per stream (ours only: scenario 3's thread pool columns).
"""

from collections.abc import Iterator
from typing import Any

from bench_shared import stepped_llm_pipeline, stepped_run_args
from haystack_service.streaming import streaming_generator
from haystack_service.wrapper import BasePipelineWrapper

from ._llm import chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_llm_pipeline(chat_generator(streaming=True))

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        return streaming_generator(self.pipeline, stepped_run_args(messages))

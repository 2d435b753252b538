"""Model `sync_stream_stepped`: `sync_stream` with a sync step before the LLM, the shape of most real pipelines.

The LLM streams asynchronously, so our helpers still stream the pipeline on the event loop
(`Pipeline.stream`), and the step runs in a thread of the service's step pool (ours only: scenario 3).
"""

from collections.abc import Iterator
from typing import Any

from bench_shared import stepped_llm_pipeline, stepped_run_args
from haystack_service.streaming import streaming_generator

from ._engine import BasePipelineWrapper
from ._llm import chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_llm_pipeline(chat_generator(streaming=True))

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        return streaming_generator(self.pipeline, stepped_run_args(messages))

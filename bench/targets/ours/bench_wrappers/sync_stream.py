"""Model `sync_stream`: a sync wrapper streaming the upstream's answer with the generated `streaming_generator`."""

from collections.abc import Iterator
from typing import Any

from bench_shared import llm_pipeline, run_args
from haystack_service.streaming import streaming_generator

from ._engine import BasePipelineWrapper
from ._llm import chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = llm_pipeline(chat_generator(streaming=True))

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        return streaming_generator(self.pipeline, run_args(messages))

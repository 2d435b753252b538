"""Model `sync_stream_threaded`: `sync_stream_stepped` with a callback of the wrapper's own.

A wrapper's own callback may block, so our helpers keep such a run in its worker thread: `Pipeline.run`
there, one pool thread per stream. This is what the thread pool columns of scenario 3 measure (ours only).
"""

from collections.abc import Iterator
from typing import Any

from bench_shared import stepped_llm_pipeline, stepped_run_args
from haystack_service.streaming import streaming_generator
from haystack_service.wrapper import BasePipelineWrapper

from ._llm import chat_generator


def note_the_end(result: dict[str, Any]) -> None:
    """Adds nothing to the stream; a real one might log the result or store it."""


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_llm_pipeline(chat_generator(streaming=True))

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        return streaming_generator(self.pipeline, stepped_run_args(messages), on_pipeline_end=note_the_end)

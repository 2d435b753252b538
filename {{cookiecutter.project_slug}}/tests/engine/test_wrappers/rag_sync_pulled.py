"""`rag_sync`, but the wrapper iterates `streaming_generator` itself: the pipeline runs in a thread of its own."""

from collections.abc import Iterator

from .rag_sync import PipelineWrapper as ReturnsTheStream


class PipelineWrapper(ReturnsTheStream):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        yield from ReturnsTheStream.run_chat_completion(self, model, messages, body)

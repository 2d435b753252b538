"""`sources_stream`, iterated by the wrapper itself: the pipeline runs in a thread of its own."""

from collections.abc import Iterator

from .sources_stream import PipelineWrapper as ReturnsTheStream


class PipelineWrapper(ReturnsTheStream):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        yield from ReturnsTheStream.run_chat_completion(self, model, messages, body)

"""`sync_pipeline_stream`, but the wrapper iterates `streaming_generator` itself (to post-process pieces).

The service can then only pull, so the pipeline runs in a thread of its own: the path users get when
they wrap the generator instead of returning it.
"""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import PipelineStream

from .sync_pipeline_stream import PipelineWrapper as ReturnsTheStream


class PipelineWrapper(ReturnsTheStream):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        pieces = ReturnsTheStream.run_chat_completion(self, model, messages, body)
        assert isinstance(pieces, PipelineStream)
        yield from pieces

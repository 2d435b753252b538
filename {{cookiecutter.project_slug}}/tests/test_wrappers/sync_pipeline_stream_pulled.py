"""`sync_pipeline_stream`, but the wrapper iterates `streaming_generator` itself (to post-process pieces).

The service can then only pull, so the pipeline runs in a thread of its own: the path users get when
they wrap the generator instead of returning it.
"""

from collections.abc import Iterator

from haystack import Pipeline

from {{ cookiecutter.project_slug }}.llm import make_chat_generator
from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import PipelineStream, streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", make_chat_generator())

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        pieces = streaming_generator(self.pipeline, {"llm": {"messages": chat_messages_from_openai(messages)}})
        assert isinstance(pieces, PipelineStream)
        yield from pieces

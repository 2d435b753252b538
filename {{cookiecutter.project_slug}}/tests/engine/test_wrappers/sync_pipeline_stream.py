"""A sync wrapper streaming a lone LLM with the generated `streaming_generator` helper.

A one-component pipeline whose component streams asynchronously: the service runs it on the event loop.
"""

from collections.abc import Iterator

from haystack import Pipeline

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, chat_messages_from_openai

from examples._llm import make_chat_generator
from examples._streaming import streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", make_chat_generator())

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(self.pipeline, {"llm": {"messages": chat_messages_from_openai(messages)}})

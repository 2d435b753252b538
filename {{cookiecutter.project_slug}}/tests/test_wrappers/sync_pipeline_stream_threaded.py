"""`sync_pipeline_stream` with a component before the LLM: no longer a lone LLM, so `Pipeline.run` runs it.

The service then has the stream push its pieces from the worker thread (`PipelineStream.push_to`): the
path every sync pipeline with more than an LLM takes.
"""

from collections.abc import Iterator
from typing import Any

from haystack import Pipeline, component
from haystack.dataclasses import ChatMessage

from {{ cookiecutter.project_slug }}.llm import make_chat_generator
from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


@component
class PassMessages:
    @component.output_types(messages=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, Any]:
        return {"messages": messages}


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("messages", PassMessages())
        self.pipeline.add_component("llm", make_chat_generator())
        self.pipeline.connect("messages.messages", "llm.messages")

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(self.pipeline, {"messages": {"messages": chat_messages_from_openai(messages)}})

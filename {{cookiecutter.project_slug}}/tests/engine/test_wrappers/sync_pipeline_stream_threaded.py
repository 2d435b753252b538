"""`sync_pipeline_stream_stepped` with an LLM that streams only synchronously, as some integrations do.

`Pipeline.stream` could not stream it, so `Pipeline.run` runs the whole pipeline in the worker thread
and the service has the stream push its pieces from there (`PipelineStream.push_to`).
"""

from collections.abc import Callable, Iterator
from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.tools import Tool

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, chat_messages_from_openai

from .sync_pipeline_stream_stepped import stepped_pipeline
from examples._llm import make_chat_generator
from examples._streaming import streaming_generator


@component
class SyncOnlyLLM:
    """The template's chat generator behind a component that has `run` and no `run_async` (an Agent can use it)."""

    def __init__(self) -> None:
        self.llm = make_chat_generator()

    def warm_up(self) -> None:
        self.llm.warm_up()

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        streaming_callback: Callable[[StreamingChunk], None] | None = None,
        tools: list[Tool] | None = None,
    ) -> dict[str, Any]:
        return self.llm.run(messages=messages, streaming_callback=streaming_callback, tools=tools)


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_pipeline(SyncOnlyLLM())

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(self.pipeline, {"messages": {"messages": chat_messages_from_openai(messages)}})

"""An async wrapper streaming a lone LLM stand-in that says how its input reached it.

`Pipeline` copies a component's inputs before it runs it; the helpers' shortcut for a pipeline that is one
async LLM and nothing else calls the component itself, with the inputs as given. So the answer tells which
path the run took: "inputs as given" (the shortcut) or "inputs copied" (through `Pipeline.stream`).
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Pipeline, component
from haystack.dataclasses import ChatMessage, StreamingChunk

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, chat_messages_from_openai

from examples._streaming import async_streaming_generator

AS_GIVEN, COPIED = "inputs as given", "inputs copied"


@component
class InputProbe:
    """Stands in for an LLM: streams one chunk saying whether `messages` is the list the wrapper passed."""

    def __init__(self) -> None:
        self.passed: list[ChatMessage] | None = None

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
        raise NotImplementedError("streams on the event loop only")

    @component.output_types(replies=list[ChatMessage])
    async def run_async(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
        answer = AS_GIVEN if messages is self.passed else COPIED
        await streaming_callback(StreamingChunk(content=answer))
        return {"replies": [ChatMessage.from_assistant(answer)]}


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.probe = InputProbe()
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", self.probe)

    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[object]:
        self.probe.passed = chat_messages_from_openai(messages)
        return async_streaming_generator(self.pipeline, {"llm": {"messages": self.probe.passed}})

"""`sync_pipeline_stream` with a sync component before the LLM: a pipeline, no longer a lone LLM.

Its LLM streams asynchronously, so the service still streams it on the event loop (`Pipeline.stream`),
and the sync step runs in a thread of asyncio's default pool. The step tells the LLM which thread that
was, in a system message, so tests can see where it ran.
"""

import threading
from collections.abc import Iterator
from typing import Any

from haystack import Pipeline, component
from haystack.dataclasses import ChatMessage

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, chat_messages_from_openai

from examples._llm import make_chat_generator
from examples._streaming import streaming_generator

STEP_THREAD_NOTE = "the step ran in thread "


@component
class NoteStepThread:
    @component.output_types(messages=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, Any]:
        note = ChatMessage.from_system(STEP_THREAD_NOTE + threading.current_thread().name)
        return {"messages": [note, *messages]}


def stepped_pipeline(llm: Any) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("messages", NoteStepThread())
    pipeline.add_component("llm", llm)
    pipeline.connect("messages.messages", "llm.messages")
    return pipeline


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = stepped_pipeline(make_chat_generator())

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(self.pipeline, {"messages": {"messages": chat_messages_from_openai(messages)}})

"""`sync_pipeline_stream` with callbacks of its own, which say in their output which thread they ran in.

A sync wrapper's callbacks may block, so they never run on the event loop: the LLM still streams there,
and each callback runs in a thread of the service's step pool when it is called.
"""

import threading
from collections.abc import Iterator
from typing import Any

from {{ cookiecutter.project_slug }}.engine import chat_messages_from_openai

from .sync_pipeline_stream import PipelineWrapper as LoneLLM
from examples._streaming import streaming_generator


def name_the_thread_of_reasoning(text: str, extra: dict[str, Any]) -> str:
    return f"[on_reasoning ran in {threading.current_thread().name}] "


def name_the_thread(result: dict[str, Any]) -> str:
    return f" [on_pipeline_end ran in {threading.current_thread().name}]"


class PipelineWrapper(LoneLLM):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.pipeline,
            {"llm": {"messages": chat_messages_from_openai(messages)}},
            on_reasoning=name_the_thread_of_reasoning,
            on_pipeline_end=name_the_thread,
        )

"""`sync_pipeline_stream` with a callback of its own, which says in its output which thread it ran in.

A sync wrapper's callbacks may block, so they must run in its worker thread, never on the event loop:
this lone LLM keeps its thread because of the callback.
"""

import threading
from collections.abc import Iterator
from typing import Any

from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import streaming_generator

from .sync_pipeline_stream import PipelineWrapper as LoneLLM


def name_the_thread(result: dict[str, Any]) -> str:
    return f" [on_pipeline_end ran in {threading.current_thread().name}]"


class PipelineWrapper(LoneLLM):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.pipeline,
            {"llm": {"messages": chat_messages_from_openai(messages)}},
            on_pipeline_end=name_the_thread,
        )

"""A wrapper that offers the client's own tools (`body["tools"]`) to its LLM and forwards the calls back.

The pattern docs/openwebui.md describes for a wrapper that opts in to Open WebUI's tools.
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Pipeline

from {{ cookiecutter.project_slug }}.client_tools import tool_choice_kwargs, tools_from_request
from {{ cookiecutter.project_slug }}.llm import make_chat_generator
from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import async_streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", make_chat_generator())

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        llm_inputs = {
            "messages": chat_messages_from_openai(messages),
            "tools": tools_from_request(body) or None,
            "generation_kwargs": tool_choice_kwargs(body),
        }
        return async_streaming_generator(self.pipeline, {"llm": llm_inputs}, forward_tool_calls=True)

"""A wrapper that offers the client's own tools (`body["tools"]`) to its LLM and forwards the calls back.

The pattern docs/openwebui.md describes for a wrapper that opts in to Open WebUI's tools.
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Pipeline
from haystack.tools import Tool

from {{ cookiecutter.project_slug }}.llm import make_chat_generator
from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import async_streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


def run_by_the_client(**arguments: Any) -> str:
    raise RuntimeError("the client runs its own tools: this wrapper only forwards the calls")


def client_tools(body: dict[str, Any]) -> list[Tool]:
    """The request's function tools as Haystack Tools, for the LLM to choose from."""
    tools = []
    for spec in body.get("tools") or []:
        function = spec.get("function") if isinstance(spec, dict) and spec.get("type") == "function" else None
        if isinstance(function, dict) and function.get("name"):
            parameters = function.get("parameters") or {"type": "object", "properties": {}}
            description = function.get("description") or function["name"]
            tools.append(
                Tool(name=function["name"], description=description, parameters=parameters, function=run_by_the_client)
            )
    return tools


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", make_chat_generator())

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        llm_inputs = {"messages": chat_messages_from_openai(messages), "tools": client_tools(body) or None}
        return async_streaming_generator(self.pipeline, {"llm": llm_inputs}, forward_tool_calls=True)

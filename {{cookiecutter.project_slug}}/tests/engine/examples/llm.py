"""Model `llm`: the LLM itself, doing what the client asks of a model; no system prompt or tools of ours.

This is the model for clients that bring their own tools and instructions (Codex, agent frameworks, an
Open Responses compliance suite). Everything in the request that a model would honour goes to the chat
generator:

- the whole conversation: the client's `instructions` and system messages, images, earlier tool calls and
  their results (`function_call_output` items, `tool` messages);
- its function tools, with `tool_choice` and `parallel_tool_calls` (`engine/parsing/declared_tools.py`): the LLM's tool
  calls go back to the client to run, and their results come in the client's next request;
- `temperature`, `top_p`, the penalties, `seed`, `stop` and the length limit (`sampling.generation_kwargs`);
- structured output: Responses `text.format`, Chat Completions `response_format` (`sampling.output_format`).

Start your own wrapper from here when the pipeline around the LLM should stay out of the client's way.
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Pipeline
from haystack.dataclasses import ChatMessage

from {{ cookiecutter.project_slug }}.engine import (
    BasePipelineWrapper,
    chat_messages_from_openai,
    chat_messages_from_openai_response_async,
    generation_kwargs,
    output_format,
    tool_choice_kwargs,
    tools_from_request,
    tools_strict,
)

from ._llm import make_chat_generator
from ._streaming import async_streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("llm", make_chat_generator())
        # Checks the components' settings (keys, URLs, timeouts) now: a wrong one fails the model's
        # load, visibly, instead of every request.
        self.pipeline.warm_up()

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return self.forward(chat_messages_from_openai(messages), body)

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return self.forward(await chat_messages_from_openai_response_async(input_items, body.get("instructions")), body)

    def forward(self, messages: list[ChatMessage], body: dict[str, Any]) -> AsyncIterator[Any]:
        """One LLM call with everything the request asked of it; its tool calls go back to the client."""
        llm_inputs = {
            "messages": messages,
            "tools": tools_from_request(body) or None,
            "tools_strict": tools_strict(body),
            "generation_kwargs": generation_kwargs(body) | output_format(body) | tool_choice_kwargs(body),
        }
        return async_streaming_generator(self.pipeline, {"llm": llm_inputs}, forward_tool_calls=True)

"""Model `chat_stream`: an async pipeline that streams its answer token by token, on both OpenAI APIs."""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Pipeline
from haystack.dataclasses import ChatMessage

from {{ cookiecutter.project_slug }}.engine import (
    BasePipelineWrapper,
    chat_messages_from_openai,
    chat_messages_from_openai_response_async,
    generation_kwargs,
)

from ._llm import make_chat_generator
from ._streaming import async_streaming_generator

SYSTEM_PROMPT = "You are a helpful assistant."


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
        """Runs on the event loop: the pipeline is awaited, never blocking other requests."""
        conversation = [ChatMessage.from_system(SYSTEM_PROMPT), *chat_messages_from_openai(messages)]
        run_args = {"llm": {"messages": conversation, "generation_kwargs": generation_kwargs(body)}}
        return async_streaming_generator(self.pipeline, run_args)

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """The same pipeline for the Responses API; the client's `instructions` follow our system prompt."""
        history = await chat_messages_from_openai_response_async(input_items, body.get("instructions"))
        conversation = [ChatMessage.from_system(SYSTEM_PROMPT), *history]
        run_args = {"llm": {"messages": conversation, "generation_kwargs": generation_kwargs(body)}}
        return async_streaming_generator(self.pipeline, run_args)

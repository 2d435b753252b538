"""Model `agent_stream`: an async wrapper streaming an Agent's answer with `async_streaming_generator`."""

from collections.abc import AsyncIterator
from typing import Any

from bench_shared import agent, agent_run_args
from haystack_service.streaming import async_streaming_generator

from ._engine import BasePipelineWrapper
from ._llm import chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = agent(chat_generator(streaming=True))

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return async_streaming_generator(self.agent, agent_run_args(messages))

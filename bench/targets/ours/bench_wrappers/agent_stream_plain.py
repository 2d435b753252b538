"""Model `agent_stream_plain`: `agent_stream` with Haystack's plain `OpenAIChatGenerator` (ours only: what the template's generator saves)."""

from collections.abc import AsyncIterator
from typing import Any

from bench_shared import agent, agent_run_args
from haystack_service.streaming import async_streaming_generator

from ._engine import BasePipelineWrapper
from ._llm import plain_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = agent(plain_generator())

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return async_streaming_generator(self.agent, agent_run_args(messages))

"""hayhooks' `agent_stream`: the same Agent streamed with hayhooks' own `async_streaming_generator`."""

from collections.abc import AsyncGenerator

from bench_shared import agent, agent_run_args
from hayhooks import BasePipelineWrapper, async_streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = agent()

    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncGenerator:
        return async_streaming_generator(pipeline=self.agent, pipeline_run_args=agent_run_args(messages))

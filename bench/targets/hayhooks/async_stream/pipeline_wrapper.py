"""hayhooks' `async_stream`: the same pipeline streamed with hayhooks' own `async_streaming_generator`."""

from collections.abc import AsyncGenerator

from bench_shared import llm_pipeline, run_args
from hayhooks import BasePipelineWrapper, async_streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = llm_pipeline()

    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncGenerator:
        return async_streaming_generator(pipeline=self.pipeline, pipeline_run_args=run_args(messages))

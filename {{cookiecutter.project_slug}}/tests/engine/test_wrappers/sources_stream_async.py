"""`sources_stream` with `async_streaming_generator`: the same sources, from an async wrapper."""

from collections.abc import AsyncIterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from .sources_stream import list_sources, retrieval_pipeline, run_args
from examples._streaming import async_streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = retrieval_pipeline()

    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[object]:
        return async_streaming_generator(
            self.pipeline, run_args(messages), include_outputs_from={"retriever"}, on_pipeline_end=list_sources
        )

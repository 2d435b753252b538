"""hayhooks' `sync_stream`: the same pipeline streamed with hayhooks' own `streaming_generator`."""

from collections.abc import Generator

from bench_shared import llm_pipeline, run_args
from hayhooks import BasePipelineWrapper, streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = llm_pipeline()

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Generator:
        return streaming_generator(pipeline=self.pipeline, pipeline_run_args=run_args(messages))

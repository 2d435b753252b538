"""Model `fixed`: a sync pipeline that answers a short fixed text at once (scenario 1: serving overhead)."""

from typing import Any

from bench_shared import fixed_pipeline, reply_text, run_args

from ._engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = fixed_pipeline()

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return reply_text(self.pipeline.run(run_args(messages)))

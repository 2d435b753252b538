"""Model `fixed`: the benchmark's fixed pipeline (a short text at once), on the Responses API."""

from typing import Any

from bench_shared import fixed_pipeline, reply_text, run_args

from ._engine import BasePipelineWrapper, get_last_user_input_text


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = fixed_pipeline()

    def run_response(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> str:
        question = get_last_user_input_text(input_items) or ""
        return reply_text(self.pipeline.run(run_args([{"role": "user", "content": question}])))

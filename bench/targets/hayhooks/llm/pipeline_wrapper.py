"""hayhooks' `llm`: the same sync, non-streaming upstream call as ours."""

from bench_shared import llm_pipeline, reply_text, run_args
from hayhooks import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = llm_pipeline()

    def run_api(self, question: str) -> str:
        """Answer a question (hayhooks' own /run endpoint; the benchmark uses the OpenAI route)."""
        return reply_text(self.pipeline.run(run_args([{"role": "user", "content": question}])))

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return reply_text(self.pipeline.run(run_args(messages)))

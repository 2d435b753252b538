"""Model `llm`: a sync, non-streaming pipeline calling the upstream through OpenAIChatGenerator."""

from typing import Any

from bench_shared import llm_pipeline, reply_text, run_args

from ._engine import BasePipelineWrapper
from ._llm import chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = llm_pipeline(chat_generator(streaming=False))

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return reply_text(self.pipeline.run(run_args(messages)))

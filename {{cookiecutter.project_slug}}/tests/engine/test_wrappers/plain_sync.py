"""A sync wrapper that returns a plain string."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

ANSWER = "plain sync answer"


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return ANSWER

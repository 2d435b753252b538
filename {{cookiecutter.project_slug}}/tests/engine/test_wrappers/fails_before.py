"""Raises before producing anything: a deterministic failure the SDK must not retry."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from . import bump


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        bump("fails_before_calls")
        raise RuntimeError("secret internal detail")

"""Refuses every request on purpose with an OpenAIError: the client must get that status, not a 500."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, OpenAIError

MESSAGE = "Ask about one city at a time."


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        raise OpenAIError(400, MESSAGE, param="messages", code="too_many_cities")

"""setup() raises: the model must be left out of /v1/models and listed as failed in /status."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        raise RuntimeError("setup failed on purpose")

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return "unreachable"

"""Implements only the Responses API: listed as a model, but chat on it is 501."""

from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_response(self, model: str, input_items: list[dict], body: dict) -> str:
        return "responses only"

"""Implements only the Responses API: listed as a model, but chat on it is a 400 naming the API it serves."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_response(self, model: str, input_items: list[dict], body: dict) -> str:
        return "responses only"

"""A typed entry whose pipeline fails."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_api(self, question: str) -> str:
        """Always fails."""
        raise ValueError("a secret that must not reach the client")

"""A sync generator of strings (runs in the service's thread pool)."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

PIECES = ["sync ", "gen ", "answer"]


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[str]:
        yield from PIECES

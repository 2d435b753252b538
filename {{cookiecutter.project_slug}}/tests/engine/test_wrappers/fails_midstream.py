"""Yields some text, then raises: the error must arrive inside the stream, without internals."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

FIRST = "partial answer"


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[str]:
        yield FIRST
        raise RuntimeError("secret internal detail")

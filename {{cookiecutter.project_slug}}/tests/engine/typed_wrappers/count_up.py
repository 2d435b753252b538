"""A sync generator as a typed entry: each number is one streamed event."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_api(self, upto: int, fail_at: int | None = None) -> Iterator[int]:
        """Count from 1 to `upto`, one number at a time."""
        for number in range(1, upto + 1):
            if number == fail_at:
                raise RuntimeError("a secret that must not reach the client")
            yield number

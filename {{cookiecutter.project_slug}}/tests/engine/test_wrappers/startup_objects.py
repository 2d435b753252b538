"""Builds a large index in `setup()` and answers with how many objects the garbage collector leaves alone.

After startup the service exempts everything loaded so far from full collections (`gc.freeze`), so that
collections do not stall requests walking objects that live as long as the process.
"""

import gc

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

INDEX_SIZE = 20_000


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.index = [{"id": position} for position in range(INDEX_SIZE)]

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return str(gc.get_freeze_count())

"""Logs a line per piece it streams, from the worker thread a sync wrapper runs in (as wrappers' own logs do)."""

import logging
from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from . import last_user_text

logger = logging.getLogger(__name__)
PIECES = ["logged ", "answer"]


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[str]:
        for piece in PIECES:
            logger.warning("working on %s: %r", last_user_text(messages), piece)
            yield piece

"""A sync generator that streams until the service stops it, counting what it produced.

The run key is the last user message. A cap keeps a broken service from looping for ever.
"""

import time
from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from . import bump, last_user_text, mark_stopped

CAP = 1000
INTERVAL = 0.02


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[str]:
        key = last_user_text(messages)
        try:
            for number in range(CAP):
                bump(key)
                yield f"tick {number} "
                time.sleep(INTERVAL)
        finally:
            mark_stopped(key)

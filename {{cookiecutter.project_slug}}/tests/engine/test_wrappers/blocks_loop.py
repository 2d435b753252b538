"""An async wrapper that blocks the event loop with `time.sleep`, as one calling a blocking client would.

The service must log it (observability/loop_watch.py), naming this model, the request and this file's line.
"""

import time

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

BLOCK_SECONDS = 1.5


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> str:
        time.sleep(BLOCK_SECONDS)  # the mistake this wrapper is here to make: no await, the loop waits
        return "blocked"

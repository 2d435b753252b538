"""An async generator that streams until cancelled, counting what it produced.

The run key is the last user message. A cap keeps a broken service from looping for ever.
"""

import asyncio
from collections.abc import AsyncIterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from . import bump, last_user_text, mark_stopped

CAP = 1000
INTERVAL = 0.02


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[str]:
        key = last_user_text(messages)
        try:
            for number in range(CAP):
                bump(key)
                yield f"tick {number} "
                await asyncio.sleep(INTERVAL)
        finally:
            mark_stopped(key)

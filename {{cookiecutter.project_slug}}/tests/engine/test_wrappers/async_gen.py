"""An async generator of strings (runs on the event loop)."""

import asyncio
from collections.abc import AsyncIterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

PIECES = ["async ", "gen ", "answer"]


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[str]:
        for piece in PIECES:
            await asyncio.sleep(0)
            yield piece

"""Waits 2.5 s before its first chunk, so a 1 s keep-alive has to send comments meanwhile."""

import asyncio
from collections.abc import AsyncIterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

DELAY_SECONDS = 2.5
PIECES = ["slow ", "start"]


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[str]:
        await asyncio.sleep(DELAY_SECONDS)
        for piece in PIECES:
            yield piece

"""Streams its first piece, then waits until the test opens the gate: proof that the first piece went out alone.

The gate is the file `gate-<last user message>` in TEST_WRAPPERS_DIR. A proxy that buffered the stream would
hold the first piece back; the test, waiting for it before it opens the gate, would then wait in vain.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

from . import last_user_text

FIRST = "first piece, "
LAST = "last piece"
GATE_WAIT_SECONDS = 60.0  # bounded: a gate never opened ends the stream anyway


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> AsyncIterator[str]:
        gate = Path(os.environ["TEST_WRAPPERS_DIR"]) / f"gate-{last_user_text(messages)}"
        yield FIRST
        async with asyncio.timeout(GATE_WAIT_SECONDS):
            while not gate.exists():
                await asyncio.sleep(0.02)
        yield LAST

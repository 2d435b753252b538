"""Model `stream`: 64 tokens streamed at once by an async generator, on the Responses API."""

from collections.abc import AsyncIterator
from typing import Any

from ._engine import BasePipelineWrapper

TOKENS = 64


class PipelineWrapper(BasePipelineWrapper):
    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[str]:
        for number in range(TOKENS):
            yield f"t{number} "

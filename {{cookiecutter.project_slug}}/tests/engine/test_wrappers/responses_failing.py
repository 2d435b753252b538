"""Fails on the Responses API: at once when the input says "before", otherwise after some text."""

from collections.abc import AsyncIterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, get_last_user_input_text

FIRST = "partial answer"


class PipelineWrapper(BasePipelineWrapper):
    async def run_response_async(self, model: str, input_items: list[dict], body: dict) -> AsyncIterator[str]:
        if get_last_user_input_text(input_items) == "before":
            raise RuntimeError("secret internal detail")
        return self._fail_midway()

    async def _fail_midway(self) -> AsyncIterator[str]:
        yield FIRST
        raise RuntimeError("secret internal detail")

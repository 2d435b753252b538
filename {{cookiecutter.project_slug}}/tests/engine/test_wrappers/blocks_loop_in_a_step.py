"""A pipeline whose async component blocks the event loop: the block happens in a task of the pipeline's own,
not in the wrapper's method, and the service must still name this model and the request."""

import time

from haystack import Pipeline, component

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

BLOCK_SECONDS = 1.5


@component
class SleepsOnTheLoop:
    @component.output_types(text=str)
    def run(self, text: str) -> dict[str, str]:
        return {"text": text}

    @component.output_types(text=str)
    async def run_async(self, text: str) -> dict[str, str]:
        time.sleep(BLOCK_SECONDS)  # the mistake: a blocking call in an async component
        return {"text": text}


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("step", SleepsOnTheLoop())

    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict) -> str:
        result = await self.pipeline.run_async({"step": {"text": "blocked in a step"}})
        return result["step"]["text"]

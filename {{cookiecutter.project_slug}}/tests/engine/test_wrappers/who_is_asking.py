"""Answers with what `current_request()` says, as JSON: from a pipeline component in a thread of the streaming
helpers (chat, a sync method) and straight from an async method (responses)."""

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from haystack import Pipeline, component

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, RequestContext, current_request

from examples._streaming import streaming_generator


def describe(context: RequestContext) -> str:
    return json.dumps(
        {
            "api": context.api,
            "api_key_name": context.api_key_name,
            "user": context.user,
            "safety_identifier": context.safety_identifier,
            "end_user": context.end_user,
            "metadata": dict(context.metadata),
            "openwebui_user": asdict(context.openwebui_user) if context.openwebui_user else None,
            "x_tenant": context.headers.get("x-tenant"),
            "header_names": sorted(context.headers),
        }
    )


@component
class WhoIsAsking:
    """A pipeline step that reads the request's context where it runs."""

    @component.output_types(description=str)
    def run(self, question: str) -> dict[str, Any]:
        return {"description": describe(current_request())}


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component("who", WhoIsAsking())

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[str]:
        # Iterated here, so the helpers run the pipeline in a thread of their own.
        yield from streaming_generator(
            self.pipeline,
            {"who": {"question": "?"}},
            on_pipeline_end=lambda result: result["who"]["description"],
        )

    async def run_response_async(self, model: str, input_items: list[dict], body: dict) -> str:
        return describe(current_request())

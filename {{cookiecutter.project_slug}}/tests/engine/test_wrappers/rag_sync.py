"""The `rag` example's pipeline run by `streaming_generator` from a sync wrapper, with its sources.

Its LLM streams asynchronously, so the service streams it on the event loop (`Pipeline.stream`);
`rag_sync_threaded` and `rag_sync_pulled` take the two other ways, and all three must pass
`include_outputs_from` on to the run.
"""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, get_last_user_message, show_sources

from examples import rag
from examples._streaming import streaming_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        example = rag.PipelineWrapper()
        example.setup()
        self.pipeline = example.pipeline

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        question = get_last_user_message(messages) or ""
        return streaming_generator(
            self.pipeline,
            {"retriever": {"query": question}, "prompt_builder": {"question": question}},
            include_outputs_from={"retriever"},
            on_pipeline_end=lambda result: show_sources(result["retriever"]["documents"]),
        )

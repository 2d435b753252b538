"""A sync wrapper streaming a retrieval pipeline, listing its sources from `include_outputs_from`.

The retriever sits inside the pipeline, so only `include_outputs_from={"retriever"}` puts the documents it
found into the result `on_pipeline_end` gets. Its LLM streams asynchronously: the service runs it on the
event loop (with STREAMING_FAST_PATHS=off, in the worker thread).
"""

from collections.abc import Iterator
from typing import Any

from haystack import Document, Pipeline, component
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, get_last_user_message

from examples._llm import make_chat_generator
from examples._streaming import streaming_generator

DOCUMENTS = {
    "manual.pdf": "To reset your password, open Settings and choose Reset password.",
    "faq.md": "A password reset link expires after one hour.",
    "fruit.txt": "Bananas are yellow and grow in bunches.",
}
SOURCES_HEADING = "\n\nSources: "


@component
class QuestionWithContext:
    """The question, after the retrieved passages, as the one user message."""

    @component.output_types(messages=list[ChatMessage])
    def run(self, question: str, documents: list[Document]) -> dict[str, Any]:
        context = "\n".join(document.content or "" for document in documents)
        return {"messages": [ChatMessage.from_user(f"Context:\n{context}\n\nQuestion: {question}")]}


def retrieval_pipeline() -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents([Document(content=text, meta={"name": name}) for name, text in DOCUMENTS.items()])
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(store, top_k=2))
    pipeline.add_component("prompt", QuestionWithContext())
    pipeline.add_component("llm", make_chat_generator())
    pipeline.connect("retriever.documents", "prompt.documents")
    pipeline.connect("prompt.messages", "llm.messages")
    return pipeline


def run_args(messages: list[dict]) -> dict[str, Any]:
    question = get_last_user_message(messages) or ""
    return {"retriever": {"query": question}, "prompt": {"question": question}}


def list_sources(result: dict[str, Any]) -> str:
    """The names of the documents the retriever found, which only `include_outputs_from` puts in `result`."""
    documents = result.get("retriever", {}).get("documents", [])
    return SOURCES_HEADING + ", ".join(sorted(document.meta["name"] for document in documents))


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = retrieval_pipeline()

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.pipeline, run_args(messages), include_outputs_from={"retriever"}, on_pipeline_end=list_sources
        )

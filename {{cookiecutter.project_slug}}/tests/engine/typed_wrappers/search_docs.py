"""A retrieval pipeline as a tool: the shape of a typed entry a user would write (BM25 over a few documents)."""

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from pydantic import BaseModel, Field

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

DOCUMENTS = [
    Document(content="Hypercorn serves ASGI apps over HTTP/1, HTTP/2 and HTTP/3.", meta={"source": "hypercorn.md"}),
    Document(content="Quart is an async web framework with Flask's API.", meta={"source": "quart.md"}),
    Document(
        content="Haystack builds pipelines of retrievers, prompt builders and generators.",
        meta={"source": "haystack.md"},
    ),
]


class Passage(BaseModel):
    text: str
    source: str
    score: float = Field(description="BM25 score: higher is more relevant")


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.tool_annotations = {"readOnlyHint": True, "openWorldHint": False}
        store = InMemoryDocumentStore()
        store.write_documents(DOCUMENTS)
        self.pipeline = Pipeline()
        self.pipeline.add_component("retriever", InMemoryBM25Retriever(store))

    def run_api(self, query: str, top_k: int = 2) -> list[Passage]:
        """Search the documentation.

        Returns the passages most relevant to `query`, best first, each with its source file.
        """
        documents = self.pipeline.run({"retriever": {"query": query, "top_k": top_k}})["retriever"]["documents"]
        return [Passage(text=d.content or "", source=d.meta["source"], score=d.score or 0.0) for d in documents]

"""Model `rag`: answers from a few built-in documents about this service and names its sources, on both APIs.

The retriever is a step of the pipeline (BM25 over an in-memory document store), so the helper is asked for
its output too (`include_outputs_from`): `on_pipeline_end` then gets the documents the answer drew on and
shows them after it (`sources.show_sources`). Put your own documents in the store, or swap the store and
retriever for any Haystack document store's.

Its retriever alone is a tool as well (`run_api`): `POST /rag/run`, described in `/openapi.json`, for agents and
tool clients that want the passages rather than an answer (docs/tools.md).
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from pydantic import BaseModel

from ..engine import (
    BasePipelineWrapper,
    generation_kwargs,
    get_last_user_input_text,
    get_last_user_message,
    show_sources,
)
from ..llm import make_chat_generator
from ..streaming import async_streaming_generator

TOP_K = 2  # documents that go into the prompt

DOCUMENTS = [
    Document(
        meta={"title": "Wrappers"},
        content="Each module in the wrappers package is one model, and its module name is the model id. A wrapper "
        "is a PipelineWrapper class with setup() and run_chat_completion or run_response, sync or async.",
    ),
    Document(
        meta={"title": "Streaming helpers"},
        content="streaming_generator and async_streaming_generator run a Haystack Pipeline or Agent and stream "
        "its chunks to the client; callbacks such as on_pipeline_end add text or events when the run ends.",
    ),
    Document(
        meta={"title": "Files"},
        content="Clients upload files with the Files API (POST /v1/files) and refer to them by file id in a "
        "request; the files_qa model answers questions about the uploaded files.",
    ),
    Document(
        meta={"title": "Open WebUI"},
        content="Open WebUI connects to the service as an OpenAI connection. Started with "
        "ENABLE_FORWARD_USER_INFO_HEADERS=true it sends X-OpenWebUI headers, and then gets status and "
        "source events and tool-call blocks.",
    ),
    Document(
        meta={"title": "Offline mode"},
        content="Without OPENAI_API_KEY the example models answer offline with Haystack's MockChatGenerator. "
        "Set OPENAI_API_KEY, and optionally OPENAI_BASE_URL and OPENAI_MODEL, in .env to use a real LLM.",
    ),
]


class Passage(BaseModel):
    """One document the search found: what `run_api` answers with, a list of them, best first."""

    title: str
    text: str
    score: float


# A Haystack prompt template (Jinja): the retrieved documents, best first, then the question.
PROMPT = [
    ChatMessage.from_system(
        "Answer the question from these documents only; if they do not hold the answer, say so.\n"
        "{% for doc in documents %}[{{ loop.index }}] {{ doc.meta.title }}: {{ doc.content }}\n"
        "{% else %}(No document matches the question.)\n{% endfor %}"
    ),
    ChatMessage.from_user("{{ question }}"),
]


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.tool_annotations = {"title": "Search the service's documentation", "readOnlyHint": True}  # for MCP
        store = InMemoryDocumentStore()
        store.write_documents(DOCUMENTS)
        self.pipeline = Pipeline()
        self.pipeline.add_component("retriever", InMemoryBM25Retriever(store, top_k=TOP_K))
        self.pipeline.add_component(
            "prompt_builder", ChatPromptBuilder(template=PROMPT, required_variables=["question", "documents"])
        )
        self.pipeline.add_component("llm", make_chat_generator())
        self.pipeline.connect("retriever.documents", "prompt_builder.documents")
        self.pipeline.connect("prompt_builder.prompt", "llm.messages")
        # Checks the components' settings (keys, URLs, timeouts) now: a wrong one fails the model's
        # load, visibly, instead of every request.
        self.pipeline.warm_up()

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return self.answer(get_last_user_message(messages) or "", body)

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return self.answer(get_last_user_input_text(input_items) or "", body)

    def answer(self, question: str, body: dict[str, Any]) -> AsyncIterator[Any]:
        run_args = {
            "retriever": {"query": question or "?"},  # BM25 refuses an empty query; "?" matches no document
            "prompt_builder": {"question": question},
            "llm": {"generation_kwargs": generation_kwargs(body)},
        }
        return async_streaming_generator(
            self.pipeline,
            run_args,
            include_outputs_from={"retriever"},
            on_pipeline_end=lambda result: show_sources(result["retriever"]["documents"]),
        )

    def run_api(self, query: str, top_k: int = TOP_K) -> list[Passage]:
        """Search the documentation of this service (wrappers, streaming, files, Open WebUI, offline mode).

        Returns up to `top_k` passages that match `query`, best first, each with the title of its document.
        """
        found = self.pipeline.get_component("retriever").run(query=query, top_k=top_k)["documents"]
        return [Passage(title=doc.meta["title"], text=doc.content or "", score=doc.score or 0.0) for doc in found]

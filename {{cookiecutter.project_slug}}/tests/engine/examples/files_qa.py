"""Model `files_qa`: answers a question about the files attached to the request, on both OpenAI APIs.

    file = client.files.create(file=open("report.pdf", "rb"), purpose="user_data")
    client.responses.create(model="files_qa", input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": file.id}, {"type": "input_text", "text": "What is the total?"}]}])

Each file is converted with Haystack's converters (text, Markdown, and PDF when `pypdf` is installed:
the `pdf` extra), split into passages, and the passages that best match the question (BM25, in memory)
go into the prompt. Passages are kept per file id, prepared as soon as a file is uploaded
(`run_file_upload`), so asking about a large file twice does not convert it twice.
"""

import asyncio
import hashlib
import logging
import mimetypes
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.converters import MarkdownToDocument, PyPDFToDocument, TextFileToDocument
from haystack.components.preprocessors import DocumentSplitter
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import ByteStream, ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy

from {{ cookiecutter.project_slug }}.engine import (
    OFFLINE_NOTE,
    BasePipelineWrapper,
    InputFile,
    StoredFile,
    generation_kwargs,
    get_last_user_input_text,
    get_last_user_message,
    read_file,
    resolve_chat_files,
    resolve_input_files,
)

from ._llm import make_chat_generator
from ._streaming import async_streaming_generator
{% raw %}
logger = logging.getLogger(__name__)

TOP_K = 3  # passages that go into the prompt
# What to install for a kind of file whose converter's dependency is missing (the extras in pyproject.toml).
INSTALL = {"pdf": "pip install 'pypdf>=5' (the project's pdf extra: pip install -e '.[pdf]')"}
CACHED_FILES = 256  # files whose passages are kept in memory (least recently used dropped first)

# A Haystack prompt template (Jinja). Passages are numbered, best first; each stays on one line.
PROMPT = [
    ChatMessage.from_system(
        "Answer the question from these passages of the user's files; name the file you used. "
        "If they do not hold the answer, say so.\n"
        "{% for doc in documents %}[{{ loop.index }}] {{ doc.meta.filename }}: "
        "{{ doc.content | replace('\n', ' ') }}\n{% else %}(The request has no readable file.)\n{% endfor %}"
    ),
    ChatMessage.from_user("{{ question }}"),
]
BEST_PASSAGE = re.compile(r"^\[1\] (.+)$", re.MULTILINE)


def offline_answer(messages: list[ChatMessage]) -> str:
    """Offline stand-in for the LLM: quote the best passage, which shows the answer came from the file."""
    prompt = messages[0].text or ""
    best = BEST_PASSAGE.search(prompt)
    if best is None:
        return f"{OFFLINE_NOTE} The request has no readable file, so there is nothing to quote."
    return f"{OFFLINE_NOTE} The best matching passage is from {best.group(1)}"


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.converters = {"text": TextFileToDocument(), "markdown": optional(MarkdownToDocument, progress_bar=False)}
        self.converters["pdf"] = optional(PyPDFToDocument)
        self.splitter = DocumentSplitter(split_by="word", split_length=120, split_overlap=20)
        self.answer_pipeline = Pipeline()
        self.answer_pipeline.add_component(
            "prompt_builder", ChatPromptBuilder(template=PROMPT, required_variables=["question", "documents"])
        )
        self.answer_pipeline.add_component("llm", make_chat_generator(offline_reply=offline_answer))
        self.answer_pipeline.connect("prompt_builder.prompt", "llm.messages")
        # Checks the components' settings (keys, URLs, timeouts) now: a wrong one fails the model's
        # load, visibly, instead of every request.
        self.answer_pipeline.warm_up()
        self._passages: OrderedDict[str, list[Document]] = OrderedDict()
        self._lock = threading.Lock()

    def run_file_upload(self, file: StoredFile) -> None:
        """Prepare a new file's passages now (in a worker thread), so the first question about it is quick."""
        if self._converter_kind(file.filename, mimetypes.guess_type(file.filename)[0]) != "unsupported":
            self.passages_of(read_file(file.id))

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        question = get_last_user_input_text(input_items) or ""
        # Reading and converting files blocks: it runs in a worker thread, never on the event loop.
        passages = await asyncio.to_thread(lambda: self.best_passages(resolve_input_files(input_items), question))
        return self.answer(question, passages, body)

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        question = get_last_user_message(messages) or ""
        passages = await asyncio.to_thread(lambda: self.best_passages(resolve_chat_files(messages), question))
        return self.answer(question, passages, body)

    def answer(self, question: str, passages: list[Document], body: dict[str, Any]) -> AsyncIterator[Any]:
        run_args = {
            "prompt_builder": {"question": question, "documents": passages},
            "llm": {"generation_kwargs": generation_kwargs(body)},
        }
        return async_streaming_generator(self.answer_pipeline, run_args)

    def best_passages(self, files: list[InputFile], question: str) -> list[Document]:
        """The TOP_K passages of `files` that best match `question` (BM25 over these files only)."""
        passages = [passage for file in files for passage in self.passages_of(file)]
        store = InMemoryDocumentStore()
        store.write_documents(passages, policy=DuplicatePolicy.SKIP)
        found = InMemoryBM25Retriever(store, top_k=TOP_K).run(query=question)["documents"] if passages else []
        # No word in common with the question (e.g. "Summarise this"): the files' first passages.
        return found or passages[:TOP_K]

    def passages_of(self, file: InputFile) -> list[Document]:
        """`file` converted and split; cached by file id (inline files by their content)."""
        key = file.file_id or hashlib.sha256(file.data).hexdigest()
        with self._lock:
            if key in self._passages:
                self._passages.move_to_end(key)
                return self._passages[key]
        documents = self._convert(file)
        passages = self.splitter.run(documents=documents)["documents"] if documents else []
        with self._lock:
            self._passages[key] = passages
            while len(self._passages) > CACHED_FILES:
                self._passages.popitem(last=False)
        return passages

    def _convert(self, file: InputFile) -> list[Document]:
        kind = self._converter_kind(file.filename, file.mime_type)
        converter = self.converters.get(kind)
        if converter is None:
            missing = f"; to read {kind.upper()} files, {INSTALL[kind]} and restart" if kind in INSTALL else ""
            logger.warning("Cannot read %s (%s): skipped%s", file.filename, file.mime_type or "unknown type", missing)
            return []
        meta = {"filename": file.filename, "file_id": file.file_id}
        source = ByteStream(data=file.data, meta=meta, mime_type=file.mime_type)
        return converter.run(sources=[source])["documents"]

    def _converter_kind(self, filename: str, mime_type: str | None) -> str:
        """Which converter reads a file: by MIME type, else by the name's extension; Markdown falls back to text."""
        mime_type = mime_type or mimetypes.guess_type(filename)[0] or ""
        if mime_type == "application/pdf":
            return "pdf"
        if mime_type == "text/markdown" or filename.lower().endswith((".md", ".markdown")):
            return "markdown" if self.converters.get("markdown") else "text"
        if mime_type.startswith("text/") or mime_type in ("application/json", "application/xml") or "." not in filename:
            return "text"
        return "unsupported"


def optional(converter_class: type, **kwargs: Any) -> Any:
    """The converter, or None when its extra dependency is not installed (PDF needs `pypdf`, Markdown `mdit_plain`)."""
    try:
        return converter_class(**kwargs)
    except ImportError as error:
        logger.info("%s is unavailable, its files are skipped (%s)", converter_class.__name__, error)
        return None
{%- endraw %}

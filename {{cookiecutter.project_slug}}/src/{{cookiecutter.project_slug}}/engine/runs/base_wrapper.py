"""The base class every wrapper in the `wrappers` package derives from.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from haystack.dataclasses import ChatMessage, StreamingChunk

from ..files.file_store import StoredFile
from .events import Event

# What a run method may return: an answer at once, or a stream of pieces.
Piece = str | StreamingChunk | Event
RunResult = str | ChatMessage | Iterator[Piece] | AsyncIterator[Piece]


class BasePipelineWrapper:
    """Build your pipeline in `setup()`; implement the run methods for the APIs you want to serve.

    Chat Completions: `run_chat_completion(self, model, messages, body)` (runs in a worker thread) or
    `async def run_chat_completion_async(...)` (runs on the event loop: never block in it).
    `messages` are the request's OpenAI messages, `body` the whole request JSON.
    Responses: `run_response(self, model, input_items, body)` or `async def run_response_async(...)`,
    where `input_items` is the request's `input` as a list of items (earlier turns included when the
    client sent `previous_response_id`). Read the items, do not change them in place: the next turn of the
    chain reuses them (copy an item before changing it).
    Return a `str`, a Haystack `ChatMessage`, or a generator / async generator yielding `str`,
    `StreamingChunk` or events from `events.py`. Streaming or not is the client's choice: a stream
    is drained into one message when the client asked for `stream: false`.
    A pipeline as a tool: `run_api(self, <typed parameters>) -> <type>` (or `async def run_api_async`), served
    as `POST /<model>/run` and described in `/openapi.json`: its parameters' type hints and defaults are the
    request, its return type the answer, its docstring the description (docs/tools.md).
    """

    context_window: int | None = None
    """Tokens of client input your LLM can take in one call: its window, less what your pipeline adds (prompt,
    passages) and some slack, as the service only estimates (characters / 4). A Responses input longer than
    this, grown by `previous_response_id` or `conversation`, loses its oldest turns with `truncation: "auto"`
    and is a 400 `context_length_exceeded` otherwise. None: the CONTEXT_WINDOW setting, and without it no
    limit here. Set it on the class, or in `setup()` once you know the LLM (docs/writing-a-wrapper.md)."""

    tool_annotations: Mapping[str, Any] | None = None
    """How MCP clients should treat the typed entry (`run_api`) as a tool, in MCP's terms: `{"readOnlyHint": True}`,
    `destructiveHint`, `idempotentHint`, `openWorldHint`, `title`. Hints a client shows, or uses to ask the user
    before a call (docs/tools.md)."""

    def setup(self) -> None:
        """Called once at startup, before the first request for this model; build pipelines and load models here.

        The service already answers meanwhile (its health probes, and a retryable 503 for this model), so a slow
        setup is fine. A plain `def setup` runs in a thread; an `async def setup` on the event loop.
        """

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> RunResult:
        raise NotImplementedError

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> RunResult:
        raise NotImplementedError

    def run_response(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> RunResult:
        raise NotImplementedError

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> RunResult:
        raise NotImplementedError

    def run_compaction(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> RunResult:
        """Optional: your summary of a long conversation, for `POST /v1/responses/compact` (or `async def
        run_compaction_async`). Return what a run method returns; its text is the summary (reasoning and tool
        calls are not), which stands for the conversation in later requests, after its user messages.

        Without it the service asks your Responses method to summarise: the same `input_items` plus one user
        message asking for a summary, with `body` reduced to the model and instructions (docs/responses.md).
        """
        raise NotImplementedError

    async def run_compaction_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> RunResult:
        raise NotImplementedError

    def run_file_upload(self, file: StoredFile) -> None:
        """Implement to be told of each uploaded file, e.g. to index it (see `wrappers/files_qa.py`).

        Called after the file is stored and before the upload is answered, in a worker thread (or awaited
        when you write `async def`). Read its bytes with `uploaded_files.read_file(file.id)`. A failure is
        logged; the upload still succeeds.
        """

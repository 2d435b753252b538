"""The base class every wrapper in the `wrappers` package derives from.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import AsyncIterator, Iterator
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
    client sent `previous_response_id`).
    Return a `str`, a Haystack `ChatMessage`, or a generator / async generator yielding `str`,
    `StreamingChunk` or events from `events.py`. Streaming or not is the client's choice: a stream
    is drained into one message when the client asked for `stream: false`.
    """

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

    def run_file_upload(self, file: StoredFile) -> None:
        """Implement to be told of each uploaded file, e.g. to index it (see `wrappers/files_qa.py`).

        Called after the file is stored and before the upload is answered, in a worker thread (or awaited
        when you write `async def`). Read its bytes with `uploaded_files.read_file(file.id)`. A failure is
        logged; the upload still succeeds.
        """

"""Reading a `multipart/form-data` body as it arrives, so an upload is never held whole in memory.

Werkzeug's sans-IO decoder does the parsing; this module feeds it the request body piece by piece and
hands on three kinds of events: a form field with its value, the start of a file part, and a piece of
that file's bytes. Whatever is malformed or oversized becomes a 400 in OpenAI's envelope.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ..http.errors import OpenAIError

FEED_BYTES = 64 * 1024  # the decoder's buffer holds at most one piece this size (plus a boundary)
MAX_BUFFER_BYTES = 1024 * 1024  # part headers and text outside parts
MAX_FIELD_BYTES = 64 * 1024  # a form field's value (e.g. `purpose`); files have their own limit
MAX_PARTS = 16


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FileStart:
    """A file part begins; its bytes follow as `bytes` events."""

    name: str
    filename: str
    content_type: str | None


FormEvent = FormField | FileStart | bytes


def malformed(reason: str) -> OpenAIError:
    return OpenAIError(400, f"The multipart/form-data body is malformed: {reason}.", code="invalid_multipart")


async def read_form(body: AsyncIterable[bytes], boundary: str, *, idle_timeout: float) -> AsyncIterator[FormEvent]:
    """The events of a multipart body, in order, as its bytes arrive.

    `idle_timeout` bounds the wait for each piece, not the whole upload: a large file on a slow link is fine,
    a client that stalls is not.
    """
    decoder = MultipartDecoder(boundary.encode("latin-1"), MAX_BUFFER_BYTES, max_parts=MAX_PARTS)
    parts = _PartReader(decoder)
    chunks = aiter(body)
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except TimeoutError:
            message = f"No upload data arrived for {idle_timeout:g} seconds."
            raise OpenAIError(408, message, code="request_timeout") from None
        for start in range(0, len(chunk), FEED_BYTES):
            parts.feed(chunk[start : start + FEED_BYTES])
            for event in parts.events():
                yield event
    parts.feed(None)
    for event in parts.events():
        yield event
    if not parts.finished:
        raise malformed("the body ended before the closing boundary")


class _PartReader:
    """Turns the decoder's events into FormEvents, collecting each field's value (bounded)."""

    def __init__(self, decoder: MultipartDecoder) -> None:
        self.decoder = decoder
        self.part: Field | File | None = None
        self.field_value = bytearray()
        self.finished = False

    def feed(self, data: bytes | None) -> None:
        try:
            self.decoder.receive_data(data)
        except RequestEntityTooLarge:
            raise malformed(f"too much data outside a file part, or more than {MAX_PARTS} parts") from None

    def events(self) -> Iterator[FormEvent]:
        while not self.finished:
            try:
                event = self.decoder.next_event()
            except (ValueError, RequestEntityTooLarge) as error:
                raise malformed(str(error) or "bad part") from None
            if isinstance(event, NeedData):
                return
            if isinstance(event, Epilogue):
                self.finished = True
            elif isinstance(event, File):
                self.part = event
                yield FileStart(event.name, event.filename, event.headers.get("content-type"))
            elif isinstance(event, Field):
                self.part = event
                self.field_value.clear()
            elif isinstance(event, Data):
                yield from self._data(event)

    def _data(self, event: Data) -> Iterator[FormEvent]:
        if isinstance(self.part, File):
            if event.data:
                yield event.data
            return
        self.field_value += event.data
        if len(self.field_value) > MAX_FIELD_BYTES:
            raise malformed(f"a form field is larger than {MAX_FIELD_BYTES} bytes")
        if not event.more_data and self.part is not None:
            yield FormField(self.part.name, self.field_value.decode("utf-8", errors="replace"))

"""Server-sent events for any API: keep-alive pings, batched writes, and stopping the run on disconnect.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from quart import Response

from ..http.errors import OpenAIError
from ..observability import metrics
from ..runs.events import Event, StreamError
from ..runs.runner import EventStream

PING = ": ping\n\n"
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamEncoder(Protocol):
    def start(self) -> str: ...

    def encode(self, events: list[Event]) -> str: ...

    def finish(self) -> str: ...


OnFinish = Callable[[], Awaitable[None]]  # awaited between the run's end and the last event (e.g. to store it)


async def sse_body(
    stream: EventStream,
    encoder: StreamEncoder,
    first_batch: list[Event],
    keepalive_seconds: float,
    on_finish: OnFinish | None = None,
) -> AsyncIterator[str]:
    """Encode the run's events as they come; a `: ping` comment fills each silence."""
    meter = metrics.stream_meter()  # None with METRICS=off
    try:
        if preamble := encoder.start():
            yield preamble
        batch: list[Event] | None = first_batch
        while batch is not None:
            if not batch:
                yield PING
            else:
                yield encoder.encode(batch)
                if meter is not None:
                    meter.written(batch)
                if any(isinstance(event, StreamError) for event in batch):
                    return
            batch = await stream.next_batch(keepalive_seconds)
        last = encoder.finish()
        if on_finish is not None:
            try:
                await on_finish()
            except OpenAIError as error:  # e.g. the store is unreachable: the stream fails instead
                last = encoder.encode([as_stream_error(error)])
        yield last
    finally:
        # Runs on normal end and when the client disconnects (the generator is cancelled).
        stream.close()
        if meter is not None:
            meter.closed()


def sse_response(body: AsyncIterator[str]) -> Response:
    response = Response(body, headers=SSE_HEADERS)
    response.timeout = None  # Quart's response timeout would cut long streams silently.
    return response


async def stream_response(
    stream: EventStream, encoder: StreamEncoder, keepalive_seconds: float, on_finish: OnFinish | None = None
) -> Response:
    """The SSE response for a run, or, when the run fails before any output, a JSON error with its status.

    The first events are awaited for up to one keep-alive interval, so an immediate failure still gets a proper
    status code; a slower run starts streaming (with pings) and reports a later failure inside the stream.
    """
    try:
        first_batch = await stream.next_batch(keepalive_seconds)
    except BaseException:
        stream.close()
        raise
    if first_batch and isinstance(first_batch[0], StreamError):
        stream.close()
        raise error_response(first_batch[0])
    return sse_response(sse_body(stream, encoder, first_batch, keepalive_seconds, on_finish))


def as_stream_error(error: OpenAIError) -> StreamError:
    """An error found after the stream began (e.g. by a store write at its end), to end the stream with."""
    return StreamError(error.message, error.type, error.code, error.status, error.param)


def error_response(error: StreamError) -> OpenAIError:
    """The JSON error for a run that failed before it produced anything."""
    return OpenAIError(
        error.status, error.message, type=error.type, param=error.param, code=error.code, headers=error.headers
    )

"""The load generator: a small HTTP/1.1 client on raw asyncio streams, and the loops that drive it.

Raw sockets rather than httpx or the openai SDK, because the client shares two cores with the
servers it measures: every microsecond it spends is taken from them, and a heavy client flattens
the differences we are looking for. It speaks just what the targets answer: Content-Length or
chunked bodies, keep-alive or `Connection: close`, and OpenAI chat SSE (`data: {...}` events,
`\\n` or `\\r\\n` line ends, `[DONE]` optional because hayhooks does not send it); and the Responses
API's answers (`RESPONSES_PATH`), for the state store benchmark (`stores.py`).

Times come from `time.perf_counter()`. TTFT is measured from the moment the client starts the
request (including the connect, when the request needs a new connection) to the parse of the
first SSE event whose delta carries non-empty `content`. Every loop here ends by a deadline and
a count, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
CONNECT_TIMEOUT = 10.0


class HttpError(Exception):
    """The server answered something this client cannot read as HTTP/1.1."""


# One earlier turn of a chat: a chat UI sends the whole conversation with every request.
EARLIER_TURN = "An earlier turn of this conversation, a sentence or two long, as chats go. " * 2


def chat_body(model: str, prompt: str, stream: bool, history: int = 0) -> bytes:
    """The request every target gets: `history` earlier messages (user and assistant taking turns), then `prompt`."""
    earlier = [{"role": ("user", "assistant")[i % 2], "content": EARLIER_TURN} for i in range(history, 0, -1)]
    messages = [*earlier, {"role": "user", "content": prompt}]
    return json.dumps({"model": model, "messages": messages, "stream": stream}).encode()


def request_bytes(host: str, port: int, path: str, body: bytes | None, method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; `reusable` is False once the server said it closes."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reusable = False

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), CONNECT_TIMEOUT
        )
        self.reusable = True

    def close(self) -> None:
        self.reusable = False
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def abort(self) -> None:
        """Hang up at once (what a browser tab or a cancelled SDK call does)."""
        self.reusable = False
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def ensure_open(self) -> None:
        if not self.reusable or self.writer is None or self.writer.is_closing():
            self.close()
            await self.open()

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.reusable = False
        return int(parts[1]), headers

    async def body_pieces(self, headers: dict[str, str]) -> Any:
        """Yield the body as it arrives; returns normally only when the body ended as HTTP says."""
        assert self.reader is not None
        reader = self.reader
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while remaining > 0:
                data = await reader.read(min(remaining, 1 << 16))
                if not data:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(data)
                yield data
        else:
            self.reusable = False
            while data := await reader.read(1 << 16):
                yield data


@dataclass
class Result:
    """One request, seen from the client. Times are perf_counter seconds."""

    ok: bool = False
    status: int = 0
    started: float = 0.0
    ended: float = 0.0
    ttft: float | None = None
    content_events: int = 0
    done_marker: bool = False
    body_complete: bool = False
    error: str | None = None
    content: str = ""
    # time.monotonic() when the client hung up on purpose (comparable with the upstream's stamps).
    hung_up_at: float | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started


class Meter:
    """Counts the content characters that arrive inside a time window, from every stream open then.

    Throughput measured this way does not depend on how long one stream is compared to the window.
    """

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.chars = 0

    def add(self, chars: int) -> None:
        if self.start <= time.perf_counter() <= self.end:
            self.chars += chars


class SSEReader:
    """Splits a decoded body into SSE events and keeps what the harness checks: text, TTFT, [DONE]."""

    def __init__(self, started: float, meter: Meter | None = None) -> None:
        self.started = started
        self.buffer = b""
        self.parts: list[str] = []
        self.ttft: float | None = None
        self.events = 0
        self.done = False
        self.error: str | None = None
        self.meter = meter

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if b"\r" in self.buffer:
            self.buffer = self.buffer.replace(b"\r\n", b"\n")
        while (end := self.buffer.find(b"\n\n")) >= 0:
            event, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            self._event(event)

    def _event(self, event: bytes) -> None:
        data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if not data:
            return  # a comment (keep-alive ping) or an event without data
        payload = b"\n".join(data)
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            self.error = "undecodable SSE data"
            return
        if "error" in chunk and not chunk.get("choices"):
            self.error = str(chunk["error"])[:200]
            return
        if chunk.get("type") == "response.failed":  # the Responses API's in-stream failure
            self.error = str(chunk["response"].get("error"))[:200]
            return
        if chunk.get("type") == "response.output_text.delta":
            self._text(chunk["delta"])
        for choice in chunk.get("choices") or ():
            self._text((choice.get("delta") or {}).get("content"))

    def _text(self, text: str | None) -> None:
        if text:
            if self.ttft is None:
                self.ttft = time.perf_counter() - self.started
            if self.meter is not None:
                self.meter.add(len(text))
            self.parts.append(text)
            self.events += 1


async def chat_request(
    conn: Connection,
    body: bytes,
    *,
    stream: bool,
    timeout: float,
    path: str = CHAT_PATH,
    hang_up_after_first_content: bool = False,
    meter: Meter | None = None,
) -> Result:
    """One chat completion on `conn` (opened or reopened as needed), read to its end or until `timeout`."""
    result = Result(started=time.perf_counter())
    try:
        async with asyncio.timeout(timeout):
            try:
                await conn.ensure_open()
            except TimeoutError:
                # A full accept queue drops SYNs: the client retries for a while, then gives up, as SDKs do.
                raise ConnectionError("connect timeout") from None
            await conn.send(request_bytes(conn.host, conn.port, path, body))
            result.status, headers = await conn.read_head()
            if stream and result.status == 200:
                await _read_stream(conn, headers, result, hang_up_after_first_content, meter)
            else:
                raw = b"".join([piece async for piece in conn.body_pieces(headers)])
                result.body_complete = True
                if result.status == 200:
                    result.content = answer_text(json.loads(raw))
                    result.content_events = 1
                else:
                    result.error = raw[:200].decode("utf-8", "replace")
    except TimeoutError:
        result.error = "timeout"
        conn.abort()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError, KeyError) as error:
        result.error = f"{type(error).__name__}: {error}"[:200]
        conn.abort()
    result.ended = time.perf_counter()
    if not result.body_complete and conn.reusable:
        conn.abort()
    return result


def answer_text(answer: dict[str, Any]) -> str:
    """The text of a chat completion, or of a Responses API response."""
    if "choices" in answer:
        return answer["choices"][0]["message"].get("content") or ""
    parts = [part for item in answer["output"] if item["type"] == "message" for part in item["content"]]
    return "".join(part["text"] for part in parts if part["type"] == "output_text")


async def _read_stream(
    conn: Connection, headers: dict[str, str], result: Result, hang_up: bool, meter: Meter | None
) -> None:
    sse = SSEReader(result.started, meter)
    pieces = conn.body_pieces(headers)
    try:
        async for piece in pieces:
            sse.feed(piece)
            if hang_up and sse.ttft is not None:
                result.hung_up_at = time.monotonic()
                conn.abort()
                break
        else:
            result.body_complete = True
    finally:
        with contextlib.suppress(Exception):
            await pieces.aclose()
        result.ttft = sse.ttft
        result.content = "".join(sse.parts)
        result.content_events = sse.events
        result.done_marker = sse.done
        result.error = result.error or sse.error


def intact(result: Result, expected: str) -> bool:
    """Status 200, the body ended as HTTP says, no error event, and exactly the expected text."""
    return result.status == 200 and result.body_complete and result.error is None and result.content == expected


# ---- the loops ------------------------------------------------------------------------------


@dataclass
class LoopRun:
    """What a closed loop measured.

    `results`: the requests started inside the window, each followed to its end. `completed`: how
    many intact-or-not requests ended inside the window (any start). `chars`: streamed content
    characters received inside the window. `window`: its length in seconds.
    """

    results: list[Result] = field(default_factory=list)
    ended_in_window: list[Result] = field(default_factory=list)
    chars: int = 0
    window: float = 0.0
    unfinished: int = 0


async def closed_loop(
    host: str,
    port: int,
    body: bytes,
    *,
    stream: bool,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int,
    request_timeout: float,
    path: str = CHAT_PATH,
) -> LoopRun:
    """`concurrency` clients, each sending its next request as soon as the last one ended.

    Three phases, so every measured moment sees the full concurrency: a warm-up of `warmup`
    seconds; the window of `duration` seconds (closed early once `max_requests` requests started
    in it), whose requests are recorded; and a cool-down in which the clients keep the load on
    until the last recorded request has ended, after which their leftover requests are dropped.
    Rates count what ended (requests) or arrived (stream content) inside the window.
    """
    start = time.perf_counter()
    meter = Meter(start + warmup, start + warmup + duration)
    run = LoopRun()
    issued = 0
    in_flight = 0
    recorded_done = asyncio.Event()

    def window_open(now: float) -> bool:
        return meter.start <= now < meter.end and issued < max_requests

    async def client(index: int) -> None:
        nonlocal issued, in_flight
        conn = Connection(host, port)
        # Independent clients do not fire in lockstep: spread the first requests a little.
        await asyncio.sleep(0.0005 * (index % 64))
        try:
            while not recorded_done.is_set():
                now = time.perf_counter()
                recorded = window_open(now)
                if recorded:
                    issued += 1
                    in_flight += 1
                    if issued >= max_requests:
                        meter.end = now  # the window closes with the last recorded start
                result = await chat_request(conn, body, stream=stream, timeout=request_timeout, path=path, meter=meter)
                if meter.start <= result.ended <= meter.end:
                    run.ended_in_window.append(result)
                if recorded:
                    run.results.append(result)
                    in_flight -= 1
                if in_flight == 0 and time.perf_counter() >= meter.end:
                    recorded_done.set()
                if result.error is not None:
                    await asyncio.sleep(0.01)  # a refused or broken connection must not spin
        finally:
            conn.close()

    tasks = [asyncio.create_task(client(i)) for i in range(concurrency)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(recorded_done.wait(), warmup + duration + request_timeout + 5)
    run.unfinished = in_flight
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    run.chars = meter.chars
    run.window = max(meter.end - meter.start, 1e-9)
    return run


async def many_streams(
    host: str,
    port: int,
    bodies: list[bytes],
    *,
    deadline: float,
    ramp: float = 0.0,
    hang_up_after_first_content: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> list[Result]:
    """Open one streaming request per body, all at once (or spread over `ramp` seconds), each on its own connection.

    Every stream is abandoned when `deadline` seconds have passed since the first one started.
    """
    start = time.perf_counter()
    finished = 0

    async def one(index: int, body: bytes) -> Result:
        nonlocal finished
        if ramp > 0:
            await asyncio.sleep(ramp * index / len(bodies))
        conn = Connection(host, port)
        remaining = deadline - (time.perf_counter() - start)
        try:
            return await chat_request(
                conn,
                body,
                stream=True,
                timeout=max(remaining, 0.001),
                hang_up_after_first_content=hang_up_after_first_content,
            )
        finally:
            conn.close()
            finished += 1
            if on_progress is not None:
                on_progress(finished)

    return list(await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies))))


async def get_json(host: str, port: int, path: str, timeout: float = 10.0) -> Any:
    """A GET for JSON (the upstream's /stats)."""
    conn = Connection(host, port)
    try:
        async with asyncio.timeout(timeout):
            await conn.open()
            await conn.send(request_bytes(host, port, path, None, method="GET"))
            status, headers = await conn.read_head()
            raw = b"".join([piece async for piece in conn.body_pieces(headers)])
        if status != 200:
            raise HttpError(f"GET {path}: status {status}")
        return json.loads(raw)
    finally:
        conn.close()


# ---- statistics -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    middle = len(clean) // 2
    return clean[middle] if len(clean) % 2 else (clean[middle - 1] + clean[middle]) / 2

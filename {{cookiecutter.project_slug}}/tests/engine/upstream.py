"""A scripted OpenAI-compatible upstream LLM on loopback.

Tests use it in place of a paid model: each test scripts what the next call(s) to
`POST /v1/chat/completions` answer, then checks what the service made of it. Benchmarks and
client tests reuse it standalone:

    python tests/engine/upstream.py --port 8001 --text "Hello there" --tokens-per-second 20

It is a plain asyncio HTTP/1.1 server, by default one request per connection (`Connection: close`), so
that every SSE chunk written, and the moment the client hangs up, are known exactly. `keep_alive=True`
(`--keep-alive`) serves further requests on a connection whose response went out whole, as real LLM
servers do: a benchmark then does not pay for a TCP connection per call. It imports nothing from the
service package on purpose.

`GET /stats` reports what it saw as JSON (per stream: the prompt, tokens sent, whether it completed
or the client left, and `time.monotonic()` stamps; `?times=1` adds each token's send time), so a
benchmark in another process can count the tokens still sent after its client hung up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODELS_PATHS = ("/v1/models", "/models")
STATS_PATH = "/stats"
MAX_HEADER_BYTES = 64 * 1024
READ_TIMEOUT = 30.0
_TOKEN_RE = re.compile(r"\S+\s*|\s+")


@dataclass
class Script:
    """What one chat completion call answers. `text=None` means: echo the last user message."""

    text: str | None = None
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    finish_reason: str | None = None
    status: int = 200
    error_message: str = "scripted upstream failure"
    # Extra headers of an error response (e.g. Retry-After on a 429).
    headers: dict[str, str] = field(default_factory=dict)
    # The whole JSON body of a refusal, as a real server words it (llama.cpp: an int `code`, its own `type`).
    error_body: dict[str, Any] | None = None
    # The text is streamed this many times over (10**9: a stream that does not end while anyone reads it).
    repeat: int = 1
    # False: no usage chunk even when asked for, as llama-cpp-python's server streams.
    streams_usage: bool = True
    # Mid-stream failures, after this many chunks: an error event (as OpenAI sends one), or a dropped connection.
    # Without streaming, `drop_after` drops the connection before any answer.
    error_event_after: int | None = None
    drop_after: int | None = None
    # After this many chunks, an event that is not JSON (holding `error_message`); without streaming, a body that is
    # not JSON although its Content-Type says so.
    garbage_after: int | None = None
    # True: every piece of a streamed tool call repeats its id and name, as some compatible servers send them.
    repeats_call_head: bool = False
    # The request fields read as the answer's length limit (the text is cut there, finish_reason "length"):
    # ("max_tokens",) is llama-cpp-python's server and Ollama, which ignore `max_completion_tokens`. (): no limit.
    length_limit_fields: tuple[str, ...] = ()


@dataclass
class StreamRecord:
    """What happened to one streamed response, as seen from the upstream's side of the socket."""

    model: str
    planned_chunks: int
    tokens_sent: int = 0
    completed: bool = False
    disconnected: bool = False
    # The last user message, so a client can find its own stream; stamps are time.monotonic() (system-wide on Linux).
    prompt: str = ""
    started_at: float = 0.0
    ended_at: float | None = None
    sent_times: list[float] = field(default_factory=list)

    def as_json(self, with_times: bool = False) -> dict[str, Any]:
        data = {
            "model": self.model,
            "prompt": self.prompt,
            "planned_chunks": self.planned_chunks,
            "tokens_sent": self.tokens_sent,
            "completed": self.completed,
            "disconnected": self.disconnected,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }
        if with_times:
            data["sent_times"] = list(self.sent_times)
        return data


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to exactly the same text."""
    return _TOKEN_RE.findall(text)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message (string content or text parts), '' if none."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
            )
    return ""


def _count_prompt_words(messages: list[dict[str, Any]]) -> int:
    """A deterministic stand-in for prompt token counting."""
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
    return words


def _error_body(message: str, err_type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


class _Request:
    """A parsed HTTP request: just what this server needs."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, query: str = "") -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.query = query


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Read one HTTP/1.1 request (Content-Length or chunked body); None when the peer sent nothing."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > MAX_HEADER_BYTES:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    path, _, query = target.partition("?")
    return _Request(method, path, headers, body, query)


class ScriptedUpstream:
    """The server plus the small API tests use to script it and read what it saw.

    Thread-safe: the server runs on its own event loop (a background thread via `start()`, or
    the caller's loop via `serve_forever()`), tests call `script()` and read `requests` from
    their own thread.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, default: Script | None = None, keep_alive: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.keep_alive = keep_alive
        self._default = default or Script()
        self._initial_default = self._default
        self._lock = threading.Lock()
        self._queue: deque[Script] = deque()
        self._requests: list[dict[str, Any]] = []
        self._request_headers: list[dict[str, str]] = []
        self._streams: list[StreamRecord] = []
        self._connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- scripting API -------------------------------------------------------------------

    def script(self, **kwargs: Any) -> Script:
        """Queue the answer for the next call; several calls queue a multi-call flow (e.g. an Agent)."""
        script = Script(**kwargs)
        with self._lock:
            self._queue.append(script)
        return script

    def set_default(self, **kwargs: Any) -> None:
        """Answer used when the queue is empty (default: echo the last user message)."""
        with self._lock:
            self._default = Script(**kwargs)

    def reset(self) -> None:
        """Forget scripts, requests and streams: each test starts from a clean upstream."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._request_headers.clear()
            self._streams.clear()
            self._connections = 0
            self._default = self._initial_default

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat completion request body received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The headers of each chat completion request in `requests`, names in lower case."""
        with self._lock:
            return list(self._request_headers)

    @property
    def streams(self) -> list[StreamRecord]:
        """One record per streamed response, in order (live objects: they keep updating)."""
        with self._lock:
            return list(self._streams)

    @property
    def connections(self) -> int:
        """TCP connections accepted: with `keep_alive`, fewer than the requests when clients reuse them."""
        with self._lock:
            return self._connections

    @property
    def tokens_sent(self) -> int:
        """SSE chunks written successfully across all streams."""
        with self._lock:
            return sum(record.tokens_sent for record in self._streams)

    def stats(self, with_times: bool = False) -> dict[str, Any]:
        """Counters and per-stream records as JSON-ready data (what `GET /stats` answers)."""
        with self._lock:
            streams = [record.as_json(with_times) for record in self._streams]
            requests = len(self._requests)
            connections = self._connections
        return {
            "requests": requests,
            "connections": connections,
            "streams": streams,
            "tokens_sent": sum(s["tokens_sent"] for s in streams),
            "active_streams": sum(1 for s in streams if s["ended_at"] is None),
            "now": time.monotonic(),
        }

    @property
    def pending_scripts(self) -> int:
        with self._lock:
            return len(self._queue)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ScriptedUpstream:
        """Serve in a background thread with its own event loop; returns once listening."""
        self._thread = threading.Thread(target=self._thread_main, name="scripted-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("scripted upstream did not start listening in time")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background server and join its thread (bounded)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _thread_main(self) -> None:
        asyncio.run(self.serve_forever())

    async def serve_forever(self) -> None:
        """Listen until `stop()`; usable directly from a standalone script."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # A deep accept queue: a benchmark opens a thousand streams at once, and a full queue drops connections.
        server = await asyncio.start_server(self._on_connection, self.host, self.port, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    # ---- HTTP ----------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
        try:
            while request := await asyncio.wait_for(_read_request(reader), READ_TIMEOUT):
                went_out_whole = await self._dispatch(request, reader, writer)
                if not (went_out_whole and self._keeps_alive(request)):
                    break
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # stopped while the connection was open (an idle keep-alive one, say): asyncio would log it
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _keeps_alive(self, request: _Request) -> bool:
        return self.keep_alive and request.headers.get("connection", "").lower() != "close"

    def _connection_header(self) -> str:
        return "Connection: keep-alive\r\n" if self.keep_alive else "Connection: close\r\n"

    async def _dispatch(self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the response went out whole (the connection may carry another)."""
        if request.path in CHAT_PATHS:
            if request.method != "POST":
                return await self._send_json(writer, 405, _error_body("Method not allowed"))
            return await self._chat(request, reader, writer)
        if request.path == STATS_PATH and request.method == "GET":
            return await self._send_json(writer, 200, self.stats(with_times="times=1" in request.query.split("&")))
        if request.path in MODELS_PATHS and request.method == "GET":
            model = {"id": "scripted-model", "object": "model", "created": 0, "owned_by": "upstream"}
            return await self._send_json(writer, 200, {"object": "list", "data": [model]})
        return await self._send_json(writer, 404, _error_body(f"Unknown route {request.path}"))

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> bool:
        data = json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            f"{extra}{self._connection_header()}\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        return True

    def _next_script(self) -> Script:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    async def _chat(self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            return await self._send_json(writer, 400, _error_body("Request body is not valid JSON"))
        with self._lock:
            self._requests.append(body)
            self._request_headers.append(request.headers)
        script = self._next_script()
        if script.status != 200:
            err_type = "server_error" if script.status >= 500 else "invalid_request_error"
            error_body = script.error_body or _error_body(script.error_message, err_type)
            return await self._send_json(writer, script.status, error_body, script.headers)
        messages = body.get("messages") or []
        text = script.text if script.text is not None else f"Echo: {last_user_text(messages)}"
        answer = _Answer(script, body, text)
        if body.get("stream"):
            return await self._stream(answer, reader, writer, prompt=last_user_text(messages))
        if script.first_token_delay > 0:  # a whole answer stalls the same way: nothing until the delay is over
            gone = asyncio.Event()
            watcher = asyncio.create_task(_watch_disconnect(reader, gone))
            try:
                await _sleep_unless(gone, script.first_token_delay)
            finally:
                await _stop(watcher)
            if gone.is_set():
                return False
        if script.drop_after is not None:
            writer.transport.abort()
            return False
        if script.garbage_after is not None:
            return await self._send_raw(writer, 200, ('{"id": "chatcmpl-x", "oops": "' + script.error_message).encode())
        return await self._send_json(writer, 200, answer.completion())

    async def _send_raw(self, writer: asyncio.StreamWriter, status: int, data: bytes) -> bool:
        """A body said to be JSON, sent as it is (which may well not be JSON)."""
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            f"{self._connection_header()}\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        return True

    async def _stream(
        self, answer: _Answer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, prompt: str = ""
    ) -> bool:
        """Write the answer as SSE, pacing it as scripted; True when the stream went out whole."""
        chunks = answer.chunks()
        record = StreamRecord(
            model=answer.model, planned_chunks=answer.chunk_count(), prompt=prompt, started_at=time.monotonic()
        )
        with self._lock:
            self._streams.append(record)
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"{self._connection_header()}\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(reader, gone))
        try:
            for position, chunk in enumerate(chunks):
                delay = answer.script.first_token_delay if position == 0 else answer.script.token_delay
                if delay > 0 and not gone.is_set():
                    await _sleep_unless(gone, delay)
                if gone.is_set():
                    record.disconnected = True
                    return False
                if position == answer.script.drop_after:
                    writer.transport.abort()  # no closing chunk: the body ends mid-stream
                    return False
                if position == answer.script.garbage_after:
                    garbage = 'data: {"choices": [{"delta": "' + answer.script.error_message + "\n\n"
                    writer.write(_http_chunk(garbage.encode()) + b"0\r\n\r\n")
                    await writer.drain()
                    return False
                if position == answer.script.error_event_after:
                    event = _error_body(answer.script.error_message, "server_error")
                    writer.write(_http_chunk(f"data: {json.dumps(event)}\n\n".encode()) + b"0\r\n\r\n")
                    await writer.drain()
                    return False
                try:
                    writer.write(_http_chunk(f"data: {json.dumps(chunk)}\n\n".encode()))
                    await writer.drain()
                except ConnectionError:
                    record.disconnected = True
                    return False
                record.tokens_sent += 1
                record.sent_times.append(time.monotonic())
            # Stop watching before the last chunk: a keep-alive client sends its next request once it has it.
            await _stop(watcher)
            writer.write(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            record.completed = True
            return True
        except ConnectionError:
            record.disconnected = True
            return False
        finally:
            record.ended_at = time.monotonic()
            await _stop(watcher)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sleep_unless(gone: asyncio.Event, delay: float) -> None:
    """Wait `delay` seconds, or until `gone` is set; unlike wait_for, it creates no task per token."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await gone.wait()


async def _watch_disconnect(reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
    """Set `gone` when the client closes its side (EOF or reset) while we are streaming."""
    try:
        while await reader.read(1024):
            pass
    except (ConnectionError, OSError):
        pass
    gone.set()


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class _Answer:
    """Builds the OpenAI-shaped JSON for one scripted answer, streamed or whole."""

    def __init__(self, script: Script, body: dict[str, Any], text: str) -> None:
        self.script = script
        self.model = str(body.get("model") or "scripted-model")
        self.text = text
        self.include_usage = script.streams_usage and bool((body.get("stream_options") or {}).get("include_usage"))
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.tool_calls = [
            {
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
                "name": call["name"],
                "arguments": call.get("arguments", "{}"),
            }
            for call in script.tool_calls
        ]
        self.text_tokens = split_tokens(text)
        limits = [body[name] for name in script.length_limit_fields if isinstance(body.get(name), int)]
        self.cut_short = bool(limits) and min(limits) < len(self.text_tokens)
        if self.cut_short:
            self.text_tokens = self.text_tokens[: min(limits)]
            self.text = "".join(self.text_tokens)
        self.reasoning_tokens = split_tokens(script.reasoning)
        if script.usage is not None:
            self.prompt_tokens, self.completion_tokens = script.usage
        else:
            self.prompt_tokens = _count_prompt_words(body.get("messages") or [])
            self.completion_tokens = len(self.text_tokens) * script.repeat + len(self.reasoning_tokens)

    @property
    def finish_reason(self) -> str:
        if self.script.finish_reason:
            return self.script.finish_reason
        return "length" if self.cut_short else "tool_calls" if self.tool_calls else "stop"

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None, "refusal": None}
        if self.script.reasoning:
            message["reasoning_content"] = self.script.reasoning
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.tool_calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The whole stream, OpenAI style: role first, reasoning, content, tool calls, finish, usage.

        Made as it is sent, so a stream repeated without end takes no memory.
        """
        yield self._chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in self.reasoning_tokens:
            yield self._chunk({"reasoning_content": piece})
        for _ in range(self.script.repeat):
            for piece in self.text_tokens:
                yield self._chunk({"content": piece})
        for index, call in enumerate(self.tool_calls):
            head = {"index": index, "id": call["id"], "type": "function", "function": {"name": call["name"]}}
            head["function"]["arguments"] = ""
            yield self._chunk({"tool_calls": [head]})
            for piece in self._argument_pieces(call["arguments"]):
                more = {"index": index, "function": {"arguments": piece}}
                if self.script.repeats_call_head:
                    more |= {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": piece},
                    }
                yield self._chunk({"tool_calls": [more]})
        yield self._chunk({}, self.finish_reason)
        if self.include_usage:
            yield {**self._chunk({}), "choices": [], "usage": self.usage()}

    def chunk_count(self) -> int:
        """How many chunks `chunks()` makes."""
        calls = sum(1 + len(self._argument_pieces(call["arguments"])) for call in self.tool_calls)
        text = len(self.text_tokens) * self.script.repeat
        return 2 + len(self.reasoning_tokens) + text + calls + int(self.include_usage)

    @staticmethod
    def _argument_pieces(arguments: str) -> list[str]:
        return [arguments[start : start + 8] for start in range(0, len(arguments), 8)]


def main(argv: list[str] | None = None) -> None:
    """Standalone mode: serve the same scripted answer (or an echo) for every request until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible upstream LLM")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--text", default=None, help="answer text (default: 'Echo: <last user message>')")
    parser.add_argument("--reasoning", default="", help="reasoning_content streamed before the text")
    parser.add_argument("--tokens-per-second", type=float, default=0.0, help="0 means as fast as possible")
    parser.add_argument("--first-token-delay", type=float, default=0.0, help="seconds before the first chunk")
    parser.add_argument("--keep-alive", action="store_true", help="serve further requests on a connection")
    parser.add_argument("--repeat", type=int, default=1, help="stream the text this many times over")
    args = parser.parse_args(argv)
    delay = 1.0 / args.tokens_per_second if args.tokens_per_second > 0 else 0.0
    default = Script(
        text=args.text,
        reasoning=args.reasoning,
        token_delay=delay,
        first_token_delay=args.first_token_delay,
        repeat=args.repeat,
    )
    upstream = ScriptedUpstream(args.host, args.port, default=default, keep_alive=args.keep_alive)

    async def run() -> None:
        task = asyncio.create_task(upstream.serve_forever())
        await asyncio.get_running_loop().run_in_executor(None, upstream._ready.wait)
        print(f"scripted upstream listening on {upstream.base_url}/v1", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()

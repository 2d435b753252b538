"""A client that stops reading but keeps its connection open: the LLM must not be read for nobody.

The upstream streams without end as fast as it can. The client reads the response headers, then nothing more,
with a small receive buffer. The service's buffers fill, the run pauses, so the upstream soon cannot send more:
what it sent stops growing. With IDLE_CLIENT_SECONDS set, the service then hangs up on both. What the service
read by then is bounded in bytes: its buffers count characters as well as events, and MAX_UNSENT_BYTES keeps the
kernel from taking megabytes of the answer for a client that reads nothing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.engine.http.unsent_bytes import NOTSENT_LOWAT, limit_unsent_bytes_of_listeners
from {{ cookiecutter.project_slug }}.engine.runs.events import TextDelta
from {{ cookiecutter.project_slug }}.engine.runs.runner import EventStream

from support import TESTS_DIR, ServiceProcess, base_env, user, wait_until
from upstream import ScriptedUpstream, StreamRecord

ENDLESS = 10**9  # the scripted text is repeated this often: no stream ends while anyone reads it
# Tokens of 1 KB, so the sockets' buffers between the service and the client fill after a few thousand.
TOKEN = "x" * 1023 + " "
STALL_WINDOWS = 2  # this many quiet windows in a row count as "the upstream is held back" (not a busy machine)
STALL_WINDOW = 1.0
STALL_TIMEOUT = 60.0
# Most one held stream may have read of the LLM's answer, in bytes of text: MAX_UNSENT_BYTES (64 KiB) in the kernel,
# the client's window, asyncio's write buffer (64 KiB) and one write, the run's events (64 Ki characters) and
# chunks (64 Ki), the HTTP client's read buffer, with room to spare. Without the bounds, the kernel alone took
# megabytes (tcp_wmem) and the run's 256 events a quarter of one.
HELD_BYTES = 1024 * 1024
# A chunk as the upstream sends it, at most: the text and its chat.completion.chunk JSON and HTTP framing.
CHUNK_BYTES = len(TOKEN) + 400


def _service(
    name: str, upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory, **settings: str
) -> Iterator[ServiceProcess]:
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        PYTHONPATH=str(TESTS_DIR),
        **settings,
    )
    service = ServiceProcess(name=name, workdir=tmp_path_factory.mktemp(name), env=env).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def examples_never_idle(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The example wrappers with the idle-client limit off: only backpressure holds the upstream back."""
    yield from _service("examples_never_idle", upstream, tmp_path_factory, IDLE_CLIENT_SECONDS="0")


@pytest.fixture(scope="module")
def test_wrappers_never_idle(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    yield from _service(
        "test_wrappers_never_idle",
        upstream,
        tmp_path_factory,
        IDLE_CLIENT_SECONDS="0",
        WRAPPERS_PACKAGE="test_wrappers",
    )


@pytest.fixture(scope="module")
def impatient_service(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Hangs up on a client that took nothing for 2 s."""
    yield from _service("impatient_service", upstream, tmp_path_factory, IDLE_CLIENT_SECONDS="2")


@contextmanager
def dead_reader(service: ServiceProcess, path: str, body: dict[str, object]) -> Iterator[socket.socket]:
    """A connection that sends the request, reads the response headers, and then reads nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
    sock.settimeout(30)
    try:
        sock.connect(("127.0.0.1", service.port))
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        sock.sendall(head.encode() + payload)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(1024)
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        yield sock
    finally:
        sock.close()


def _stalls(record: StreamRecord) -> bool:
    """Whether the upstream stops sending (the service no longer reads) for STALL_WINDOWS windows in a row."""
    deadline = time.monotonic() + STALL_TIMEOUT
    quiet = 0
    while time.monotonic() < deadline and not record.disconnected:
        before = record.tokens_sent
        time.sleep(STALL_WINDOW)
        quiet = quiet + 1 if record.tokens_sent == before else 0
        if quiet == STALL_WINDOWS:
            return True
    return False


def _kernel_queued(port: int) -> int | None:
    """Bytes the kernel holds in TCP connections to or from `port` (sent, not yet read); None without /proc."""
    total = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            return None
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            ports = {int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)}
            if port in ports:
                total += sum(int(queue, 16) for queue in fields[4].split(":"))
    return total


def _latest_stream(upstream: ScriptedUpstream, prompt: str) -> StreamRecord:
    found = wait_until(lambda: [record for record in upstream.streams if record.prompt == prompt], timeout=30)
    assert found, "the upstream was never called"
    return found[-1]


CASES = [
    ("examples_never_idle", "chat_stream", "/v1/chat/completions"),
    ("examples_never_idle", "agent", "/v1/chat/completions"),
    ("examples_never_idle", "chat_stream", "/v1/responses"),
    ("test_wrappers_never_idle", "sync_pipeline_stream", "/v1/chat/completions"),
    ("test_wrappers_never_idle", "sync_pipeline_stream_stepped", "/v1/chat/completions"),
    ("test_wrappers_never_idle", "sync_pipeline_stream_threaded", "/v1/chat/completions"),
    ("test_wrappers_never_idle", "sync_pipeline_stream_pulled", "/v1/chat/completions"),
]


@pytest.mark.parametrize(("fixture", "model", "path"), CASES, ids=[f"{m}{p.split('/')[-1]}" for _, m, p in CASES])
def test_a_client_that_stops_reading_holds_the_upstream_back(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, fixture: str, model: str, path: str
) -> None:
    """Every way a run streams (lone LLM, Agent, stepped pipeline, worker thread, pulled) pauses with its reader."""
    service: ServiceProcess = request.getfixturevalue(fixture)
    prompt = f"dead reader {model} {path}"
    upstream.script(text=TOKEN, repeat=ENDLESS)
    body = {"model": model, "stream": True}
    body |= {"input": prompt} if path == "/v1/responses" else {"messages": user(prompt)}
    with dead_reader(service, path, body):
        record = _latest_stream(upstream, prompt)
        assert _stalls(record), f"the service read {record.tokens_sent} chunks for a client that reads nothing"
        held_at = record.tokens_sent
        time.sleep(STALL_WINDOW)
        assert record.tokens_sent == held_at and not record.completed
        print(f"{model} {path}: the upstream was held back after {held_at} chunks of 1 KB")
    assert wait_until(lambda: record.disconnected, timeout=30), "the upstream stream outlived its client"


def test_a_dead_reader_holds_a_bounded_part_of_the_answer(
    examples_never_idle: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Once held back, the service has read at most HELD_BYTES of the LLM's answer; the client's leaving ends it.

    The upstream counts the chunks it sent; those still in the kernel between it and the service (its send buffer,
    the service's receive buffer) were not read by the service, so they are taken off, counted generously.
    """
    prompt = "dead reader, bounded"
    upstream.script(text=TOKEN, repeat=ENDLESS)
    body = {"model": "chat_stream", "stream": True, "messages": user(prompt)}
    with dead_reader(examples_never_idle, "/v1/chat/completions", body):
        record = _latest_stream(upstream, prompt)
        assert _stalls(record), f"the service read {record.tokens_sent} chunks for a client that reads nothing"
        queued = _kernel_queued(upstream.port)
        if queued is None:
            pytest.skip("no /proc/net/tcp here: what the kernel holds is unknown")
        read = (record.tokens_sent - queued // CHUNK_BYTES) * len(TOKEN)
        print(f"held back after {record.tokens_sent} chunks, {queued} bytes of them in the kernel, {read} read")
        assert read <= HELD_BYTES, f"the service read {read} bytes of text for a client that reads nothing"
    assert wait_until(lambda: record.disconnected, timeout=30), "the upstream stream outlived its client"
    with examples_never_idle.http() as http:
        assert http.get("/status").status_code == 200


def test_a_client_that_takes_nothing_is_hung_up_on(
    impatient_service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """With IDLE_CLIENT_SECONDS=2 the service ends the response and closes the LLM stream while the client waits."""
    prompt = "dead reader, impatient service"
    upstream.script(text=TOKEN, repeat=ENDLESS)
    with dead_reader(
        impatient_service, "/v1/chat/completions", {"model": "chat_stream", "stream": True, "messages": user(prompt)}
    ):
        record = _latest_stream(upstream, prompt)
        assert wait_until(lambda: record.disconnected, timeout=30), "the run still reads the LLM for nobody"
        assert not record.completed
    with impatient_service.http() as http:
        assert http.get("/status").status_code == 200
    assert "Traceback" not in impatient_service.log_tail()


@pytest.mark.skipif(NOTSENT_LOWAT is None or not Path("/proc/self/fd").exists(), reason="Linux only")
def test_connections_inherit_the_bound_on_unsent_bytes_from_the_listening_socket() -> None:
    """How `hypercorn <package>.asgi:app` gets MAX_UNSENT_BYTES: set on its listening socket at startup."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert limit_unsent_bytes_of_listeners(48 * 1024) >= 1
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT) == 48 * 1024
                client.sendall(b"still a socket")  # the copies the service looked through closed, not the socket
                assert accepted.recv(64) == b"still a socket"


async def test_a_run_waits_once_its_unread_events_hold_too_much_text() -> None:
    """A few long events fill the buffer as surely as many short ones; taking them makes room again."""
    stream = EventStream(asyncio.get_running_loop(), capacity=256, max_chars=1000)
    stream.put([TextDelta("x" * 600)])
    await stream.room()  # 600 of 1000: room at once
    stream.put([TextDelta("x" * 600)])
    waiting = asyncio.ensure_future(stream.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert [len(event.text) for event in await stream.next_batch() or []] == [600, 600]
    await waiting
    stream.close()

"""Helpers shared by the tests: serving the app in a subprocess, bounded waits, raw SSE parsing.

Kept free of pytest fixtures so test modules can import them directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

PACKAGE = "{{ cookiecutter.project_slug }}"
TESTS_DIR = Path(__file__).resolve().parent  # tests/engine: on a service's PYTHONPATH, for examples and test_wrappers
PROJECT_DIR = TESTS_DIR.parents[1]
HYPERCORN_TOML = PROJECT_DIR / "hypercorn.toml"
# What every service here serves unless a test says otherwise: the frozen copies of the examples
# (tests/engine/examples), never the user's wrappers/, which the user may edit or delete.
EXAMPLES_PACKAGE = "examples"
STARTUP_TIMEOUT = 120.0  # generous: importing Haystack on a loaded 2-core CI runner is slow
CLIENT_TIMEOUT = 30.0
ERROR_KEYS = {"message", "type", "param", "code"}
TEST_MAX_BODY_BYTES = 100_000  # MAX_BODY_BYTES of test_service


def free_port() -> int:
    """A port the OS just handed out on loopback (released for the server to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; returns that value, or the last falsy one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def base_env(**extra: str) -> dict[str, str]:
    """A minimal, explicit environment for a service subprocess (no proxies, no inherited LLM keys).

    It serves the frozen examples (WRAPPERS_PACKAGE=examples, importable through PYTHONPATH) unless `extra` names
    another wrappers package.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "NO_PROXY": "*",
        "WRAPPERS_PACKAGE": EXAMPLES_PACKAGE,
        "PYTHONPATH": str(TESTS_DIR),
    }
    env.update(extra)
    return env


def env_for_test_wrappers(upstream_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """`base_env` for a service of the test wrappers (tests/engine/test_wrappers) talking to a scripted upstream."""
    return base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        TEST_WRAPPERS_DIR=str(state_dir),
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream_url}/v1",
        OPENAI_MODEL="scripted-model",
        **extra,
    )


@dataclass
class ServiceProcess:
    """The app served by hypercorn in a subprocess, as a user would run it."""

    name: str
    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)  # more hypercorn flags, e.g. ["--workers", "2"]
    process: subprocess.Popen[bytes] | None = None
    # What `start` waits for: /status answers 200 once every wrapper is loaded (or failed to); /health/live as soon
    # as the port opens.
    ready_path: str = "/status"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """The official SDK pointed at the service; no retries so failures show at once."""
        options: dict[str, Any] = {"max_retries": 0, "timeout": CLIENT_TIMEOUT}
        options.update(kwargs)
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key="unused", **options)

    def http(self) -> httpx.Client:
        """A raw HTTP client for what the SDK hides (headers, SSE bytes, error bodies)."""
        return httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT, trust_env=False)

    def log_tail(self, limit: int = 20000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"

    def start(self) -> ServiceProcess:
        """Start hypercorn and wait (bounded) until GET `ready_path` answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        command = [sys.executable, "-m", "hypercorn", f"{PACKAGE}.asgi:app", "--config", str(HYPERCORN_TOML)]
        command += ["--bind", f"127.0.0.1:{self.port}", *self.args]  # the project's own settings, as users run it
        self.process = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if http.get(f"{self.base_url}{self.ready_path}").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} within {STARTUP_TIMEOUT}s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL by PID, as a crash or the OOM killer would: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate by PID, then kill after a bounded wait."""
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to a process the tests started, by PID, then kill it if it has not exited after a bounded wait."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def serve(workdir: Path, name: str, env: dict[str, str]) -> Iterator[ServiceProcess]:
    """A service for a fixture to yield from: started in `workdir`, stopped when the fixture ends."""
    service = ServiceProcess(name=name, workdir=workdir, env=env).start()
    try:
        yield service
    finally:
        service.stop()


async def until_ready(test_app: Any, timeout: float = STARTUP_TIMEOUT) -> None:
    """For the app served in-process (Quart's test app): wait, bounded, until its wrappers are loaded (or failed to:
    /status answers 200 then, while /health/ready stays 503 for the test wrappers that fail on purpose)."""
    client = test_app.test_client()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await client.get("/status")).status_code != 200:
        if loop.time() > deadline:
            raise RuntimeError(f"the app was not ready within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class SSE:
    """A raw server-sent-events body split into comments and data payloads, in order."""

    raw: str
    items: list[tuple[str, str]]

    @property
    def data(self) -> list[str]:
        return [value for kind, value in self.items if kind == "data"]

    @property
    def comments(self) -> list[str]:
        return [value for kind, value in self.items if kind == "comment"]

    def json_events(self) -> list[dict[str, Any]]:
        """Every data payload except the final [DONE], decoded."""
        return [json.loads(value) for value in self.data if value != "[DONE]"]

    def chunks(self) -> list[dict[str, Any]]:
        """The chat.completion.chunk events (not error events)."""
        return [event for event in self.json_events() if "error" not in event]


def parse_sse(raw: str) -> SSE:
    """Parse strictly: each event must be exactly one `data:` line or one comment line, then a blank line."""
    items: list[tuple[str, str]] = []
    normalized = raw.replace("\r\n", "\n")
    for block in normalized.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert len(lines) == 1, f"SSE event spans several lines: {block!r}"
        line = lines[0]
        if line.startswith(":"):
            items.append(("comment", line))
        elif line.startswith("data: "):
            items.append(("data", line[len("data: ") :]))
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
    assert normalized.endswith("\n\n"), f"SSE body does not end with a blank line: {normalized[-80:]!r}"
    return SSE(raw=raw, items=items)


def stream_raw(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, SSE]:
    """POST with stream true and read the whole SSE body as text."""
    with http.stream("POST", path, json=body) as response:
        text = response.read().decode()
    assert response.status_code == 200, (response.status_code, text[:500])
    assert response.headers.get("content-type", "").startswith("text/event-stream"), response.headers
    return response, parse_sse(text)


def iter_sse_lines(response: httpx.Response) -> Iterator[str]:
    """Non-empty lines of a streaming response, as they arrive."""
    for line in response.iter_lines():
        if line:
            yield line


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    err_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """An OpenAI error envelope: status, JSON content type, all four keys; returns the `error` object."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), content_type
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if err_type is not None:
        assert error["type"] == err_type, error
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing `text`, written by hand so the test needs no PDF writer."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


def user(text: str) -> list[dict[str, str]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


# --- the Responses API stream ---

TERMINAL = {"response.completed", "response.failed", "response.incomplete"}
# Events about one part of an open item: they name it by `item_id`.
ITEM_EVENTS_WITH_ITEM_ID = {
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.mcp_list_tools.in_progress",
    "response.mcp_list_tools.completed",
    "response.mcp_list_tools.failed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
}


def stream_events(service: ServiceProcess, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a streamed response and parse the SSE strictly: `event:` + `data:` lines, names matching types."""
    with service.http() as http, http.stream("POST", "/v1/responses", json={**body, "stream": True}) as response:
        raw = response.read().decode()
    assert response.status_code == 200, raw[:500]
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in raw.split("\n\n"):
        if not block or block.startswith(":"):
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        event = json.loads(data_line[len("data: ") :])
        assert event["type"] == name_line[len("event: ") :], block
        events.append(event)
    return events


def check_event_order(events: list[dict[str, Any]]) -> None:
    """What `client.responses.stream()` and Codex rely on, checked event by event."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in TERMINAL
    assert sum(e["type"] in TERMINAL for e in events) == 1
    open_items: dict[str, int] = {}
    done_items: set[str] = set()
    for event in events[2:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert event["output_index"] == len(open_items), "items are numbered in the order they are added"
            open_items[event["item"]["id"]] = event["output_index"]
        elif kind == "response.output_item.done":
            assert event["item"]["id"] in open_items, "done for an item never added"
            done_items.add(event["item"]["id"])
        elif kind in ITEM_EVENTS_WITH_ITEM_ID:
            item_id = event["item_id"]
            assert item_id in open_items and item_id not in done_items, f"{kind} for an item that is not open"
            assert event["output_index"] == open_items[item_id]
    assert done_items == set(open_items), "every added item is also done"
    final = events[-1]["response"]
    assert [item["id"] for item in final["output"]] == list(open_items), "output in the order items were added"

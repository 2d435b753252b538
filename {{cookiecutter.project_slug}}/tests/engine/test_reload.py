"""`python -m <package> --reload` (engine/reload.py), as a user runs it while editing wrappers and `.env`.

A real served process in a project folder of its own, with a wrappers package the test writes and edits (as a user
edits `wrappers/`): the next request after an edit gets the new code, an edited `.env` setting applies, and Ctrl-C
with a stream open ends the stream with the service's retryable error and the process without a traceback.
"""

from __future__ import annotations

import importlib
import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support import CLIENT_TIMEOUT, HYPERCORN_TOML, PACKAGE, STARTUP_TIMEOUT, base_env, free_port, stop_process, user
from support import wait_until as poll

reload = importlib.import_module(f"{PACKAGE}.engine.reload")

WRAPPERS = "edited_wrappers"
ANSWERING = """from {package}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return {answer!r}
"""
ENDLESS = """import asyncio

from {package}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    async def run_chat_completion_async(self, model: str, messages: list[dict], body: dict):
        for number in range(10_000):
            yield "tick " + str(number) + " "
            await asyncio.sleep(0.05)
"""


@dataclass
class ReloadingService:
    process: subprocess.Popen[bytes]
    base_url: str
    workdir: Path
    wrappers: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def write_wrapper(self, name: str, source: str, **fields: str) -> None:
        (self.wrappers / f"{name}.py").write_text(source.format(package=PACKAGE, **fields), encoding="utf-8")

    def answer(self, model: str, headers: dict[str, str] | None = None) -> httpx.Response | None:
        """The chat answer, or None while the service restarts (nothing listens for a moment)."""
        body = {"model": model, "messages": user("hi")}
        try:
            with httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT, trust_env=False) as http:
                return http.post("/v1/chat/completions", json=body, headers=headers or {})
        except httpx.TransportError:
            return None

    def text(self, model: str) -> str | None:
        response = self.answer(model)
        if response is None or response.status_code != 200:
            return None
        return response.json()["choices"][0]["message"]["content"]


@pytest.fixture
def reloading(tmp_path: Path) -> Iterator[ReloadingService]:
    """`python -m <package> --reload` in a project folder with hypercorn.toml, an empty .env and its own wrappers."""
    workdir, wrappers = tmp_path / "project", tmp_path / WRAPPERS
    workdir.mkdir()
    wrappers.mkdir()
    (wrappers / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(HYPERCORN_TOML, workdir / "hypercorn.toml")
    (workdir / ".env").write_text("# settings\n", encoding="utf-8")
    port = free_port()
    env = base_env(WRAPPERS_PACKAGE=WRAPPERS, PYTHONPATH=str(tmp_path), PORT=str(port), SHUTDOWN_GRACE_SECONDS="1")
    log_path = tmp_path / "reload.log"
    service = ReloadingService(None, f"http://127.0.0.1:{port}", workdir, wrappers, log_path)  # type: ignore[arg-type]
    service.write_wrapper("echo", ANSWERING, answer="first")
    service.write_wrapper("endless", ENDLESS)
    with log_path.open("wb") as log:
        service.process = subprocess.Popen(
            [sys.executable, "-m", PACKAGE, "--reload"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert poll(lambda: service.text("echo") == "first", timeout=STARTUP_TIMEOUT), service.log()
        yield service
    finally:
        stop_process(service.process)


def test_an_edited_wrapper_answers_the_next_request(reloading: ReloadingService) -> None:
    reloading.write_wrapper("echo", ANSWERING, answer="second")
    assert poll(lambda: reloading.text("echo") == "second", timeout=STARTUP_TIMEOUT), reloading.log()
    assert "echo.py changed; restarting" in reloading.log()
    assert "Warning" not in reloading.log(), "python -m prints no warning of hypercorn's (`workers` in hypercorn.toml)"

    reloading.write_wrapper("added", ANSWERING, answer="a new model")
    assert poll(lambda: reloading.text("added") == "a new model", timeout=STARTUP_TIMEOUT), reloading.log()


def test_an_edited_env_file_changes_a_setting(reloading: ReloadingService) -> None:
    with (reloading.workdir / ".env").open("a", encoding="utf-8") as env_file:
        env_file.write("API_KEYS=edited-key\n")

    def refused() -> bool:
        response = reloading.answer("echo")
        return response is not None and response.status_code == 401

    assert poll(refused, timeout=STARTUP_TIMEOUT), reloading.log()
    keyed = reloading.answer("echo", headers={"Authorization": "Bearer edited-key"})
    assert keyed is not None and keyed.status_code == 200, keyed


def test_ctrl_c_ends_an_open_stream_with_an_error_event_and_no_traceback(reloading: ReloadingService) -> None:
    lines: list[str] = []
    started = threading.Event()

    def stream() -> None:
        body = {"model": "endless", "messages": user("go"), "stream": True}
        with (
            httpx.Client(base_url=reloading.base_url, timeout=CLIENT_TIMEOUT, trust_env=False) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            for line in response.iter_lines():
                lines.append(line)
                started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(CLIENT_TIMEOUT), reloading.log()
    reloading.process.send_signal(signal.SIGINT)  # what Ctrl-C sends: the child has its own process group
    reader.join(CLIENT_TIMEOUT)
    assert not reader.is_alive(), "the stream did not end"
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: {")]
    assert events[-1]["error"]["code"] == "server_shutting_down", events[-1]
    assert reloading.process.wait(timeout=CLIENT_TIMEOUT) == 0, reloading.log()
    log = reloading.log()
    assert "Traceback" not in log and "CancelledError" not in log, log
    with pytest.raises(httpx.TransportError):  # the served child is gone too
        httpx.get(f"{reloading.base_url}/health/live", timeout=2.0, trust_env=False)


def test_the_engine_is_not_watched_and_the_rest_of_the_package_is() -> None:
    folders = reload.watched_folders()
    assert reload.ENGINE_DIR not in folders and not any(folder.is_relative_to(reload.ENGINE_DIR) for folder in folders)
    assert reload.PACKAGE_DIR in folders, "llm.py, streaming.py and your own modules"
    assert reload.PACKAGE_DIR / "wrappers" in folders
    assert reload.restarts_on(reload.Change.modified, str(Path.cwd() / ".env"))
    assert not reload.restarts_on(reload.Change.modified, str(Path.cwd() / "notes.txt"))

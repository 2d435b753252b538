"""The access log: the service writes one line per request (client, request line, status, body bytes, seconds,
request id) on stdout; none with ACCESS_LOG=off; and one, not two, while a hypercorn.toml from before still turns on
hypercorn's own (`accesslog`). The JSON form is in test_request_ids.py.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import PACKAGE, TESTS_DIR, ServiceProcess, base_env, user, wait_until

create_app = importlib.import_module(f"{PACKAGE}.engine.app").create_app
Settings = importlib.import_module(f"{PACKAGE}.engine.settings").Settings

# [2026-12-02 10:31:07 +0000] [4211] [INFO] 127.0.0.1:50522 "POST /v1/chat/completions 1.1" 200 1873 0.004121s req_...
ACCESS_LINE = re.compile(
    r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] 127\.0\.0\.1:\d+ "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) 1\.1" (?P<status>\d{3}|-) (?P<bytes>\d+) (?P<seconds>\d+\.\d{6})s (?P<id>\S+)'
)
# What hypercorn.toml turned on before the service wrote its own lines.
OLD_ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss %({x-request-id}o)s'
OLD_HYPERCORN_ACCESS_LOG = ["--access-logfile", "-", "--access-logformat", OLD_ACCESS_FORMAT]


def access_lines(service: ServiceProcess, request_id: str) -> list[str]:
    return [line for line in service.log_tail(2_000_000).splitlines() if line.endswith(f" {request_id}")]


def test_one_line_per_request_with_its_id_and_bytes(test_service: ServiceProcess) -> None:
    body = {"model": "plain_sync", "messages": user("x")}
    with test_service.http() as http:
        plain = http.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "req-access-plain"})
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "async_gen", "messages": user("x"), "stream": True},
            headers={"X-Request-Id": "req-access-stream"},
        ) as stream:
            streamed = b"".join(stream.iter_raw())
        missing = http.get("/no/such/route", headers={"X-Request-Id": "req-access-404"})
    assert plain.status_code == 200 and stream.status_code == 200 and missing.status_code == 404
    ids = ("req-access-plain", "req-access-stream", "req-access-404")
    assert wait_until(lambda: all(access_lines(test_service, i) for i in ids)), test_service.log_tail()

    lines = {request_id: access_lines(test_service, request_id) for request_id in ids}
    assert all(len(found) == 1 for found in lines.values()), lines
    fields = {request_id: ACCESS_LINE.fullmatch(found[0]) for request_id, found in lines.items()}
    assert all(fields.values()), lines
    plain_line, stream_line, missing_line = (fields[i] for i in ids)
    assert (plain_line["method"], plain_line["path"], plain_line["status"]) == ("POST", "/v1/chat/completions", "200")
    assert int(plain_line["bytes"]) == len(plain.content)
    assert int(stream_line["bytes"]) == len(streamed), "a stream's line counts the bytes sent, too"
    assert (missing_line["method"], missing_line["path"], missing_line["status"]) == ("GET", "/no/such/route", "404")


def _old_or_off_service(tmp_path: pytest.TempPathFactory, name: str, args: list[str], **env: str) -> ServiceProcess:
    env = base_env(WRAPPERS_PACKAGE="test_wrappers", PYTHONPATH=str(TESTS_DIR), **env)
    return ServiceProcess(name=name, workdir=tmp_path.mktemp(name), env=env, args=args).start()


@pytest.fixture(scope="module")
def access_log_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = _old_or_off_service(tmp_path_factory, "access_log_off", [], ACCESS_LOG="off")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def old_hypercorn_toml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = _old_or_off_service(tmp_path_factory, "old_hypercorn_toml", OLD_HYPERCORN_ACCESS_LOG)
    yield service
    service.stop()


def test_access_log_off_writes_none(access_log_off: ServiceProcess) -> None:
    client = access_log_off.client()
    for n in range(3):
        client.chat.completions.create(
            model="plain_sync", messages=user("x"), extra_headers={"X-Request-Id": f"req-access-off-{n}"}
        )
    access_log_off.stop()  # every line it would write is written by now
    log = access_log_off.log_tail(2_000_000)
    assert "models served" in log, log  # the log was read to the end
    assert '"POST /v1/chat/completions 1.1"' not in log, log


def test_hypercorns_own_access_log_is_not_doubled(old_hypercorn_toml: ServiceProcess) -> None:
    """An upgraded project whose hypercorn.toml still has `accesslog`: hypercorn's lines only, and a word on it."""
    client = old_hypercorn_toml.client()
    for n in range(3):
        client.chat.completions.create(
            model="plain_sync", messages=user("x"), extra_headers={"X-Request-Id": f"req-access-old-{n}"}
        )
    assert wait_until(lambda: access_lines(old_hypercorn_toml, "req-access-old-2")), old_hypercorn_toml.log_tail()
    old_hypercorn_toml.stop()
    for n in range(3):
        lines = access_lines(old_hypercorn_toml, f"req-access-old-{n}")
        assert len(lines) == 1 and '"POST /v1/chat/completions 1.1" 200' in lines[0], lines
    log = old_hypercorn_toml.log_tail(2_000_000)
    assert log.count("remove `accesslog` and `access_log_format`") == 1, log


# Every field a LogRecord has, as a host's own logging configuration may format them.
EVERY_FIELD = (
    "%(name)s|%(levelname)s|%(levelno)d|%(pathname)s|%(filename)s|%(module)s|%(lineno)d|%(funcName)s|%(created)f|"
    "%(msecs)d|%(relativeCreated)d|%(thread)d|%(threadName)s|%(processName)s|%(process)d|%(asctime)s|%(message)s"
)


async def test_a_hosts_own_formatter_reads_every_field_of_an_access_line(tmp_path: Path) -> None:
    """An entry point that configured logging first keeps its handlers (`configure_logging`), and the access lines
    reach them as records with every field a LogRecord has: formatters read `record.__dict__`."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter(EVERY_FIELD))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        settings = Settings(wrappers_package="test_wrappers", data_dir=tmp_path / "data")
        app = create_app(settings)
        async with app.test_app():
            client = app.test_client()
            answer = await client.get("/health/live", headers={"X-Request-Id": "req-every-field"})
            assert answer.status_code == 200
    finally:
        root.removeHandler(handler)
    lines = [line.split("|") for line in records if line.endswith(" req-every-field")]
    assert len(lines) == 1, records
    name, levelname, levelno, *_, thread_name, process_name, process, _, message = lines[0]
    assert (name, levelname, levelno) == ("hypercorn.access", "INFO", str(logging.INFO))
    assert (thread_name, process_name, process) == (threading.current_thread().name, "MainProcess", str(os.getpid()))
    assert '"GET /health/live 1.1" 200' in message

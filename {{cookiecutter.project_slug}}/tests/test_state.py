"""State that outlives the process: stored responses and files across workers, replicas, restarts, crashes and outages.

Every test starts the real engines it needs (redis-server, nginx, SeaweedFS's S3 gateway; see engines.py) and
talks to the service through the official SDK. The setups are those of docs/running-more-than-one-process.md:
`--workers 2` on SQLite, two replicas behind nginx on Redis, two replicas with separate disks on Redis + S3.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engines import Nginx, RedisServer, SeaweedFS
from support import PACKAGE, TESTS_DIR, ServiceProcess, base_env, wait_until

ROUNDS = 20  # follow-ups, and file rounds, per setup: as in the table
FOLLOW_UP_MODEL = "chat_stream"  # answers offline (no OPENAI_API_KEY) on the Responses API


def new_connection_client(base_url: str, max_retries: int = 0) -> openai.OpenAI:
    """The SDK opening a new connection for every request, so that each can land on another worker."""
    http_client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False, timeout=30)
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=max_retries, http_client=http_client)


def follow_ups(client: openai.OpenAI, model: str = FOLLOW_UP_MODEL, rounds: int = ROUNDS) -> int:
    """How many of `rounds` follow-ups (`previous_response_id`) found the response they continue."""
    previous = client.responses.create(model=model, input="Turn 0").id
    found = 0
    for turn in range(1, rounds + 1):
        try:
            previous = client.responses.create(model=model, input=f"Turn {turn}", previous_response_id=previous).id
        except openai.BadRequestError as error:
            assert error.code == "previous_response_not_found", error
            continue
        found += 1
    # The last response carries the whole conversation, and every replica can read it back.
    history = client.responses.input_items.list(previous, limit=100).data
    assert f"Turn {rounds}" in json.dumps([item.model_dump() for item in history])
    return found


def file_rounds(client: openai.OpenAI, rounds: int = ROUNDS) -> int:
    """How many of `rounds` upload / list / retrieve / download / delete rounds saw the file each step."""
    complete = 0
    for number in range(rounds):
        content = f"round {number}: {secrets.token_hex(8)}".encode()
        uploaded = client.files.create(file=(f"round-{number}.txt", content), purpose="user_data")
        try:
            listed = uploaded.id in [file.id for file in client.files.list(purpose="user_data")]
            same = client.files.retrieve(uploaded.id) == uploaded
            intact = client.files.content(uploaded.id).read() == content
            deleted = client.files.delete(uploaded.id).deleted
        except openai.NotFoundError:
            continue
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(uploaded.id)
        complete += listed and same and intact and deleted
    return complete


def start_all(services: list[ServiceProcess]) -> None:
    """Start several service processes at once (each imports Haystack: seconds)."""
    errors: list[BaseException] = []

    def start(service: ServiceProcess) -> None:
        try:
            service.start()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for service in services:
            service.stop()
        raise errors[0]


@pytest.fixture
def replicas() -> Iterator[list[ServiceProcess]]:
    """The services a test starts: stopped whatever happens (conftest attaches their logs to a failure)."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.stop()


# --- several processes ---


def test_two_workers_share_responses_and_files(tmp_path: Path, replicas: list[ServiceProcess]) -> None:
    """hypercorn --workers 2 on one host, SQLite in DATA_DIR (the default): each request on a new connection."""
    service = ServiceProcess("two_workers", tmp_path, base_env(), args=["--workers", "2"])
    replicas.append(service)
    service.start()
    client = new_connection_client(service.base_url)
    assert follow_ups(client) == ROUNDS
    assert file_rounds(client) == ROUNDS


def test_replicas_behind_nginx_share_state_through_redis(
    tmp_path: Path, redis_server: RedisServer, replicas: list[ServiceProcess]
) -> None:
    """Two processes behind nginx's round robin, one data dir, STATE_URL=redis; streams still flow unbuffered."""
    env = base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        TEST_WRAPPERS_DIR=str(tmp_path),
        STATE_URL=redis_server.url,
        DATA_DIR=str(tmp_path / "shared-data"),
    )
    replicas += [ServiceProcess(f"replica_{n}", tmp_path / f"replica-{n}", env) for n in (1, 2)]
    start_all(replicas)
    nginx = Nginx(tmp_path / "nginx", [service.port for service in replicas]).start()
    try:
        client = new_connection_client(nginx.base_url)
        assert follow_ups(client, model="responses_only") == ROUNDS
        assert file_rounds(client) == ROUNDS
        assert_stream_is_not_buffered(nginx.base_url, tmp_path)
    finally:
        nginx.stop()


def assert_stream_is_not_buffered(base_url: str, gates: Path) -> None:
    """`gated_stream` sends its first piece, then waits for the gate, which opens only once that piece has arrived."""
    key = f"unbuffered-{secrets.token_hex(4)}"
    body = {"model": "gated_stream", "stream": True, "messages": [{"role": "user", "content": key}]}
    pieces: list[str] = []
    with (
        httpx.Client(base_url=base_url, timeout=90, trust_env=False) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            assert "error" not in chunk, chunk
            pieces += [choice["delta"].get("content") or "" for choice in chunk["choices"]]
            if "".join(pieces) == "first piece, ":
                (gates / f"gate-{key}").touch()  # the first piece came through alone: let the rest come
    assert "".join(pieces) == "first piece, last piece"


def test_replicas_with_separate_disks_share_state_through_redis_and_s3(
    tmp_path: Path, redis_server: RedisServer, seaweedfs: SeaweedFS, replicas: list[ServiceProcess]
) -> None:
    """Two 'hosts': no directory in common, STATE_URL=redis and FILES_URL=s3://; files_qa reads the other's upload."""
    files_url = f"s3://{seaweedfs.bucket}/separate-disks-{secrets.token_hex(4)}"
    for n in (1, 2):
        env = base_env(STATE_URL=redis_server.url, FILES_URL=files_url, **seaweedfs.s3_env())
        replicas.append(ServiceProcess(f"host_{n}", tmp_path / f"host-{n}", env))
    start_all(replicas)
    nginx = Nginx(tmp_path / "nginx", [service.port for service in replicas]).start()
    try:
        client = new_connection_client(nginx.base_url)
        assert follow_ups(client) == ROUNDS
        assert file_rounds(client) == ROUNDS
        uploaded = client.files.create(
            file=("keeper.txt", b"The keeper's cat is named Marmalade."), purpose="user_data"
        )
        question = [
            {"type": "input_file", "file_id": uploaded.id},
            {"type": "input_text", "text": "What is the cat named?"},
        ]
        for _ in range(4):  # round robin: both hosts answer, each reading the file from S3
            answer = client.responses.create(model="files_qa", input=[{"role": "user", "content": question}])
            assert "Marmalade" in answer.output_text, answer.output_text
    finally:
        nginx.stop()
    for host in (1, 2):
        assert not (tmp_path / f"host-{host}" / "data").exists(), "state or file bytes went to a local disk"


# --- restarts, crashes, outages ---


@pytest.mark.parametrize("engine", ["sqlite", "redis"])
def test_restart_keeps_responses_and_files(
    engine: str, tmp_path: Path, redis_server: RedisServer, replicas: list[ServiceProcess]
) -> None:
    env = base_env(DATA_DIR=str(tmp_path / "data"))
    if engine == "redis":
        env["STATE_URL"] = redis_server.url
    first = ServiceProcess("before_restart", tmp_path / "first", env)
    replicas.append(first)
    client = first.start().client()
    opening = client.responses.create(model=FOLLOW_UP_MODEL, input="Remember the number 42.")
    follow_up = client.responses.create(model=FOLLOW_UP_MODEL, input="And 43.", previous_response_id=opening.id)
    uploaded = client.files.create(file=("kept.txt", b"still here"), purpose="user_data")
    first.stop()
    if engine == "redis":
        redis_server.restart()  # Redis keeps it too (AOF), which is Redis's business; the service reconnects

    second = ServiceProcess("after_restart", tmp_path / "second", env)
    replicas.append(second)
    client = second.start().client()
    assert client.responses.retrieve(follow_up.id).output_text == follow_up.output_text
    again = client.responses.create(model=FOLLOW_UP_MODEL, input="And 44?", previous_response_id=follow_up.id)
    history = json.dumps([item.model_dump() for item in client.responses.input_items.list(again.id).data])
    assert "Remember the number 42." in history and "And 43." in history
    assert [file.id for file in client.files.list()] == [uploaded.id]
    assert client.files.content(uploaded.id).read() == b"still here"


def test_sigkill_mid_write_leaves_whole_records(tmp_path: Path, replicas: list[ServiceProcess]) -> None:
    """Uploads and stored responses in flight when the process is killed: after a restart each is whole or absent."""
    env = base_env(DATA_DIR=str(tmp_path / "data"))
    service = ServiceProcess("killed", tmp_path / "killed", env)
    replicas.append(service)
    service.start()
    acknowledged_responses: list[str] = []
    acknowledged_files: list[str] = []
    stop = threading.Event()

    def keep_writing(kind: str, worker: int) -> None:
        client = service.client(max_retries=0, timeout=10)
        for number in range(10_000):  # bounded; the kill ends it far sooner
            if stop.is_set():
                return
            try:
                if kind == "file":
                    content = payload(worker * 10_000 + number)
                    name = f"kill-{worker * 10_000 + number}.bin"
                    acknowledged_files.append(client.files.create(file=(name, content), purpose="batch").id)
                else:
                    created = client.responses.create(model=FOLLOW_UP_MODEL, input=f"Write {worker}-{number}")
                    acknowledged_responses.append(created.id)
            except (openai.APIConnectionError, openai.APIStatusError):
                return  # the service is gone

    writers = [threading.Thread(target=keep_writing, args=(kind, n)) for kind in ("file", "response") for n in (1, 2)]
    for writer in writers:
        writer.start()
    assert wait_until(lambda: len(acknowledged_files) >= 6 and len(acknowledged_responses) >= 10, timeout=60)
    service.kill()
    stop.set()
    for writer in writers:
        writer.join(timeout=30)

    database = sqlite3.connect(tmp_path / "data" / "state.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for (record,) in database.execute("SELECT record FROM responses"):
        assert json.loads(record)["response"]["status"] == "completed"  # whole, not cut
    database.close()

    restarted = ServiceProcess("after_kill", tmp_path / "after", env)
    replicas.append(restarted)
    client = restarted.start().client()
    for response_id in acknowledged_responses:
        assert client.responses.retrieve(response_id).status == "completed"
    listed = list(client.files.list(purpose="batch"))
    assert set(acknowledged_files) <= {file.id for file in listed}
    for file in listed:  # listed means readable, with every byte
        number = int(file.filename.removeprefix("kill-").removesuffix(".bin"))
        assert client.files.content(file.id).read() == payload(number), file


def payload(number: int) -> bytes:
    """A distinct content per upload (128 kB to 1 MB), so a cut or mixed-up file shows."""
    return (f"{number:08d}".encode() * 131_072)[: 131_072 * (1 + number % 8)]


def test_redis_outage_is_a_503_and_the_service_recovers(
    tmp_path: Path, redis_server: RedisServer, replicas: list[ServiceProcess]
) -> None:
    service = ServiceProcess("redis_outage", tmp_path, base_env(STATE_URL=redis_server.url))
    replicas.append(service)
    client = service.start().client()
    before = client.responses.create(model=FOLLOW_UP_MODEL, input="Before the outage.")
    assert service.http().get("/status").json()["store"] == {"engine": "redis", "reachable": True}

    redis_server.stop()
    with pytest.raises(openai.InternalServerError) as raised:
        client.responses.create(model=FOLLOW_UP_MODEL, input="During.", previous_response_id=before.id)
    error = raised.value
    assert error.status_code == 503 and error.code == "store_unavailable" and error.type == "server_error"
    assert "unavailable" in error.message and "Traceback" not in error.response.text
    assert error.response.headers["x-should-retry"] == "true", "an outage is transient: the SDK may retry"
    with pytest.raises(openai.InternalServerError):
        client.files.list()
    with service.http() as http:
        assert http.get("/status").json()["store"] == {"engine": "redis", "reachable": False}
        ready = http.get("/health/ready")  # a load balancer sends the traffic elsewhere meanwhile
        assert (ready.status_code, ready.json()["checks"]["store"]) == (503, "unreachable")
        assert http.get("/health/live").status_code == 200
        body = {"model": FOLLOW_UP_MODEL, "input": "Streamed during the outage.", "stream": True}
        with http.stream("POST", "/v1/responses", json=body) as streamed:
            events = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "response.failed", "a response that could not be stored is not 'completed'"
    assert events[-1]["response"]["error"]["code"] == "store_unavailable"
    chat = client.chat.completions.create(model=FOLLOW_UP_MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content, "what needs no store keeps working"

    redis_server.start()  # same socket, same data (AOF): no restart of the service
    after = client.responses.create(model=FOLLOW_UP_MODEL, input="After.", previous_response_id=before.id)
    assert after.previous_response_id == before.id
    assert service.http().get("/status").json()["store"] == {"engine": "redis", "reachable": True}
    assert service.http().get("/health/ready").status_code == 200


def test_the_service_starts_before_redis_and_uses_it_once_it_is_up(
    tmp_path: Path, replicas: list[ServiceProcess]
) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    service = ServiceProcess("before_redis", tmp_path / "service", base_env(STATE_URL=redis_server.url))
    replicas.append(service)
    client = service.start().client()
    assert service.http().get("/status").json()["store"] == {"engine": "redis", "reachable": False}
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model=FOLLOW_UP_MODEL, input="Too early.")
    redis_server.start()
    try:
        first = client.responses.create(model=FOLLOW_UP_MODEL, input="Now.")
        assert client.responses.retrieve(first.id).id == first.id
        assert service.http().get("/status").json()["store"]["reachable"] is True
    finally:
        redis_server.close()


def test_files_from_before_the_state_store_are_imported(tmp_path: Path, replicas: list[ServiceProcess]) -> None:
    """An upgrade: DATA_DIR/files holds `<id>` and `<id>.json` as the service used to write them."""
    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    old_id = "file-18ea3606244435925811091be0b2cff9"
    (files / old_id).write_bytes(b"uploaded last year")
    metadata = {"id": old_id, "filename": "old.txt", "purpose": "assistants", "bytes": 18, "created_at": 1795306350}
    (files / f"{old_id}.json").write_text(json.dumps(metadata))
    service = ServiceProcess("upgraded", tmp_path, base_env())
    replicas.append(service)
    client = service.start().client()
    assert [file.model_dump(exclude_none=True) for file in client.files.list()] == [
        {**metadata, "object": "file", "status": "processed"}
    ]
    assert client.files.content(old_id).read() == b"uploaded last year"
    assert sorted(path.name for path in files.iterdir()) == [old_id], "the metadata now lives in the store"


# --- the stores themselves, on both engines ---

state = importlib.import_module(f"{PACKAGE}.state")
sqlite_store = importlib.import_module(f"{PACKAGE}.state.sqlite")
migrate = importlib.import_module(f"{PACKAGE}.state.migrate")


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function making a store of the engine with the given limits (a fresh database each test)."""
    redis_server = RedisServer(tmp_path / "redis").start() if request.param == "redis" else None
    url = redis_server.url if redis_server is not None else None

    def make(max_count: int = 100, max_bytes: int = 10_000_000, ttl_seconds: int = 3600) -> Any:
        return state.open_state_store(url, tmp_path / "data", state.ResponseLimits(max_count, max_bytes, ttl_seconds))

    yield make
    if redis_server is not None:
        redis_server.close()


@pytest.fixture
async def store(open_store: Any) -> AsyncIterator[Any]:
    opened = open_store()
    yield opened
    await opened.close()


def stored_response(number: int, padding: int = 0) -> Any:
    response = {"id": f"resp_{number}", "output": [], "metadata": {"pad": "x" * padding}}
    return state.StoredResponse(response, [{"type": "message", "role": "user", "content": f"turn {number}"}])


async def kept(store: Any, numbers: range) -> list[int]:
    return [n for n in numbers if await store.get_response(f"resp_{n}") is not None]


async def test_responses_are_bounded_by_count(open_store: Any) -> None:
    store = open_store(max_count=3)
    for number in range(5):
        assert await store.save_response(f"resp_{number}", stored_response(number))
    await store.prune()  # SQLite applies the bounds after every TRIM_WRITES writes; prune applies them now
    assert await kept(store, range(5)) == [2, 3, 4]
    assert (await store.get_response("resp_4")) == stored_response(4)
    await store.close()


async def test_responses_are_bounded_by_bytes(open_store: Any) -> None:
    size = len(stored_response(0, padding=10_000).to_json())
    store = open_store(max_bytes=int(size * 2.5))
    for number in range(4):
        assert await store.save_response(f"resp_{number}", stored_response(number, padding=10_000))
    await store.prune()
    assert await kept(store, range(4)) == [2, 3]
    assert not await store.save_response("resp_9", stored_response(9, padding=100_000)), "larger than the bound"
    assert await kept(store, range(10)) == [2, 3], "a refused response evicts nothing"
    await store.close()


async def test_bounds_hold_without_pruning(open_store: Any) -> None:
    """Redis applies them on each write, SQLite every TRIM_WRITES writes of a process (in its thread)."""
    store = open_store(max_count=3)
    for number in range(250):
        await store.save_response(f"resp_{number}", stored_response(number))
    slack = sqlite_store.TRIM_WRITES if store.engine == "sqlite" else 0
    deadline = time.monotonic() + 15
    while len(await kept(store, range(250))) > 3 + slack and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    remaining = await kept(store, range(250))
    assert 3 <= len(remaining) <= 3 + slack and remaining[-1] == 249, remaining
    await store.close()


async def test_responses_expire(open_store: Any) -> None:
    store = open_store(ttl_seconds=1)
    for number in range(3):
        await store.save_response(f"resp_{number}", stored_response(number))
    deadline = time.monotonic() + 15
    while await kept(store, range(3)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await kept(store, range(3)) == []
    assert await store.prune() == 3, "prune drops what expired"
    assert await store.prune() == 0
    await store.close()


async def test_deleting_a_response_frees_its_place(open_store: Any) -> None:
    store = open_store(max_count=2)
    await store.save_response("resp_0", stored_response(0))
    await store.save_response("resp_1", stored_response(1))
    assert await store.delete_response("resp_0")
    assert not await store.delete_response("resp_0")
    await store.save_response("resp_2", stored_response(2))
    assert await kept(store, range(3)) == [1, 2], "the deleted one no longer counts"
    await store.close()


async def test_file_metadata_pages_by_id(store: Any) -> None:
    files = [state.StoredFile(f"file-{n:032x}", f"f{n}.txt", "batch" if n % 2 else "user_data", n, n) for n in range(7)]
    for file in reversed(files):
        await store.add_file(file)
    await store.add_file(files[0])  # again: nothing changes
    everything = await store.list_files(purpose=None, order="asc", after=None, limit=100)
    assert everything == files
    assert await store.list_files(purpose=None, order="desc", after=files[4].id, limit=2) == [files[3], files[2]]
    assert await store.list_files(purpose=None, order="asc", after=files[4].id, limit=10) == files[5:]
    assert await store.list_files(purpose="batch", order="desc", after=None, limit=10) == files[5::-2]
    assert await store.get_file(files[3].id) == files[3]
    assert await store.delete_file(files[3].id)
    assert not await store.delete_file(files[3].id)
    assert await store.get_file(files[3].id) is None
    assert await store.list_files(purpose="batch", order="asc", after=None, limit=10) == [files[1], files[5]]


async def test_migrate_copies_sqlite_into_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    """`python -m <package>.state.migrate`: what one host kept in SQLite, continued by replicas on Redis."""
    limits = state.ResponseLimits(100, 10_000_000, 3600)
    sqlite = state.open_state_store(None, tmp_path, limits)
    files = [state.StoredFile(f"file-{n:032x}", f"f{n}.txt", "user_data", n, n) for n in range(3)]
    for number in range(5):
        await sqlite.save_response(f"resp_{number}", stored_response(number))
    for file in files:
        await sqlite.add_file(file)
    await sqlite.close()
    for _ in range(2):  # copying twice changes nothing
        assert await migrate.copy_state(tmp_path / "state.db", redis_server.url, limits) == (5, 3)
    redis = state.open_state_store(redis_server.url, tmp_path, limits)
    assert await kept(redis, range(5)) == [0, 1, 2, 3, 4]
    assert await redis.get_response("resp_3") == stored_response(3)
    assert await redis.list_files(purpose=None, order="asc", after=None, limit=10) == files
    await redis.close()

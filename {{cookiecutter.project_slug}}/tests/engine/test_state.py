"""State that outlives the process: stored responses and files across workers, replicas, restarts, crashes and outages.

Every test starts the real engines it needs (redis-server, nginx, SeaweedFS's S3 gateway; see engines.py) and
talks to the service through the official SDK. The setups are those of docs/running-more-than-one-process.md:
`--workers 2` on SQLite, two replicas behind nginx on Redis, two replicas with separate disks on Redis + S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis.asyncio

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


def references(client: openai.OpenAI, model: str = FOLLOW_UP_MODEL, rounds: int = ROUNDS) -> int:
    """How many of `rounds` requests found the answer before them by `item_reference`, whoever saved it."""
    previous = client.responses.create(model=model, input="Turn 0")
    found = 0
    for turn in range(1, rounds + 1):
        reference = {"type": "item_reference", "id": previous.output[0].id}
        turn_input: Any = [reference, {"role": "user", "content": f"Turn {turn}"}]
        try:
            previous = client.responses.create(model=model, input=turn_input)
        except openai.BadRequestError as error:
            assert error.param == "input[0]", error
            continue
        found += 1
        stored = client.responses.input_items.list(previous.id).data[0]
        assert (stored.type, stored.id) == ("message", reference["id"]), "the item itself, not the reference"
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
    service.start()  # ready as soon as one worker is: wait for the other too, or its first answers are 503s
    assert wait_until(lambda: service.log_tail(100_000).count("Ready: ") >= 2, 60), service.log_tail()
    client = new_connection_client(service.base_url)
    assert follow_ups(client) == ROUNDS
    assert references(client) == ROUNDS
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
        assert references(client, model="responses_only") == ROUNDS
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
        assert json.loads(record)["status"] == "completed"  # whole, not cut
    assert_items_held(database)
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


def assert_items_held(database: sqlite3.Connection) -> None:
    """Every item a response or conversation lists is there; each is held exactly by the responses that hold it
    themselves (their items after their base's share) and the conversation positions naming it, and no other is
    kept; a response hidden after it went is still the base of a later turn."""
    listed: dict[int, list[int]] = {}  # key -> [responses, conversations]
    every_key: set[int] = set()
    successors: dict[int, int] = {}
    rows = database.execute("SELECT base, own_from, input_keys, output_keys FROM responses")
    for base, own_from, input_keys, output_keys in rows.fetchall():
        inputs, outputs = json.loads(input_keys), json.loads(output_keys)
        every_key |= {*inputs, *outputs}
        for key in {*inputs[own_from:], *outputs}:
            listed.setdefault(key, [0, 0])[0] += 1
        if base is not None:
            successors[base] = successors.get(base, 0) + 1
    for seq, count, gone in database.execute("SELECT seq, successors, gone FROM responses"):
        assert count == successors.pop(seq, 0), "a response counts the later turns built on it"
        assert not gone or count > 0, "a response that went is kept only as the base of a later turn"
    assert not successors, "a turn's base is kept while the turn is"
    for (key,) in database.execute("SELECT item_key FROM conversation_items"):
        listed.setdefault(key, [0, 0])[1] += 1
    own_keys = {
        seq: {*json.loads(input_keys)[own_from:], *json.loads(output_keys)}
        for seq, own_from, input_keys, output_keys in database.execute(
            "SELECT seq, own_from, input_keys, output_keys FROM responses"
        )
    }
    holds: dict[int, list[int]] = {}
    for key, responses, conversations in database.execute("SELECT key, responses, conversations FROM item_holds"):
        assert responses + conversations > 0, "a hold row goes with the last hold it counts"
        holds[key] = [responses, conversations]
    for key, owner in database.execute("SELECT key, owner FROM items WHERE owner IS NOT NULL"):
        assert key in own_keys.get(owner, ()), "an item's owner is a response that holds it itself"
        holds.setdefault(key, [0, 0])[0] += 1
    assert holds == listed, "a response is saved with its items and holds, or not at all"
    kept = {key for (key,) in database.execute("SELECT key FROM items")}
    assert kept == set(listed), "no item outlives its holders"
    assert every_key <= kept, "a response's history is held through its bases"


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

state = importlib.import_module(f"{PACKAGE}.engine.state")
sqlite_store = importlib.import_module(f"{PACKAGE}.engine.state.sqlite")
migrate = importlib.import_module(f"{PACKAGE}.engine.state.migrate")


def stored_response(number: int, padding: int = 0, carried: tuple[dict[str, Any], ...] = ()) -> Any:
    """resp_<n>: a user turn (no id) and `carried` items in, msg_<n> and rs_<n> out."""
    output = [answer(number), {"id": f"rs_{number}", "type": "reasoning", "summary": []}]
    response = {"id": f"resp_{number}", "output": output, "metadata": {"pad": "x" * padding}}
    input_items = [{"type": "message", "role": "user", "content": f"turn {number}"}, *carried]
    return state.StoredResponse(response, input_items)


def answer(number: int) -> dict[str, Any]:
    content = [{"type": "output_text", "text": f"answer {number}", "annotations": []}]
    return {"id": f"msg_{number}", "type": "message", "role": "assistant", "status": "completed", "content": content}


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


async def test_items_are_found_by_id(store: Any) -> None:
    """`item_reference`'s lookup: output items, and input items stored with an id, from one or several responses."""
    note = {"type": "message", "id": "msg_client_note", "role": "user", "content": "a note"}
    await store.save_response("resp_1", stored_response(1, carried=(note,)))
    await store.save_response("resp_2", stored_response(2))
    wanted = ["msg_1", "rs_1", "msg_client_note", "msg_2", "msg_never_stored", "msg_1"]
    assert await store.get_items(wanted) == {
        "msg_1": answer(1),
        "rs_1": {"id": "rs_1", "type": "reasoning", "summary": []},
        "msg_client_note": note,
        "msg_2": answer(2),
    }
    assert await store.get_items([]) == {}


async def test_items_go_with_their_response(open_store: Any) -> None:
    """Deleted, saved again without them, past the bounds, expired: and the index keeps nothing of them."""
    store = open_store(max_count=2)
    await store.save_response("resp_1", stored_response(1))
    assert await store.delete_response("resp_1")
    assert await store.get_items(["msg_1", "rs_1"]) == {}

    await store.save_response("resp_2", stored_response(2))
    again = stored_response(2)
    again.response["output"] = [answer(20)]
    await store.save_response("resp_2", again)
    assert await store.get_items(["msg_2", "rs_2", "msg_20"]) == {"msg_20": answer(20)}

    # A later turn holds msg_3 again (the client sent it back): it stays findable once resp_3 is pushed out.
    await store.save_response("resp_3", stored_response(3))
    await store.save_response("resp_4", stored_response(4, carried=(answer(3),)))
    await store.save_response("resp_5", stored_response(5))
    await store.prune()
    assert await kept(store, range(6)) == [4, 5]
    assert await store.get_items(["msg_20", "rs_3", "msg_3"]) == {"msg_3": answer(3)}
    for number in (4, 5):
        assert await store.delete_response(f"resp_{number}")
    assert await index_entries(store, open_store.redis_url) == 0
    await store.close()

    store = open_store(ttl_seconds=1)
    await store.save_response("resp_6", stored_response(6))
    deadline = time.monotonic() + 15
    while await store.get_items(["msg_6"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await store.get_items(["msg_6"]) == {}, "expired with its response"
    assert await store.prune() == 1
    assert await index_entries(store, open_store.redis_url) == 0
    await store.close()


async def index_entries(store: Any, redis_url: str | None) -> int:
    """What the store keeps of items: SQLite's item and hold rows; Redis's `state:item*` keys and hash fields."""
    if store.engine == "sqlite":
        with contextlib.closing(sqlite3.connect(store.path)) as database:
            query = "SELECT (SELECT count(*) FROM items) + (SELECT count(*) FROM item_holds)"
            return database.execute(query).fetchone()[0]
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        entries = 0
        async for key in client.scan_iter(match="state:item*"):
            entries += await client.hlen(key) if await client.type(key) == b"hash" else 1
        return entries
    finally:
        await client.aclose()


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
    limits = state.ResponseLimits(100, 10_000_000, 3600), conversation_limits()
    sqlite = state.open_state_store(None, tmp_path, *limits)
    files = [state.StoredFile(f"file-{n:032x}", f"f{n}.txt", "user_data", n, n) for n in range(3)]
    for number in range(5):
        await sqlite.save_response(f"resp_{number}", stored_response(number))
    for file in files:
        await sqlite.add_file(file)
    conversations = [state.StoredConversation(f"conv_{n}", n, {"n": str(n)}) for n in range(2)]
    for conversation in conversations:
        await sqlite.create_conversation(conversation, items(3, prefix=conversation.id))
    await sqlite.delete_conversation_item("conv_1", "conv_1_item_1")
    await sqlite.close()
    for _ in range(2):  # copying twice changes nothing
        assert await migrate.copy_state(tmp_path / "state.db", redis_server.url, *limits) == (5, 3, 2)
    redis = state.open_state_store(redis_server.url, tmp_path, *limits)
    assert await kept(redis, range(5)) == [0, 1, 2, 3, 4]
    assert await redis.get_response("resp_3") == stored_response(3)
    assert await redis.get_items(["msg_3"]) == {"msg_3": answer(3)}, "with its items by id"
    assert await redis.list_files(purpose=None, order="asc", after=None, limit=10) == files
    assert [await redis.get_conversation(f"conv_{n}") for n in range(2)] == conversations
    assert await all_items(redis, "conv_0") == items(3, prefix="conv_0")
    assert await all_items(redis, "conv_1") == [items(3, prefix="conv_1")[n] for n in (0, 2)]
    await redis.add_conversation_items("conv_1", items(1, prefix="later"))  # positions go on after the copied ones
    copied = [item["id"] for item in await all_items(redis, "conv_1")]
    assert copied == ["conv_1_item_0", "conv_1_item_2", "later_item_0"]
    await redis.close()


# --- conversations, on both engines ---


def conversation_limits(
    max_count: int = 100, max_bytes: int = 10**7, items_each: int = 50, bytes_each: int = 10**6, ttl: int = 3600
) -> Any:
    return state.ConversationLimits(max_count, max_bytes, items_each, bytes_each, ttl)


def items(count: int, prefix: str = "item", padding: int = 0) -> list[dict[str, Any]]:
    """Conversation items as the blueprint hands them to the store: whole, each with its id."""
    return [
        {
            "type": "message",
            "id": f"{prefix}_item_{n}",
            "status": "completed",
            "role": "user" if n % 2 == 0 else "assistant",
            "content": [{"type": "input_text", "text": f"turn {n} {'x' * padding} ünïcode"}],
        }
        for n in range(count)
    ]


async def all_items(store: Any, conversation_id: str) -> Any:
    return await store.list_conversation_items(conversation_id, order="asc", after=None, limit=None)


async def test_conversation_items_are_kept_in_order_and_paged_by_id(store: Any) -> None:
    conversation = state.StoredConversation("conv_a", 1_700_000_000, {"topic": "demo"})
    first, more = items(7)[:3], items(7)[3:]
    await store.create_conversation(conversation, first)
    assert await store.get_conversation("conv_a") == conversation
    assert await store.add_conversation_items("conv_a", more)
    assert await all_items(store, "conv_a") == first + more
    newest_first = list(reversed(first + more))
    assert await store.list_conversation_items("conv_a", order="desc", after=None, limit=2) == newest_first[:2]
    after = newest_first[1]["id"]
    assert await store.list_conversation_items("conv_a", order="desc", after=after, limit=3) == newest_first[2:5]
    assert await store.list_conversation_items("conv_a", order="asc", after="item_item_4", limit=10) == more[2:]
    assert await store.list_conversation_items("conv_a", order="asc", after="no_such_item", limit=10) == []
    assert await store.get_conversation_item("conv_a", "item_item_5") == more[2]
    # By id alone, as an `item_reference` names an item; an item of another conversation has an id of its own.
    await store.create_conversation(state.StoredConversation("conv_other", 0, {}), items(1, prefix="other"))
    assert await store.find_conversation_items(["item_item_5", "other_item_0", "nope"]) == {
        "item_item_5": more[2],
        "other_item_0": items(1, prefix="other")[0],
    }

    assert await store.delete_conversation_item("conv_a", "item_item_5")
    assert not await store.delete_conversation_item("conv_a", "item_item_5")
    assert await store.get_conversation_item("conv_a", "item_item_5") is None
    assert await store.find_conversation_items(["item_item_5"]) == {}
    assert [item["id"] for item in await all_items(store, "conv_a")] == [f"item_item_{n}" for n in (0, 1, 2, 3, 4, 6)]
    assert await store.add_conversation_items("conv_a", items(1, prefix="new"))
    assert (await all_items(store, "conv_a"))[-1]["id"] == "new_item_0", "added after the last, whatever was deleted"

    updated = await store.update_conversation("conv_a", {"topic": "project-x"})
    assert updated == state.StoredConversation("conv_a", 1_700_000_000, {"topic": "project-x"})
    assert await store.get_conversation("conv_a") == updated
    assert await store.delete_conversation("conv_a")
    assert not await store.delete_conversation("conv_a")
    assert await store.get_conversation("conv_a") is None
    assert await all_items(store, "conv_a") is None
    assert await store.get_conversation_item("conv_a", "item_item_0") is None
    assert await store.find_conversation_items(["item_item_0", "other_item_0"]) == {
        "other_item_0": items(1, prefix="other")[0]
    }
    assert not await store.add_conversation_items("conv_a", items(1, prefix="late"))
    assert await store.update_conversation("conv_a", {}) is None


async def test_conversation_writes_are_whole_or_refused(open_store: Any) -> None:
    size = state.store.conversation_records(items(1))[0].size  # about that of each item here
    store = open_store(conversations=conversation_limits(items_each=5, bytes_each=size * 6))
    await store.create_conversation(state.StoredConversation("conv_b", 0, {}), items(2))
    with pytest.raises(state.DuplicateItem) as duplicate:
        await store.add_conversation_items("conv_b", [*items(1, prefix="new"), items(2)[1]])
    assert duplicate.value.item_id == "item_item_1"
    with pytest.raises(state.DuplicateItem):
        await store.add_conversation_items("conv_b", [*items(1, prefix="twice"), *items(1, prefix="twice")])
    with pytest.raises(state.ConversationFull):  # five items at most: 2 + 4
        await store.add_conversation_items("conv_b", items(4, prefix="many"))
    with pytest.raises(state.ConversationFull):  # six items' bytes at most: 2 + one of five
        await store.add_conversation_items("conv_b", items(1, prefix="big", padding=size * 4))
    assert await all_items(store, "conv_b") == items(2), "a refused write adds nothing"
    assert await store.add_conversation_items("conv_b", items(3, prefix="fits"))
    with pytest.raises(state.ConversationFull):
        await store.add_conversation_items("conv_b", items(1, prefix="sixth"))
    assert await store.delete_conversation_item("conv_b", "fits_item_1")
    assert await store.add_conversation_items("conv_b", items(1, prefix="sixth")), "a deleted item frees its room"
    with pytest.raises(state.ConversationFull):
        await store.create_conversation(state.StoredConversation("conv_c", 0, {}), items(6))
    assert await store.get_conversation("conv_c") is None
    assert not await store.add_conversation_items("conv_missing", items(1))
    await store.close()


async def test_conversations_are_bounded_by_count_and_bytes(open_store: Any) -> None:
    """Past a bound the least recently changed go, whole: a change (an item added, one deleted) makes one recent."""
    size = state.store.conversation_records(items(1, padding=1000))[0].size
    store = open_store(conversations=conversation_limits(max_count=3, max_bytes=int(size * 4.5)))
    for number in range(3):
        await store.create_conversation(state.StoredConversation(f"conv_{number}", number, {}), [])
        await asyncio.sleep(0.01)  # their last changes in order, whatever the clock's resolution
    await store.add_conversation_items("conv_0", items(1, padding=1000))  # the oldest, changed: now the newest
    await asyncio.sleep(0.01)
    await store.create_conversation(state.StoredConversation("conv_3", 3, {}), [])
    await store.prune()  # SQLite applies the bounds after every TRIM_WRITES writes; prune applies them now
    assert [n for n in range(4) if await store.get_conversation(f"conv_{n}")] == [0, 2, 3]
    assert await all_items(store, "conv_1") is None, "its items went with it"
    await asyncio.sleep(0.01)
    await store.add_conversation_items("conv_2", items(4, prefix="big", padding=1000))  # 5 items' bytes in all
    await store.prune()
    assert [n for n in range(4) if await store.get_conversation(f"conv_{n}")] == [2, 3]
    await store.close()


async def test_conversations_expire_after_their_last_change(open_store: Any) -> None:
    store = open_store(conversations=conversation_limits(ttl=2))
    for number in range(2):
        await store.create_conversation(state.StoredConversation(f"conv_{number}", number, {}), items(2))
    deadline = time.monotonic() + 15
    while await store.get_conversation("conv_0") is not None and time.monotonic() < deadline:
        await store.add_conversation_items("conv_1", items(1, prefix=secrets.token_hex(4)))  # conv_1 keeps changing
        await asyncio.sleep(0.3)
    assert await store.get_conversation("conv_0") is None
    assert await store.get_conversation_item("conv_0", "item_item_0") is None
    assert "item_item_0" in await store.find_conversation_items(["item_item_0"]), "conv_1's, with the same id"
    assert await store.get_conversation("conv_1") is not None, "each change renews it"
    assert await store.prune() == 1, "prune drops what expired"
    await store.close()

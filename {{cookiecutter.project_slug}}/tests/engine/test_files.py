"""The Files API: the official SDK end to end, paging, bad input, limits, restarts, and `files_qa` using a file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import openai
import pytest
from quart import Quart

from openai_schema import spec_path, validate
from support import ServiceProcess, assert_error, base_env, tiny_pdf, wait_until
from upstream import ScriptedUpstream

SMALL_LIMIT = 64 * 1024  # MAX_FILE_BYTES of the `limited_service` below
NEEDLE = "The lighthouse keeper's cat is named Marmalade."
QUESTION = "What is the name of the lighthouse keeper's cat?"


def files_dir(service: ServiceProcess) -> Path:
    """Where a service started in its workdir with the default DATA_DIR keeps uploads."""
    return service.workdir / "data" / "files"


def handbook() -> bytes:
    """Four sections of 120 to 150 words; only the third holds NEEDLE, so retrieval has to find it."""

    def words(stem: str, count: int) -> str:
        return " ".join(f"{stem}{number}" for number in range(count))

    sections = [words("harbour", 150), words("bakery", 150), f"{words('meadow', 60)} {NEEDLE} {words('hill', 60)}"]
    return "\n\n".join([*sections, words("railway", 150)]).encode()


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "test-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body built by hand: (name, filename or None, value) per part."""
    body = bytearray()
    for name, filename, value in parts:
        quoted = None if filename is None else filename.replace("\\", "\\\\").replace('"', '\\"')
        disposition = f'form-data; name="{name}"' + (f'; filename="{quoted}"' if quoted is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def schema_checked(file_object: dict[str, Any]) -> dict[str, Any]:
    """The spec types `expires_at` as an integer; the SDK (Optional[int]) and OpenAI send null for no expiry."""
    return {key: value for key, value in file_object.items() if not (key == "expires_at" and value is None)}


@pytest.fixture(scope="module")
def limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service whose uploads may carry at most SMALL_LIMIT bytes."""
    service = ServiceProcess(
        name="files_limited",
        workdir=tmp_path_factory.mktemp("files_limited"),
        env=base_env(MAX_FILE_BYTES=str(SMALL_LIMIT)),
    )
    service.start()
    yield service
    service.stop()


def test_sdk_create_page_retrieve_download_delete(service: ServiceProcess) -> None:
    client = service.client()
    created = [
        client.files.create(file=(f"doc{i}.txt", f"document {i}".encode()), purpose="user_data") for i in range(5)
    ]
    for number, file in enumerate(created):
        assert file.id.startswith("file-") and file.object == "file" and file.status == "processed"
        assert (file.filename, file.bytes, file.purpose) == (f"doc{number}.txt", len(f"document {number}"), "user_data")

    with service.http() as http:
        everything = http.get("/v1/files").json()
    assert everything["has_more"] is False
    total = len(everything["data"])
    # Bounded: a server that ignored `after` would make the auto-pager ask for ever.
    pages = list(islice(client.files.list(limit=2).iter_pages(), total))
    assert all(len(page.data) == 2 and page.has_more for page in pages[:-1])
    assert 1 <= len(pages[-1].data) <= 2 and pages[-1].has_more is False
    paged = [file.id for file in islice(client.files.list(limit=2), total + 2)]  # the SDK's auto-pager
    assert paged == [file["id"] for file in everything["data"]]
    assert len(set(paged)) == len(paged) == sum(len(page.data) for page in pages)
    ours = {file.id for file in created}
    assert [file_id for file_id in paged if file_id in ours] == [file.id for file in reversed(created)], "newest first"

    assert client.files.retrieve(created[1].id) == created[1]
    assert client.files.content(created[1].id).read() == b"document 1"
    deleted = client.files.delete(created[1].id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created[1].id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created[1].id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created[1].id)
    assert created[1].id not in {file.id for file in client.files.list()}


def test_order_cursor_and_purpose(service: ServiceProcess) -> None:
    client = service.client()
    first, second, third = (
        client.files.create(file=(f"{purpose}.txt", b"x"), purpose=purpose)
        for purpose in ("assistants", "user_data", "assistants")
    )
    ascending = [file.id for file in client.files.list(order="asc")]
    assert ascending == [file.id for file in client.files.list(order="desc")][::-1]
    assert [file.id for file in client.files.list(order="asc", after=first.id, limit=2).data] == [second.id, third.id]
    assert [file.id for file in client.files.list(after=third.id, limit=2).data] == [second.id, first.id]
    assistants = list(client.files.list(purpose="assistants"))
    assert {first.id, third.id} <= {file.id for file in assistants}
    assert second.id not in {file.id for file in assistants}
    assert {file.purpose for file in assistants} == {"assistants"}

    with service.http() as http:
        for query, param in [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("limit=10001", "limit"),
            ("order=up", "order"),
        ]:
            assert_error(http.get(f"/v1/files?{query}"), 400, param=param)


def test_raw_shapes_headers_and_schemas(service: ServiceProcess) -> None:
    """Exact JSON shapes, the download headers, and the routes without /v1."""
    content = "Grüße aus Köln\n".encode()
    with service.http() as http:
        reply = http.post(
            "/files", data={"purpose": "user_data"}, files={"file": ("résumé notes.txt", content, "text/plain")}
        )
        assert reply.status_code == 200, reply.text
        created = reply.json()
        assert list(created) == ["id", "object", "bytes", "created_at", "filename", "purpose", "status", "expires_at"]
        assert (created["filename"], created["bytes"], created["expires_at"]) == (
            "résumé notes.txt",
            len(content),
            None,
        )
        file_id = created["id"]

        download = http.get(f"/v1/files/{file_id}/content")
        assert download.status_code == 200 and download.content == content
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-length"] == str(len(content))
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''r%C3%A9sum%C3%A9%20notes.txt" in disposition

        listed = http.get("/v1/files", params={"limit": 1}).json()
        assert set(listed) == {"object", "data", "first_id", "last_id", "has_more"}
        assert listed["object"] == "list" and listed["first_id"] == listed["last_id"] == listed["data"][0]["id"]
        assert http.get(f"/files/{file_id}").json() == created
        removed = http.delete(f"/files/{file_id}").json()
        assert removed == {"id": file_id, "object": "file", "deleted": True}

    if spec_path() is not None:
        validate(schema_checked(created), "OpenAIFile")
        validate({**listed, "data": [schema_checked(item) for item in listed["data"]]}, "ListFilesResponse")
        validate(removed, "DeleteFileResponse")


@pytest.mark.parametrize(
    ("request_kwargs", "param"),
    [
        ({"data": {"purpose": "user_data"}, "files": {"other": ("x.txt", b"x")}}, "file"),
        ({"data": {"purpose": "user_data"}}, "file"),  # not even multipart
        ({"json": {"file": "x", "purpose": "user_data"}}, "file"),
        ({"files": {"file": ("x.txt", b"x")}}, "purpose"),
        ({"data": {"purpose": "homework"}, "files": {"file": ("x.txt", b"x")}}, "purpose"),
    ],
)
def test_bad_uploads_store_nothing(service: ServiceProcess, request_kwargs: dict[str, Any], param: str) -> None:
    before = sorted(os.listdir(files_dir(service)))
    with service.http() as http:
        assert_error(http.post("/v1/files", **request_kwargs), 400, err_type="invalid_request_error", param=param)
    assert sorted(os.listdir(files_dir(service))) == before


def test_malformed_multipart_stores_nothing(service: ServiceProcess) -> None:
    body, content_type = multipart([("purpose", None, b"user_data"), ("file", "a.txt", b"complete part")])
    two_files, _ = multipart([("purpose", None, b"user_data"), ("file", "a.txt", b"a"), ("file", "b.txt", b"b")])
    before = sorted(os.listdir(files_dir(service)))
    with service.http() as http:
        unterminated = body[: -len("--test-boundary--\r\n") - 2]  # the HTTP body is whole, the form is not
        reply = http.post("/v1/files", content=unterminated, headers={"content-type": content_type})
        assert_error(reply, 400, code="invalid_multipart")
        assert_error(
            http.post("/v1/files", content=two_files, headers={"content-type": content_type}), 400, param="file"
        )
    assert sorted(os.listdir(files_dir(service))) == before


def test_unknown_ids_are_404(service: ServiceProcess) -> None:
    client = service.client()
    for file_id in ("file-" + "0" * 32, "file-nonsense", "settings.json"):
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
        with pytest.raises(openai.NotFoundError):
            client.files.delete(file_id)
        with pytest.raises(openai.NotFoundError):
            client.files.content(file_id)
    with service.http() as http:
        assert_error(http.get("/v1/files/file-missing"), 404, err_type="invalid_request_error", param="id")
        assert_error(http.get("/v1/files/..%2F..%2F.env/content"), 404)


@pytest.mark.parametrize("filename", ["../../escape.txt", "..\\..\\escape.txt", "/etc/escape.txt"])
def test_client_filename_never_becomes_a_path(service: ServiceProcess, filename: str) -> None:
    body, content_type = multipart([("purpose", None, b"user_data"), ("file", filename, b"stay inside")])
    with service.http() as http:
        reply = http.post("/v1/files", content=body, headers={"content-type": content_type})
    assert reply.status_code == 200, reply.text
    created = reply.json()
    assert created["filename"] == "escape.txt"
    assert service.client().files.content(created["id"]).read() == b"stay inside"
    assert not list(service.workdir.parent.rglob("escape.txt")), "written outside the data directory"
    assert created["id"] in os.listdir(files_dir(service))


def test_upload_cut_off_halfway_leaves_nothing(service: ServiceProcess) -> None:
    body, content_type = multipart([("purpose", None, b"user_data"), ("file", "half.bin", b"z" * 200_000)])
    directory = files_dir(service)
    before = sorted(os.listdir(directory))
    listed_before = [file.id for file in service.client().files.list()]
    head = (
        f"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
        assert wait_until(lambda: sorted(os.listdir(directory)) != before), "the upload never started"
    assert wait_until(lambda: sorted(os.listdir(directory)) == before), os.listdir(directory)
    assert [file.id for file in service.client().files.list()] == listed_before


@pytest.mark.asyncio
async def test_stalled_upload_times_out_and_leaves_nothing(app: Quart, app_settings: Any) -> None:
    """In process, with a short BODY_TIMEOUT: a client that stops sending mid-upload gets 408, nothing is kept."""
    app.config["BODY_TIMEOUT"] = 0.5
    body, content_type = multipart([("purpose", None, b"user_data"), ("file", "slow.bin", b"s" * 100_000)])
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    async with asyncio.timeout(60):
        async with app.test_client().request("/v1/files", method="POST", headers=headers) as connection:
            await connection.send(body[: len(body) // 2])
            reply = json.loads(await connection.receive())
            assert connection.status_code == 408
        assert reply["error"]["code"] == "request_timeout"
        assert os.listdir(app_settings.data_dir / "files") == []


def test_concurrent_uploads_are_never_listed_partly(service: ServiceProcess) -> None:
    payloads = [bytes([65 + n]) * (256 * 1024 + n) for n in range(6)]
    done = threading.Event()
    seen: dict[str, int] = {}

    def watch() -> None:
        with service.http() as http:
            while not done.is_set():
                for file in http.get("/v1/files").json()["data"]:
                    seen[file["id"]] = file["bytes"]

    def upload(payload: bytes) -> str:
        return service.client().files.create(file=("same-name.bin", payload), purpose="batch").id

    watcher = threading.Thread(target=watch)
    watcher.start()
    results: list[str] = []
    try:
        uploaders = [threading.Thread(target=lambda p=p: results.append(upload(p))) for p in payloads]
        for thread in uploaders:
            thread.start()
        for thread in uploaders:
            thread.join(timeout=60)
    finally:
        done.set()
        watcher.join(timeout=60)
    assert len(results) == len(set(results)) == len(payloads)
    client = service.client()
    by_size = {len(payload): payload for payload in payloads}
    for file_id in results:
        size = client.files.retrieve(file_id).bytes
        assert client.files.content(file_id).read() == by_size[size]
        assert seen.get(file_id, size) == size, "a listing showed a file before all its bytes were in"


def test_upload_larger_than_max_body_bytes(test_service: ServiceProcess, wrapper_state_dir: Path) -> None:
    """test_service refuses JSON bodies over 100 kB; uploads have their own limit. Its upload_listener hears of it."""
    content = os.urandom(300_000)
    created = test_service.client().files.create(file=("big.bin", content), purpose="user_data")
    assert created.bytes == len(content)
    downloaded = test_service.client().files.content(created.id).read()
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(content).digest()

    small = test_service.client().files.create(file=("hello.txt", b"hello listener"), purpose="assistants")
    record = json.loads((wrapper_state_dir / f"upload-{small.id}.json").read_text())
    assert record == {
        "id": small.id,
        "filename": "hello.txt",
        "purpose": "assistants",
        "bytes": 14,
        "content": "hello listener",
    }


def test_oversized_upload_is_413_and_stores_nothing(limited_service: ServiceProcess) -> None:
    client = limited_service.client()
    exact = client.files.create(file=("exact.bin", b"e" * SMALL_LIMIT), purpose="user_data")
    assert exact.bytes == SMALL_LIMIT
    # Past the limit while streaming, then refused by Content-Length (a few times: without reading the rest of
    # the body first, the service would sometimes reset the connection before the client read the 413).
    for size in (SMALL_LIMIT + 1, *[3 * 1024 * 1024] * 3, 20 * 1024 * 1024):
        with pytest.raises(openai.APIStatusError) as raised:
            client.files.create(file=("big.bin", b"b" * size), purpose="user_data")
        assert raised.value.status_code == 413
        assert raised.value.code == "file_too_large"
        assert raised.value.response.headers["x-should-retry"] == "false"
    assert [file.id for file in client.files.list()] == [exact.id]
    assert os.listdir(files_dir(limited_service)) == [exact.id]


def test_restart_keeps_files(tmp_path: Path) -> None:
    env = base_env(DATA_DIR=str(tmp_path / "shared-data"))
    first = ServiceProcess(name="files_before_restart", workdir=tmp_path / "first", env=env).start()
    try:
        created = first.client().files.create(file=("kept.txt", b"still here"), purpose="user_data")
    finally:
        first.stop()
    second = ServiceProcess(name="files_after_restart", workdir=tmp_path / "second", env=env).start()
    try:
        client = second.client()
        assert [file.id for file in client.files.list()] == [created.id]
        assert client.files.retrieve(created.id) == created
        assert client.files.content(created.id).read() == b"still here"
    finally:
        second.stop()


def file_question(file_part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [file_part, {"type": "input_text", "text": QUESTION}]}]


def test_files_qa_answers_from_an_uploaded_file(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = service.client()
    uploaded = client.files.create(file=("handbook.txt", handbook()), purpose="user_data")
    upstream.script(text="The cat is called Marmalade.")
    response = client.responses.create(
        model="files_qa", input=file_question({"type": "input_file", "file_id": uploaded.id})
    )
    assert response.output_text == "The cat is called Marmalade."
    sent = upstream.requests[0]["messages"]
    assert sent[-1] == {"role": "user", "content": QUESTION}
    best = next(line for line in sent[0]["content"].splitlines() if line.startswith("[1] "))
    assert best.startswith("[1] handbook.txt: ") and NEEDLE in best, "the best passage comes first"
    assert "bakery" not in sent[0]["content"], "only the passages that match go into the prompt"


def test_files_qa_chat_with_inline_file_data(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.script(text="Marmalade, from the inline file.")
    data_url = "data:text/plain;base64," + base64.b64encode(handbook()).decode()
    file_part = {"type": "file", "file": {"file_data": data_url, "filename": "inline.txt"}}
    messages = [{"role": "user", "content": [file_part, {"type": "text", "text": QUESTION}]}]
    stream = service.client().chat.completions.create(model="files_qa", messages=messages, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Marmalade, from the inline file."
    system = upstream.requests[0]["messages"][0]["content"]
    assert "[1] inline.txt: " in system and NEEDLE in system


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("handbook.txt", handbook(), NEEDLE),
        ("notes.md", b"# Notes\n\nThe lighthouse keeper's cat is named **Marmalade**.\n", "Marmalade"),
        # PDF's standard encoding turns the apostrophe into a typographic one: compare the rest.
        ("vault.pdf", tiny_pdf("The lighthouse keeper's cat is named Marmalade."), "cat is named Marmalade."),
    ],
)
def test_files_qa_offline_quotes_the_file(
    offline_service: ServiceProcess, filename: str, content: bytes, expected: str
) -> None:
    """Without an LLM the answer quotes the best passage: proof that it came from the file (PDF needs pypdf)."""
    client = offline_service.client()
    uploaded = client.files.create(file=(filename, content), purpose="user_data")
    answer = client.responses.create(
        model="files_qa", input=file_question({"type": "input_file", "file_id": uploaded.id})
    )
    assert f"from {filename}: " in answer.output_text and expected in answer.output_text, answer.output_text

    inline = {"type": "input_file", "filename": filename, "file_data": base64.b64encode(content).decode()}
    answer = client.responses.create(model="files_qa", input=file_question(inline))
    assert expected in answer.output_text, answer.output_text


def test_files_qa_refuses_files_it_cannot_read(offline_service: ServiceProcess) -> None:
    """The wrapper raises FileReferenceError: the client gets 404 or 400, not a pipeline failure."""
    missing = "file-" + "0" * 32
    cases = [
        ({"type": "input_file", "file_id": missing}, 404, "file_not_found"),
        ({"type": "input_file", "filename": "x.txt", "file_data": "data:text/plain;base64,%%%"}, 400, "invalid_file"),
        ({"type": "input_file", "file_url": "http://127.0.0.1:9/secret.txt"}, 400, "invalid_file"),
    ]
    with offline_service.http() as http:
        for part, status, code in cases:
            reply = http.post("/v1/responses", json={"model": "files_qa", "input": file_question(part)})
            assert_error(reply, status, code=code)
        chat_part = {"type": "file", "file": {"file_id": missing}}
        chat = {"model": "files_qa", "messages": [{"role": "user", "content": [chat_part]}]}
        assert_error(http.post("/v1/chat/completions", json=chat), 404, code="file_not_found")


def test_sdk_auto_pager_stops(service: ServiceProcess) -> None:
    """With a page size of one, every file is one request; the pager must still end (has_more false at the end)."""
    client = service.client()
    client.files.create(file=("one-more.txt", b"1"), purpose="user_data")
    with service.http() as http:
        total = len(http.get("/v1/files").json()["data"])
    assert sum(1 for _ in islice(client.files.list(limit=1), total + 2)) == total

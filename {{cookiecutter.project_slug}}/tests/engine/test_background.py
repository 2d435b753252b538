"""Background responses: runs that go on whatever their client does, cancelled, resumed, and taken over when the
process running them dies or shuts down.

Through the official SDK, against the scripted upstream; one process on SQLite (the default), or two replicas
on Redis, directly and behind nginx, as docs/long-runs.md sets them up.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engines import Nginx, RedisServer
from openai_schema import RESPONSE_EVENT_SCHEMAS, validate
from openresponses_schema import validate_event, validate_response
from support import CLIENT_TIMEOUT, ServiceProcess, base_env, wait_until
from upstream import ScriptedUpstream, StreamRecord

ENDLESS = 10**9
LEASE = "2"  # seconds: a replica that dies is seen within a few
RUNNING = ("queued", "in_progress")
TEN_TOKENS = "one two three four five six seven eight nine ten "


def service_env(upstream: ScriptedUpstream, **settings: str) -> dict[str, str]:
    return base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        BACKGROUND_LEASE_SECONDS=LEASE,
        **settings,
    )


@pytest.fixture(scope="module")
def one_process(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The example wrappers, SQLite in its own DATA_DIR, background runs one at a time (to see the queue)."""
    workdir = tmp_path_factory.mktemp("background")
    service = ServiceProcess("background", workdir, service_env(upstream, BACKGROUND_WORKERS="1")).start()
    yield service
    service.stop()


@pytest.fixture
def two_replicas(
    tmp_path: Path, upstream: ScriptedUpstream, redis_server: RedisServer, request: pytest.FixtureRequest
) -> Iterator[list[ServiceProcess]]:
    """Two replicas sharing Redis; `request.param` settings (a dict) are added to both."""
    settings = getattr(request, "param", {})
    env = service_env(upstream, STATE_URL=redis_server.url, SHUTDOWN_GRACE_SECONDS="0.5", **settings)
    replicas = [ServiceProcess(f"replica_{n}", tmp_path / f"replica-{n}", env) for n in (1, 2)]
    threads = [threading.Thread(target=replica.start) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    yield replicas
    for replica in replicas:
        replica.stop()


def finished(client: openai.OpenAI, response_id: str, timeout: float = 30) -> Any:
    """The response once it is no longer queued or in progress (bounded wait)."""
    response = wait_until(lambda: (r := client.responses.retrieve(response_id)).status not in RUNNING and r, timeout)
    assert response, f"{response_id} is still running after {timeout} s"
    return response


def raw_events(base_url: str, response_id: str, after: int | None = None) -> list[dict[str, Any]]:
    """`GET /v1/responses/<id>?stream=true` read to its end, as JSON events."""
    query = {"stream": "true"} | ({"starting_after": str(after)} if after is not None else {})
    with (
        httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT, trust_env=False) as http,
        http.stream("GET", f"/v1/responses/{response_id}", params=query) as response,
    ):
        assert response.status_code == 200, response.read()
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def assert_one_whole_stream(events: list[dict[str, Any]]) -> None:
    """Sequence numbers 0, 1, 2, ... each once; every event valid in both schemas; one terminal event, last."""
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    for event in events:
        validate_event(event)
        validate(event, RESPONSE_EVENT_SCHEMAS[event["type"]])
    terminal = [event for event in events if event["type"] in ("response.completed", "response.failed")]
    assert terminal == [events[-1]], [event["type"] for event in events]


def upstream_stream(upstream: ScriptedUpstream, prompt: str, tokens: int = 1) -> StreamRecord:
    """The upstream's stream for `prompt`, once it has sent `tokens` tokens."""
    found = wait_until(
        lambda: [s for s in upstream.streams if s.prompt == prompt and s.tokens_sent >= tokens], CLIENT_TIMEOUT
    )
    assert found, f"the upstream never streamed {tokens} tokens for {prompt!r}"
    return found[-1]


# --- one process ---


def test_a_background_response_completes_as_a_foreground_one(
    one_process: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    client = one_process.client()
    upstream.set_default(text="The same answer either way.", usage=(7, 5))
    foreground = client.responses.create(model="chat_stream", input="Same question")
    with one_process.http() as http:
        started = http.post(
            "/v1/responses", json={"model": "chat_stream", "input": "Same question", "background": True}
        )
    assert started.status_code == 200, started.text
    response_id = started.json()["id"]
    assert started.json()["background"] is True and started.json()["status"] in RUNNING
    final = finished(client, response_id)
    assert final.status == "completed" and final.background is True
    assert final.output_text == foreground.output_text
    assert final.usage == foreground.usage
    with one_process.http() as http:
        for response in (started.json(), http.get(f"/v1/responses/{response_id}").json()):
            validate_response(response)
            validate(response, "Response")
    assert_one_whole_stream(raw_events(one_process.base_url, response_id))  # a finished run replays whole


def test_cancel_stops_the_run_and_its_llm(one_process: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = one_process.client()
    upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.05)
    started = client.responses.create(model="chat_stream", input="cancel me", background=True)
    record = upstream_stream(upstream, "cancel me", tokens=3)
    cancelled = client.responses.cancel(started.id)
    sent_when_cancelled = record.tokens_sent
    assert cancelled.status == "cancelled"
    assert wait_until(lambda: record.disconnected, CLIENT_TIMEOUT), "the LLM stream outlived the cancel"
    assert record.tokens_sent - sent_when_cancelled <= 2
    assert client.responses.retrieve(started.id).status == "cancelled"
    events = raw_events(one_process.base_url, started.id)
    assert_one_whole_stream(events)
    assert events[-1]["response"]["status"] == "cancelled"
    assert client.responses.cancel(started.id).status == "cancelled", "cancelling again answers the same"


def test_a_resumed_stream_misses_nothing_and_repeats_nothing(
    one_process: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """Read five events, hang up, resume after the last one read: together, the whole stream."""
    client = one_process.client()
    upstream.script(text=TEN_TOKENS, token_delay=0.05)
    body = {"model": "chat_stream", "input": "resume me", "background": True, "stream": True}
    first = read_then_hang_up(one_process.base_url, body, events=5)
    response_id = first[0]["response"]["id"]
    rest = raw_events(one_process.base_url, response_id, after=first[-1]["sequence_number"])
    assert_one_whole_stream(first + rest)
    assert first + rest == raw_events(one_process.base_url, response_id)
    assert finished(client, response_id).output_text == TEN_TOKENS
    # The SDK's own way to resume: responses.retrieve(..., stream=True, starting_after=N).
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=7))
    assert [event.sequence_number for event in resumed] == list(range(8, len(first + rest)))


def read_then_hang_up(base_url: str, body: dict[str, Any], events: int) -> list[dict[str, Any]]:
    """POST a streamed background request, read `events` events, and close the connection."""
    read: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT, trust_env=False) as http,
        http.stream("POST", "/v1/responses", json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                read.append(json.loads(line[6:]))
                if len(read) == events:
                    break
    return read


def test_a_background_turn_is_added_to_its_conversation(
    one_process: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    client = one_process.client()
    upstream.set_default(text="Noted, Ada.")
    conversation = client.conversations.create()
    started = client.responses.create(
        model="chat_stream", input="My name is Ada.", conversation=conversation.id, background=True
    )
    assert started.conversation is not None and started.conversation.id == conversation.id
    assert finished(client, started.id).status == "completed"
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [(item.type, item.role) for item in items] == [("message", "user"), ("message", "assistant")]
    assert items[1].content[0].text == "Noted, Ada."
    assert items[1].id == finished(client, started.id).output[0].id

    upstream.set_default(text="Your name is Ada.")
    client.responses.create(model="chat_stream", input="What is my name?", conversation=conversation.id)
    prompt = upstream.requests[-1]["messages"]
    assert "Noted, Ada." in json.dumps(prompt), "the next turn's prompt lacks the background turn's answer"


def test_a_background_turn_whose_conversation_was_deleted_fails(
    one_process: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    client = one_process.client()
    upstream.script(text="slow ", repeat=20, token_delay=0.1)
    conversation = client.conversations.create()
    started = client.responses.create(
        model="chat_stream", input="deleted under me", conversation=conversation.id, background=True
    )
    upstream_stream(upstream, "deleted under me", tokens=1)
    client.conversations.delete(conversation.id)
    response = finished(client, started.id)
    assert response.status == "failed"
    assert response.error is not None and conversation.id in response.error.message
    events = raw_events(one_process.base_url, started.id)
    assert events[-1]["type"] == "response.failed" and events[-1]["response"]["status"] == "failed"
    assert "response.completed" not in [event["type"] for event in events]


def test_background_runs_past_the_worker_limit_wait_in_order(
    one_process: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """BACKGROUND_WORKERS=1: the second waits, `queued`, until the first is done."""
    client = one_process.client()
    upstream.script(text=TEN_TOKENS, token_delay=0.1)
    upstream.script(text="second")
    first = client.responses.create(model="chat_stream", input="first in line", background=True)
    upstream_stream(upstream, "first in line")
    second = client.responses.create(model="chat_stream", input="second in line", background=True)
    assert client.responses.retrieve(second.id).status == "queued"
    assert finished(client, second.id).output_text == "second"
    assert [stream.prompt for stream in upstream.streams] == ["first in line", "second in line"]
    assert finished(client, first.id).completed_at <= client.responses.retrieve(second.id).completed_at


def test_what_background_mode_refuses(one_process: ServiceProcess, upstream: ScriptedUpstream) -> None:
    client = one_process.client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="chat_stream", input="x", background=True, store=False)
    assert refused.value.param == "store"
    foreground = client.responses.create(model="chat_stream", input="x")
    with pytest.raises(openai.BadRequestError) as refused:
        list(client.responses.retrieve(foreground.id, stream=True))
    assert refused.value.param == "stream"
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(foreground.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_unknown")
    upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.05)
    running = client.responses.create(model="chat_stream", input="still going", background=True)
    upstream_stream(upstream, "still going")
    with pytest.raises(openai.BadRequestError):
        client.responses.delete(running.id)
    assert "still going" in json.dumps([item.model_dump() for item in client.responses.input_items.list(running.id)])
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="chat_stream", input="next", previous_response_id=running.id)
    assert refused.value.code == "previous_response_in_progress"
    client.responses.cancel(running.id)


# --- two replicas on Redis ---


def test_a_stream_resumes_on_the_other_replica(
    tmp_path: Path, upstream: ScriptedUpstream, two_replicas: list[ServiceProcess]
) -> None:
    """Started on one replica, resumed on the other (directly, then behind nginx): the same stream."""
    first_replica, second_replica = two_replicas
    upstream.script(text=TEN_TOKENS, token_delay=0.1)
    body = {"model": "chat_stream", "input": "across replicas", "background": True, "stream": True}
    first = read_then_hang_up(first_replica.base_url, body, events=4)
    response_id = first[0]["response"]["id"]
    rest = raw_events(second_replica.base_url, response_id, after=first[-1]["sequence_number"])
    assert_one_whole_stream(first + rest)
    nginx = Nginx(tmp_path / "nginx", [replica.port for replica in two_replicas]).start()
    try:
        for _ in range(2):  # round robin: both replicas answer once
            assert raw_events(nginx.base_url, response_id) == first + rest
    finally:
        nginx.stop()


def test_a_run_whose_replica_dies_ends_failed_within_its_lease(
    upstream: ScriptedUpstream, two_replicas: list[ServiceProcess]
) -> None:
    doomed, survivor = two_replicas
    upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.05)
    started = doomed.client().responses.create(model="chat_stream", input="doomed", background=True)
    upstream_stream(upstream, "doomed", tokens=3)
    assert doomed.process is not None
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    final = finished(survivor.client(), started.id)
    assert final.status == "failed" and "stopped before it finished" in final.error.message
    events = raw_events(survivor.base_url, started.id)
    assert events[-1]["type"] == "response.failed"
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


@pytest.mark.parametrize("two_replicas", [{"BACKGROUND_RESTART_LOST_RUNS": "true"}], indirect=True)
def test_a_lost_run_that_had_not_answered_yet_starts_again_on_a_live_replica(
    upstream: ScriptedUpstream, two_replicas: list[ServiceProcess]
) -> None:
    doomed, survivor = two_replicas
    upstream.script(text="never sent", first_token_delay=60)  # the doomed replica's call: no answer before the kill
    upstream.script(text="answered after the restart")
    started = doomed.client().responses.create(model="chat_stream", input="restart me", background=True)
    assert wait_until(lambda: len(upstream.requests) == 1, CLIENT_TIMEOUT)
    assert doomed.process is not None
    doomed.process.send_signal(signal.SIGKILL)
    final = finished(survivor.client(), started.id)
    assert final.status == "completed" and final.output_text == "answered after the restart"
    assert_one_whole_stream(raw_events(survivor.base_url, started.id))


def test_a_replica_that_shuts_down_hands_its_runs_back(
    upstream: ScriptedUpstream, two_replicas: list[ServiceProcess]
) -> None:
    """SIGTERM: the run is not cut off in silence; the other replica sees its lease released and ends it."""
    leaving, staying = two_replicas
    upstream.script(text="tick ", repeat=ENDLESS, token_delay=0.05)
    started = leaving.client().responses.create(model="chat_stream", input="handed back", background=True)
    record = upstream_stream(upstream, "handed back", tokens=3)
    assert leaving.process is not None
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(timeout=30) == 0
    assert record.disconnected, "the leaving replica kept reading the LLM"
    assert "Traceback" not in leaving.log_tail()
    final = finished(staying.client(), started.id)
    assert final.status == "failed"


def test_on_one_host_another_process_follows_the_run_through_sqlite(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    """Two processes sharing DATA_DIR (SQLite, the default): one runs, the other replays and follows its log;
    after both restart, the finished run still replays whole from the file."""
    env = service_env(upstream, DATA_DIR=str(tmp_path / "shared-data"))
    runner, follower = (ServiceProcess(name, tmp_path / name, env) for name in ("runner", "follower"))
    try:
        for service in (runner, follower):
            service.start()
        upstream.script(text=TEN_TOKENS, token_delay=0.1)
        started = runner.client().responses.create(model="chat_stream", input="one host", background=True)
        upstream_stream(upstream, "one host", tokens=2)
        followed = raw_events(follower.base_url, started.id)  # live: polled from the other process's writes
        assert_one_whole_stream(followed)
        assert followed[-1]["response"]["output"][0]["content"][0]["text"] == TEN_TOKENS
        for service in (runner, follower):
            service.stop()
        follower.start()
        assert raw_events(follower.base_url, started.id) == followed
    finally:
        runner.stop()
        follower.stop()

"""The Redis store's own layout: items stored once and held by what lists them, and the upgrade of a Redis of 0.4.0.

What both engines share is tested in test_state.py and test_item_store.py; these tests read Redis's keys too.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from test_item_store import save_chain, user_turn
from test_state import conversation_limits, state

from engines import RedisServer
from support import PACKAGE

redis_store = importlib.import_module(f"{PACKAGE}.engine.state.redis")

DATA = Path(__file__).parent / "data"
FIXTURE = json.loads((DATA / "redis-0.4.0.json").read_text())["keys"]  # made by data/make_redis_fixture.py
LIMITS = state.ResponseLimits(100, 10_000_000, 3600)
TIMES_FROM = 10**12  # a sorted set's score past this is a time in ms (2001 on); others (files: 0) are not times


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.close()


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(server.url)
    yield connection
    await connection.aclose()


def open_store(server: RedisServer, limits: Any = LIMITS, conversations: Any = None) -> Any:
    return state.open_state_store(server.url, Path("unused"), limits, conversations or conversation_limits())


async def load_0_4_0(client: redis.asyncio.Redis) -> None:
    """Every key of the fixture, as 0.4.0 wrote it, with its remaining TTL. The times in its sorted sets (when each
    response was saved, each conversation changed: ms) are moved forward, as if it had been written just now: the
    store takes them against its TTL, and the fixture was written on 2026-12-07."""
    seconds, microseconds = await client.time()
    times = [score for dumped in FIXTURE.values() if dumped["type"] == "zset" for _, score in dumped["value"]]
    written_at = max((score for score in times if score > TIMES_FROM), default=0)
    shift = seconds * 1000 + microseconds // 1000 - written_at
    for key, dumped in FIXTURE.items():
        kind, value = dumped["type"], dumped["value"]
        if kind == "string":
            await client.set(key, value)
        elif kind == "hash":
            await client.hset(key, mapping=value)
        elif kind == "zset":
            await client.zadd(key, {member: score + shift if score > TIMES_FROM else score for member, score in value})
        elif kind == "stream":
            for entry_id, fields in value:
                await client.xadd(key, fields, id=entry_id)
        if dumped["pttl"] > 0:
            await client.pexpire(key, dumped["pttl"])


def old_responses() -> dict[str, dict[str, Any]]:
    prefix = "state:response:"
    return {key.removeprefix(prefix): json.loads(d["value"]) for key, d in FIXTURE.items() if key.startswith(prefix)}


async def assert_consistent(client: redis.asyncio.Redis) -> None:
    """Every item listed is there, held exactly by the responses that hold it themselves (what they added to the
    history their base holds) and the conversation positions listing it, found by its digest (and its id, unless a
    newer item has it), and no other item is kept; a response that went keeps its holds only as a later turn's base."""
    holds_of = {
        response_id: [key for key in held.split(b",") if key]
        for response_id, held in (await client.hgetall("state:response_holds")).items()
    }
    bases = await client.hgetall("state:response_bases")
    successors = Counter(bases.values())
    assert {k: int(v) for k, v in (await client.hgetall("state:response_successors")).items()} == dict(successors)
    assert set(bases) | set(successors) <= set(holds_of), "a base, and a turn built on one, keep their holds"
    stored = set(await client.zrange("state:responses", 0, -1))
    assert set(holds_of) - stored <= set(successors), "a response that went is kept only as a later turn's base"
    response_holds: Counter[bytes] = Counter(key for keys in holds_of.values() for key in keys)
    for response_id, keys in holds_of.items():
        record = await client.hmget(b"state:response:" + response_id, ["input", "output"])
        if record[0] is not None:  # not expired: it lists what it holds, and its bases hold the rest
            listed = {key for field in record for key in (field or b"").split(b",") if key}
            assert set(keys) <= listed
            through, base = set(keys), bases.get(response_id)
            while base is not None:
                through |= set(holds_of[base])
                base = bases.get(base)
            assert listed <= through, "a response's history is held through its bases"
    conversation_holds: Counter[bytes] = Counter()
    async for key in client.scan_iter(match="state:conversation_items:*"):
        conversation_holds.update((await client.hgetall(key)).values())
    assert {k: int(v) for k, v in (await client.hgetall("state:item_holds")).items()} == dict(response_holds)
    holds = {k: int(v) for k, v in (await client.hgetall("state:item_conversation_holds")).items()}
    assert holds == dict(conversation_holds)
    kept = set(await client.hkeys("state:items"))
    assert kept == set(response_holds) | set(conversation_holds), "no item outlives its holders"
    meta = await client.hgetall("state:item_meta")
    assert set(meta) == kept
    digests = {value: key for key, value in (await client.hgetall("state:item_digests")).items()}
    assert digests == {key: value[:32] for key, value in meta.items()}
    for item_id, key in (await client.hgetall("state:item_ids")).items():
        assert meta[key][32:] == item_id
    assert set(await client.hkeys("state:item_until")) <= kept


async def test_a_redis_of_0_4_0_is_brought_over(server: RedisServer, client: redis.asyncio.Redis) -> None:
    """`redis-0.4.0.json`: every response, item, conversation, file and event log reads back as it did, its items
    stored once, its TTLs and order kept; and new writes go on from there."""
    await load_0_4_0(client)
    ttl_before = await client.pttl("state:response:resp_1")
    store = open_store(server)
    for response_id, old in old_responses().items():
        stored = await store.get_response(response_id)
        assert (stored.response, stored.input_items) == (old["response"], old["input_items"])
    old = old_responses()
    assert await store.get_items(["msg_client_note", "msg_answer_0", "rs_2", "nope"]) == {
        "msg_client_note": old["resp_1"]["input_items"][-1],
        "msg_answer_0": old["resp_0"]["response"]["output"][1],
        "rs_2": old["resp_2"]["response"]["output"][0],
    }
    conversation_items = json.loads("[" + ",".join(FIXTURE["state:conversation_items:conv_1"]["value"].values()) + "]")
    assert await store.list_conversation_items("conv_1", order="asc", after=None, limit=None) == conversation_items
    assert await store.get_conversation_item("conv_1", "item_3") == conversation_items[2]
    assert await store.find_conversation_items(["item_0", "item_2"]) == {"item_0": conversation_items[0]}
    assert (await store.get_conversation("conv_1")).metadata == {"topic": "demo"}
    assert (await store.get_file("file-" + "0" * 32)).filename == "notes.txt"
    assert await store.read_events("resp_2", -1, 10) == [(0, "event: response.created\ndata: {}\n\n")]

    assert await client.get("state:version") == b"2"
    assert await client.type("state:response:resp_1") == b"hash"
    assert 0 < ttl_before - await client.pttl("state:response:resp_1") < 60_000, "its TTL is kept"
    assert [key async for key in client.scan_iter(match="state:item:*")] == []
    assert not await client.exists("state:response_items", "state:upgrading")
    assert await client.pttl("state:conversation_items:conv_1") == -1, "it goes with its conversation's cleanup"
    saved_in = await client.zrange("state:responses", 0, -1, withscores=True)
    first = saved_in[0][1] - FIXTURE["state:responses"]["value"][0][1]  # the load's shift
    assert saved_in == [(member.encode(), score + first) for member, score in FIXTURE["state:responses"]["value"]]
    # 1 + 4 + 7 input items and 2 outputs each, stored once: 3 user turns and 6 outputs; and 3 conversation items.
    assert await client.hlen("state:items") == 9 + 3
    await assert_consistent(client)

    history = [*old["resp_2"]["input_items"], *old["resp_2"]["response"]["output"]]
    follow_up = state.StoredResponse(
        {"id": "resp_3", "output": []}, [*history, user_turn(3)], state.History("response", "resp_2", len(history))
    )
    assert await store.save_response("resp_3", follow_up)
    assert (await store.get_response("resp_3")).input_items == [*history, user_turn(3)]
    assert await store.add_conversation_items("conv_1", [{**user_turn(4), "id": "item_4"}])
    items = await store.list_conversation_items("conv_1", order="asc", after=None, limit=None)
    assert [item["id"] for item in items] == ["item_0", "item_1", "item_3", "item_4"]
    assert await client.hlen("state:items") == 9 + 3 + 2
    for response_id in ("resp_0", "resp_1", "resp_2", "resp_3"):
        assert await store.delete_response(response_id)
    assert await store.delete_conversation("conv_1")
    assert await client.hlen("state:items") == 0
    await assert_consistent(client)
    await store.close()


async def test_an_upgrade_cut_short_is_finished_by_the_next(server: RedisServer, client: redis.asyncio.Redis) -> None:
    """A replica that died midway left some records converted, whole, and the others as they were: the next
    replica converts the rest, and a record is never converted twice."""
    await load_0_4_0(client)
    first = open_store(server)
    old = await client.get("state:response:resp_1")
    arguments = first._upgrade_response_arguments(b"state:response:resp_1", old)
    assert await first._upgrade_response(args=arguments) == 1
    assert await first._upgrade_response(args=arguments) == 0, "its old record is gone: it is not converted again"
    await client.set("state:upgrading", "a replica that died", px=200)  # its lock lapses
    await first.close()

    second = open_store(server)
    for response_id, record in old_responses().items():
        stored = await second.get_response(response_id)
        assert (stored.response, stored.input_items) == (record["response"], record["input_items"])
    assert await client.hlen("state:items") == 9 + 3
    assert (
        await client.get("state:response_bytes")
        == str(sum(int(size) for size in (await client.hvals("state:response_sizes")))).encode()
    )
    await assert_consistent(client)
    await second.close()


async def test_one_replica_upgrades_while_the_others_wait(
    server: RedisServer, client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_0_4_0(client)
    replicas = [open_store(server) for _ in range(3)]
    found = await asyncio.gather(*(replica.get_response("resp_2") for replica in replicas))
    assert len({json.dumps(stored.input_items) for stored in found}) == 1 and found[0] is not None
    await assert_consistent(client)
    for replica in replicas:
        await replica.close()

    await client.delete("state:version")  # as if a replica began an upgrade and holds the lock
    await client.set("state:upgrading", "another replica", px=60_000)
    monkeypatch.setattr(redis_store, "UPGRADE_WAIT", 0.3)
    waiting = open_store(server)
    with pytest.raises(state.StoreUnavailable):
        await waiting.get_response("resp_2")
    await client.delete("state:upgrading")
    assert (await waiting.get_response("resp_2")) == found[0], "once it is done, the store answers"
    await waiting.close()


def items_sent(store: Any) -> list[int]:
    """How many items each SAVE call of `store` sends from now on (one list entry per call)."""
    sent: list[int] = []
    save = store._save

    async def counting(args: list[Any]) -> Any:
        sent.append((len(args) - 12) // 3)
        return await save(args=args)

    store._save = counting
    return sent


async def test_holds_follow_every_change(server: RedisServer, client: redis.asyncio.Redis) -> None:
    """Chains with and without hints, the same items in conversations, items deleted, responses saved again,
    pushed out by the bounds and expired, conversations expired: the holds match what lists the items throughout."""
    store = open_store(server, state.ResponseLimits(8, 10_000_000, 3600))
    history = await save_chain(store, 6, hints=True)
    await assert_consistent(client)
    conversation = [{**item, "id": item.get("id", f"msg_user_{n}")} for n, item in enumerate(history[:4])]
    await store.create_conversation(state.StoredConversation("conv_1", 1, {}), conversation)
    await store.delete_conversation_item("conv_1", "msg_0")
    hint = state.History("conversation", "conv_1", 3)
    input_items = [*[item for item in conversation if item.get("id") != "msg_0"], user_turn(50)]
    sent = items_sent(store)
    await store.save_response("resp_50", state.StoredResponse({"id": "resp_50", "output": []}, input_items, hint))
    await save_chain(store, 2, hints=True)
    assert sent == [1, 3, 3], "one call each, with the items after the history: the user turn, and the output"
    assert (await store.get_response("resp_50")).input_items == input_items
    await save_chain(store, 4, hints=False)  # resp_0 ... resp_3 saved again, the same items found by content
    await assert_consistent(client)
    assert await store.get_items(["msg_0"]) != {}
    await store.close()

    await client.flushdb()
    short = open_store(server, state.ResponseLimits(8, 10_000_000, 1), conversation_limits(ttl=1))
    await save_chain(short, 3, hints=True)
    await asyncio.sleep(1.2)
    assert await short.get_items(["msg_0", "msg_1"]) == {}, "an expired response's items are not found"
    assert await short.prune() > 0
    await assert_consistent(client)
    assert await client.hlen("state:items") == 0, "everything expired, and went with its holds"
    assert await client.hlen("state:response_holds") == 0
    await short.close()


async def test_a_response_larger_than_the_bound_writes_nothing(
    server: RedisServer, client: redis.asyncio.Redis
) -> None:
    store = open_store(server, state.ResponseLimits(10, 3000, 3600))
    await save_chain(store, 2, hints=True)
    before = await client.hgetall("state:items")
    large = state.StoredResponse({"id": "resp_9", "output": []}, [user_turn(9, padding=5000)])
    assert not await store.save_response("resp_9", large)
    assert await client.hgetall("state:items") == before
    assert await store.get_response("resp_9") is None
    run = state.BackgroundRun({"id": "resp_9", "output": []}, {}, owner="me")
    await store.create_run(run, 30)
    assert await store.finish_run(run, large), "the run ends, though its response is not kept"
    assert await store.get_run("resp_9") is None and await store.get_response("resp_9") is None
    assert not await store.finish_run(state.BackgroundRun({"id": "resp_8", "output": []}, {}, owner="me"), large)
    await assert_consistent(client)
    await store.close()

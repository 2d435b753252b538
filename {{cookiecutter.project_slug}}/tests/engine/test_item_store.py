"""Items stored once: a turn writes what is new, a response refers to its items, and an item goes with its last holder.

Store-level tests run on both engines (the `open_store` fixture of test_state.py); the service-level ones go
through the official SDK. docs/responses.md ("What is kept, and for how long") says what deleting frees.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest
import redis.asyncio
from test_state import answer, assert_items_held, conversation_limits, state

from support import PACKAGE, ServiceProcess, base_env

DATA = Path(__file__).parent / "data"
TURNS = 50


def user_turn(number: int, padding: int = 0) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": f"turn {number}" + "x" * padding}],
    }


def response(number: int) -> dict[str, Any]:
    output = [answer(number), {"id": f"rs_{number}", "type": "reasoning", "summary": []}]
    return {"id": f"resp_{number}", "object": "response", "status": "completed", "output": output}


async def save_chain(store: Any, turns: int, *, hints: bool, padding: int = 0) -> list[dict[str, Any]]:
    """resp_0 ... resp_<turns-1>, each continuing the one before as `previous_response_id` does; the last history."""
    history: list[dict[str, Any]] = []
    for number in range(turns):
        hint = state.History("response", f"resp_{number - 1}", len(history)) if hints and number else None
        input_items = [*history, user_turn(number, padding)]
        assert await store.save_response(f"resp_{number}", state.StoredResponse(response(number), input_items, hint))
        history = [*input_items, *response(number)["output"]]
    return history


async def items_kept(store: Any, redis_url: str | None) -> tuple[int, int]:
    """(items, bytes of their JSON) the store keeps, whoever holds them."""
    if store.engine == "sqlite":
        with contextlib.closing(sqlite3.connect(store.path)) as database:
            return database.execute(
                "SELECT count(*), coalesce(sum(length(CAST(record AS BLOB))), 0) FROM items"
            ).fetchone()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        values = await client.hvals("state:items")
        return len(values), sum(len(value) for value in values)
    finally:
        await client.aclose()


@pytest.mark.parametrize("hints", [True, False], ids=["chain", "history resent"])
async def test_a_long_chain_keeps_each_item_once(open_store: Any, hints: bool) -> None:
    """Whether the route says which items the store holds (a chain) or the client resends them all, each distinct
    item is kept once, and every response reads back whole."""
    store = open_store()
    history = await save_chain(store, TURNS, hints=hints, padding=1000)
    count, size = await items_kept(store, open_store.redis_url)
    assert count == 3 * TURNS, "a user turn, an answer and a reasoning item per turn"
    assert size == sum(len(json.dumps(item, separators=(",", ":")).encode()) for item in history)
    last = await store.get_response(f"resp_{TURNS - 1}")
    assert last.input_items == history[:-2] and last.response == response(TURNS - 1)
    middle = await store.get_response("resp_20")
    assert middle.input_items == history[: 3 * 20 + 1]
    await store.close()


async def test_a_hint_that_no_longer_holds_is_not_trusted(open_store: Any) -> None:
    """A source gone, or holding another count, or a conversation that lost an item: the items are found by content."""
    store = open_store()
    history = await save_chain(store, 3, hints=True)
    assert await store.delete_response("resp_2")
    wrong = [
        state.History("response", "resp_2", len(history)),  # deleted
        state.History("response", "resp_1", 2),  # another count
        state.History("conversation", "conv_none", 2),
    ]
    for number, hint in enumerate(wrong, start=10):
        input_items = [*history, user_turn(number)]
        await store.save_response(f"resp_{number}", state.StoredResponse(response(number), input_items, hint))
        assert (await store.get_response(f"resp_{number}")).input_items == input_items

    conversation_items = [{**user_turn(n), "id": f"msg_c{n}"} for n in range(3)]
    await store.create_conversation(state.StoredConversation("conv_1", 1, {}), conversation_items)
    await store.delete_conversation_item("conv_1", "msg_c1")  # during the run: the conversation's first two changed
    input_items = [*conversation_items[:2], user_turn(99)]
    hint = state.History("conversation", "conv_1", 2)
    await store.save_response("resp_99", state.StoredResponse(response(99), input_items, hint))
    assert (await store.get_response("resp_99")).input_items == input_items
    await store.close()


async def test_deleting_a_response_frees_only_what_nothing_else_holds(open_store: Any) -> None:
    """A later turn keeps its whole history when an earlier response is deleted (as OpenAI's does); an item goes
    with the last response or conversation holding it."""
    store = open_store()
    history = await save_chain(store, 3, hints=True)
    assert await store.delete_response("resp_0")
    assert await store.get_response("resp_0") is None
    assert (await store.get_response("resp_2")).input_items == history[:-2], "the later turns keep their history"
    assert await store.get_items(["msg_0"]) == {"msg_0": answer(0)}, "resp_1 and resp_2 still hold it"
    conversation_item = {**answer(1), "id": "msg_1"}  # the same item, in a conversation too
    await store.create_conversation(state.StoredConversation("conv_1", 1, {}), [conversation_item])
    for number in (1, 2):
        assert await store.delete_response(f"resp_{number}")
    assert await store.get_items(["msg_0", "msg_1", "msg_2"]) == {}, "no stored response holds them"
    assert await store.get_conversation_item("conv_1", "msg_1") == conversation_item, "the conversation still does"
    assert (await items_kept(store, open_store.redis_url))[0] == 1
    assert await store.delete_conversation("conv_1")
    assert await items_kept(store, open_store.redis_url) == (0, 0)
    await store.close()


async def response_holds(store: Any, redis_url: str | None) -> list[int]:
    """How many stored responses hold each item themselves (not through a later turn's base)."""
    if store.engine == "sqlite":
        with contextlib.closing(sqlite3.connect(store.path)) as database:
            assert_items_held(database)
            query = (
                "SELECT (i.owner IS NOT NULL) + coalesce(h.responses, 0) AS holding FROM items i"
                " LEFT JOIN item_holds h ON h.key = i.key WHERE holding > 0"
            )
            return [count for (count,) in database.execute(query)]
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        return [int(count) for count in await client.hvals("state:item_holds")]
    finally:
        await client.aclose()


async def test_a_turn_holds_only_what_it_adds(open_store: Any) -> None:
    """A turn of a chain holds its new items, and its history through the turn it continued: what a save writes
    does not grow with the chain. Without the hint (a client resending its history) each response holds it all."""
    store = open_store()
    await save_chain(store, TURNS, hints=True)
    assert await response_holds(store, open_store.redis_url) == [1] * (3 * TURNS), "each item held by one turn"
    await store.close()


async def test_a_conversation_turn_keeps_its_history_when_the_conversation_goes(open_store: Any) -> None:
    """A turn of a conversation refers to the conversation's items, but holds them itself: the conversation's
    items may be deleted, or the conversation with them, and the stored response still reads back whole."""
    store = open_store()
    conversation_items = [{**user_turn(n), "id": f"msg_c{n}"} for n in range(3)]
    await store.create_conversation(state.StoredConversation("conv_1", 1, {}), conversation_items)
    input_items = [*conversation_items, user_turn(3)]
    hint = state.History("conversation", "conv_1", 3)
    assert await store.save_response("resp_3", state.StoredResponse(response(3), input_items, hint))
    assert await store.delete_conversation_item("conv_1", "msg_c0")
    assert await store.delete_conversation("conv_1")
    assert (await store.get_response("resp_3")).input_items == input_items
    await response_holds(store, open_store.redis_url)  # SQLite: the holds are consistent
    assert await store.delete_response("resp_3")
    assert await items_kept(store, open_store.redis_url) == (0, 0)
    await store.close()


async def test_a_base_saved_again_keeps_what_later_turns_hold(open_store: Any) -> None:
    """A response saved again under its id (as a background run's final response is) while a later turn is built
    on it: the new one is what its id reads, and the later turn still reads its history whole."""
    store = open_store()
    history = await save_chain(store, 2, hints=True)
    again = {**response(0), "output": [answer(100)]}
    assert await store.save_response("resp_0", state.StoredResponse(again, [user_turn(100)]))
    assert (await store.get_response("resp_0")).response == again
    assert (await store.get_response("resp_1")).input_items == history[:-2]
    await response_holds(store, open_store.redis_url)  # SQLite: the holds are consistent
    for number in (0, 1):
        assert await store.delete_response(f"resp_{number}")
    assert await items_kept(store, open_store.redis_url) == (0, 0)
    await store.close()


@pytest.mark.parametrize("order", ["oldest first", "newest first"])
async def test_a_chain_deleted_turn_by_turn_frees_everything(open_store: Any, order: str) -> None:
    """Deleting earlier turns keeps them for the later ones (unseen: they are gone for every reader); deleting the
    last turn that needs them frees them, however the deletes were ordered."""
    store = open_store()
    history = await save_chain(store, 6, hints=True)
    numbers = range(6) if order == "oldest first" else reversed(range(6))
    for number in numbers:
        assert await store.delete_response(f"resp_{number}")
        assert await store.get_response(f"resp_{number}") is None
        assert not await store.delete_response(f"resp_{number}"), "deleted once"
        for later in range(number + 1, 6) if order == "oldest first" else ():
            assert (await store.get_response(f"resp_{later}")).input_items == history[: 3 * later + 1]
        await response_holds(store, open_store.redis_url)  # SQLite: the holds are consistent after each delete
    assert await items_kept(store, open_store.redis_url) == (0, 0)
    assert await store.get_items(["msg_0", "msg_5"]) == {}
    await store.close()


async def test_the_bounds_free_the_items_of_what_they_push_out(open_store: Any) -> None:
    store = open_store(max_count=2)
    await save_chain(store, 6, hints=False)
    await store.prune()
    assert [n for n in range(6) if await store.get_response(f"resp_{n}")] == [4, 5]
    count, _ = await items_kept(store, open_store.redis_url)
    assert count == 3 * 6, "resp_5 holds the whole chain"
    assert await store.delete_response("resp_5")
    assert await store.delete_response("resp_4")
    assert await items_kept(store, open_store.redis_url) == (0, 0)
    await store.close()


async def test_a_sqlite_file_of_0_4_0_is_brought_over(tmp_path: Path) -> None:
    """`state-0.4.0.sql`, written by the store of 0.4.0 (`data/make_sqlite_fixture.py`): every response, item,
    conversation and file reads back as it did, in a file whose items are stored once."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript((DATA / "state-0.4.0.sql").read_text())
    before = {row[0]: json.loads(row[1]) for row in old.execute("SELECT id, record FROM responses")}
    old.close()
    limits = state.ResponseLimits(100, 10_000_000, 3600)
    store = state.open_state_store(None, tmp_path, limits, conversation_limits())
    for response_id, record in before.items():
        stored = await store.get_response(response_id)
        assert (stored.response, stored.input_items) == (record["response"], record["input_items"])
    assert await store.get_items(["msg_client_note", "msg_answer_0", "rs_2"]) == {
        "msg_client_note": before["resp_1"]["input_items"][-1],
        "msg_answer_0": before["resp_0"]["response"]["output"][1],
        "rs_2": before["resp_2"]["response"]["output"][0],
    }
    items = await store.list_conversation_items("conv_1", order="asc", after=None, limit=None)
    assert [item["id"] for item in items] == ["item_0", "item_1", "item_3"]
    assert (await store.get_file("file-" + "0" * 32)).filename == "notes.txt"
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA user_version").fetchone() == (state.sqlite_items.SCHEMA_VERSION,)
        tables = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not tables & {"response_items", "responses_0_4", "conversation_items_0_4"}
        # The three turns of 0.4.0 kept 1 + 4 + 7 input items; stored once they are 3 inputs and 6 outputs.
        keys: set[int] = set()
        for input_keys, output_keys in database.execute("SELECT input_keys, output_keys FROM responses"):
            keys |= set(json.loads(input_keys)) | set(json.loads(output_keys))
        assert len(keys) == 9

    assert await store.add_conversation_items("conv_1", [{**user_turn(4), "id": "item_4"}])
    await save_chain(store, 2, hints=True)
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert_items_held(database)


async def test_a_sqlite_file_of_version_2_is_brought_over(tmp_path: Path) -> None:
    """`state-2.sql` (`data/make_sqlite_fixture_2.py`: every hold a row of `item_holds`, a hidden base, a
    conversation turn) reads back as it did; later turns own their new items, and deleting everything frees it."""
    path = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.executescript((DATA / "state-2.sql").read_text())
        assert old.execute("PRAGMA user_version").fetchone() == (2,)
    limits = state.ResponseLimits(100, 10_000_000, 3600)
    store = state.open_state_store(None, tmp_path, limits, conversation_limits())
    assert await store.get_response("resp_0") is None, "deleted, kept hidden as resp_1's base"
    resp_2 = await store.get_response("resp_2")
    assert [item.get("id") for item in resp_2.input_items] == [
        None,
        "rs_0",
        "msg_answer_0",
        "msg_client_note",
        "rs_1",
        "msg_answer_1",
        None,
    ]
    assert (await store.get_response("resp_3")).input_items[-1]["content"][0]["text"] == "conv turn"
    found = await store.get_items(["msg_answer_0", "msg_answer_2", "item_1"])
    assert set(found) == {"msg_answer_0", "msg_answer_2", "item_1"}, "held by resp_1 through its base, resp_2, resp_3"
    items = await store.list_conversation_items("conv_1", order="asc", after=None, limit=None)
    assert [item["id"] for item in items] == ["item_0", "item_1", "item_3"]
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA user_version").fetchone() == (state.sqlite_items.SCHEMA_VERSION,)
        indexes = database.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'")
        assert indexes.fetchall() == [("items_by_id_digest",)], "one index for ids and digests"
        assert_items_held(database)

    history = [*resp_2.input_items, *resp_2.response["output"]]
    hint = state.History("response", "resp_2", len(history))
    assert await store.save_response("resp_4", state.StoredResponse(response(4), [*history, user_turn(4)], hint))
    assert await store.save_response("resp_3", state.StoredResponse(response(3), [user_turn(3)]))  # saved again
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert_items_held(database)
        (owned,) = database.execute("SELECT count(*) FROM items WHERE owner IS NOT NULL").fetchone()
        assert owned == 3 + 2, "resp_4's new items are its own, and resp_3's but rs_3 (stored by its first save)"
    for response_id in ("resp_1", "resp_2", "resp_3", "resp_4"):
        assert await store.delete_response(response_id)
    assert await store.delete_conversation("conv_1")
    assert await items_kept(store, None) == (0, 0)
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert database.execute("SELECT count(*) FROM item_holds").fetchone() == (0,)
        assert database.execute("SELECT count(*) FROM responses").fetchone() == (0,)


async def test_an_upgrade_that_fails_leaves_the_file_of_version_2_as_it_was(tmp_path: Path) -> None:
    """The upgrade is one transaction: a file it cannot bring over (two rows of one digest, which version 2's
    constraint would never have let in) is left whole, at version 2, and the store answers 503s, not half a file."""
    path = tmp_path / "state.db"
    script = (DATA / "state-2.sql").read_text().replace("digest TEXT NOT NULL UNIQUE", "digest TEXT NOT NULL")
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.executescript(script)
        old.execute("INSERT INTO items (digest, item_id, record) SELECT digest, item_id, record FROM items LIMIT 1")
        old.commit()
        before = old.execute("SELECT * FROM items ORDER BY key").fetchall()
    store = state.open_state_store(None, tmp_path, state.ResponseLimits(100, 10_000_000, 3600), conversation_limits())
    with pytest.raises(state.StoreUnavailable):
        await store.get_response("resp_2")
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA user_version").fetchone() == (2,)
        assert database.execute("SELECT * FROM items ORDER BY key").fetchall() == before
        tables = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "items_2" not in tables


def test_a_chain_through_the_api_reads_back_after_deleting_its_start(tmp_path: Path) -> None:
    """What a client sees: each turn's input items are the whole conversation, the earlier turns' deletion
    leaves the later ones whole, and the store holds each item once (its file grows by the turns, not their square)."""
    service = ServiceProcess("chain", tmp_path / "chain", base_env(DATA_DIR=str(tmp_path / "data")))
    client = service.start().client()
    try:
        ids = []
        previous = None
        for turn in range(12):
            created = client.responses.create(model="chat", input=f"Turn {turn}", previous_response_id=previous)
            ids.append(previous := created.id)
        for response_id in ids[:6]:
            client.responses.delete(response_id)
        history = client.responses.input_items.list(ids[-1], order="asc", limit=100).data
        texts = [item.content[0].text for item in history if item.type == "message" and item.role == "user"]
        assert texts == [f"Turn {turn}" for turn in range(12)]
        follow_up = client.responses.create(model="chat", input="Turn 12", previous_response_id=ids[-1])
        assert follow_up.status == "completed"
    finally:
        service.stop()
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "state.db")) as database:
        assert_items_held(database)
        (items,) = database.execute("SELECT count(*) FROM items").fetchone()
        assert items == 2 * 13, "a user turn and an answer per turn, once each"


def test_a_response_deleted_on_another_process_is_not_continued(tmp_path: Path) -> None:
    """The process that saved a turn keeps it in memory for the next one (`state/recent.py`), but only as a cache:
    deleted through another process sharing the store, it is gone for this one too."""
    env = base_env(DATA_DIR=str(tmp_path / "data"))
    first = ServiceProcess("first", tmp_path / "first", env)
    second = ServiceProcess("second", tmp_path / "second", env)
    try:
        one, two = first.start().client(), second.start().client()
        kept = one.responses.create(model="chat", input="Turn 0")
        gone = one.responses.create(model="chat", input="Turn 1", previous_response_id=kept.id)
        after = one.responses.create(model="chat", input="Turn 2", previous_response_id=gone.id)
        texts = [item.content[0].text for item in one.responses.input_items.list(after.id, order="asc").data]
        assert [text for text in texts if text.startswith("Turn")] == ["Turn 0", "Turn 1", "Turn 2"]
        two.responses.delete(after.id)
        with pytest.raises(openai.BadRequestError) as raised:
            one.responses.create(model="chat", input="Turn 3", previous_response_id=after.id)
        assert raised.value.code == "previous_response_not_found"
    finally:
        first.stop()
        second.stop()


def test_only_turns_that_continue_a_response_are_kept_in_memory() -> None:
    """The process keeps a chain's newest turn for the next one, but not first turns: most are never continued,
    and holding all of them cost every request more than the reads it saved (`state/recent.py`)."""
    recent = importlib.import_module(f"{PACKAGE}.engine.state.recent").RecentResponses()
    first_input = [user_turn(0)]
    first = state.StoredResponse(response(0), first_input)
    recent.remember("resp_0", first)
    assert recent.recall("resp_0") is None
    second_input = [*first_input, *response(0)["output"], user_turn(1)]
    second = state.StoredResponse(response(1), second_input, state.History("response", "resp_0", 3))
    recent.remember("resp_1", second)
    assert recent.recall("resp_1") is second
    third_input = [*second_input, *response(1)["output"], user_turn(2)]
    third = state.StoredResponse(response(2), third_input, state.History("response", "resp_1", len(second_input) + 2))
    recent.remember("resp_2", third)
    assert recent.recall("resp_2") is third
    assert recent.recall("resp_1") is None, "a chain keeps only its newest turn"
    assert len(recent) == 1

"""Items stored once, in the SQLite store: the tables, the holds that free an item when nothing refers to it, and
the upgrade of a file written by 0.4.0 (whose responses each kept their whole conversation).

An item's row is written once, under an integer key, and found again by its id and the digest of its JSON
(`ItemRecord`; one index serves both this and `item_reference`'s search by id): a turn of a chain, a
conversation's history, a client resending what it sent before, all refer to the same row.
A response lists the keys of its input and output items in order; a conversation's position names a key.

Who holds an item: the response whose save first stored it (`items.owner`, its seq), written with the item's row
itself; and every other holder counted in `item_holds`, a narrow table apart from the (wide) item rows, so that
a turn's holds on items stored before rewrite a few small pages. A turn's new items thus cost no `item_holds`
page at all. (A commit writes each page it changed into the WAL: each b-tree a save touches is a page or more;
with the single item index, a first turn writes ~6 pages where it wrote ~8.) An item goes in the same transaction as its last holder; an owner that goes while others hold its item
leaves it unowned (`owner` NULL), so an owner is always a response there.

A turn of a chain holds only what it added (its new input and its output) and, for the rest, its base: the
response it continued, whose own holds and base cover its history. So a turn's holds cost what it adds, however
long the chain. A response that goes while later turns hold it as their base stays, unseen (`gone`, its id
renamed), until the last of them goes; then it releases its items, and its own base in turn.

Every function here runs inside the caller's transaction.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

from .store import History, ItemRecord, StoredResponse, decode_items, response_record

# PRAGMA user_version: 0 is a file of 0.4.0 or a new one, 2 has items stored once, 3 their owners and one index.
SCHEMA_VERSION = 3

ITEM_TABLES = """
CREATE TABLE IF NOT EXISTS items (
    key INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,  -- of its JSON, id included: one row per distinct item
    item_id TEXT,  -- the item's own id, by which `item_reference` finds it
    record TEXT NOT NULL,
    owner INTEGER  -- the response (seq) whose save stored it, holding it without an `item_holds` row
);
-- One index, one page a new item writes: by id (`item_reference`), and by id and digest (an item sent again)
CREATE UNIQUE INDEX IF NOT EXISTS items_by_id_digest ON items (coalesce(item_id, ''), digest);
CREATE TABLE IF NOT EXISTS item_holds (
    key INTEGER PRIMARY KEY,
    responses INTEGER NOT NULL DEFAULT 0,  -- stored responses listing it (once each, however often they list it)
    conversations INTEGER NOT NULL DEFAULT 0,  -- conversation positions holding it
    until REAL NOT NULL DEFAULT 0  -- the latest expiry of a response holding it: found by id only until then
);
"""
HOLD = """
INSERT INTO item_holds (key, responses, conversations, until) SELECT value, :responses, :conversations, :until
FROM json_each(:keys) WHERE true
ON CONFLICT (key) DO UPDATE SET responses = responses + excluded.responses,
    conversations = conversations + excluded.conversations, until = max(until, excluded.until)
"""
RELEASE = """
UPDATE item_holds SET {holder} = {holder} - listed.times
FROM (SELECT value AS key, count(*) AS times FROM json_each(?) GROUP BY value) AS listed WHERE item_holds.key = listed.key
"""
UNHELD = "SELECT key FROM item_holds WHERE key IN (SELECT value FROM json_each(?)) AND responses + conversations <= 0"
LISTED = "SELECT value FROM json_each(?)"
HELD_ELSEWHERE = "EXISTS (SELECT 1 FROM item_holds h WHERE h.key = items.key AND h.responses + h.conversations > 0)"
INSERT_ITEMS = "INSERT OR IGNORE INTO items (digest, item_id, record, owner) VALUES"
ROWS_PER_INSERT = 1000  # 3 parameters a row: within SQLite's smallest default limit of 32,766 parameters
# The seq the response being saved gets: its new items' owner, written before it.
NEXT_SEQ = "(SELECT coalesce(max(seq), 0) + 1 FROM responses)"
# The keys of items stored before, by [id or '', digest] (the order of `items_by_id_digest`, which it searches).
KEYS_BY_ID_DIGEST = """
SELECT i.digest, i.key FROM json_each(?) AS sent
JOIN items i ON coalesce(i.item_id, '') = json_extract(sent.value, '$[0]') AND i.digest = json_extract(sent.value, '$[1]')
"""
ITEMS_BY_KEY = "SELECT key, record FROM items WHERE key IN (SELECT value FROM json_each(?))"

Holder = Literal["responses", "conversations"]


class StoredItems(NamedTuple):
    keys: list[int]  # of every item given, in order
    new: set[int]  # those this call wrote
    written: int  # bytes of their JSON
    owner: int | None  # the seq that owns the new ones, when the response being saved does (and any were new)


def store_items(db: sqlite3.Connection, records: Iterable[ItemRecord], *, owned: bool = False) -> StoredItems:
    """The keys of these items in order, writing those the store does not hold; `owned`: owned by the response
    about to be saved (its seq is max(seq) + 1, read by the insert itself, not a statement more).

    One statement writes the new ones (a turn's new items are all new, as a rule); one more finds the others
    (a history resent): a turn resending 40 items reads them in one query, not 40.
    """
    records = list(records)
    if not records:
        return StoredItems([], set(), 0, None)
    distinct = list({record.digest: record for record in records}.values())
    known: dict[str, int] = {}
    owner = None
    row = f"(?, ?, ?, {NEXT_SEQ if owned else 'NULL'})"
    for start in range(0, len(distinct), ROWS_PER_INSERT):
        batch = distinct[start : start + ROWS_PER_INSERT]
        values = [value for record in batch for value in (record.digest, record.item_id, record.json)]
        query = f"{INSERT_ITEMS} {','.join([row] * len(batch))} RETURNING digest, key, owner"
        written_rows = db.execute(query, values).fetchall()
        known.update((digest, key) for digest, key, _ in written_rows)
        owner = written_rows[0][2] if written_rows else owner
    new = set(known.values())
    written = sum(record.size for record in distinct if record.digest in known)
    if len(known) < len(distinct):
        held = [(record.item_id or "", record.digest) for record in distinct if record.digest not in known]
        known.update(db.execute(KEYS_BY_ID_DIGEST, (json.dumps(held),)).fetchall())
    return StoredItems([known[record.digest] for record in records], new, written, owner)


def hold(db: sqlite3.Connection, keys: Sequence[int], holder: Holder, until: float = 0.0) -> None:
    """One more hold on each key listed (a key listed twice is held twice: pass a response's keys once each)."""
    if keys:
        held = {"responses": 0, "conversations": 0, holder: 1}
        db.execute(HOLD, {**held, "until": until, "keys": json.dumps(list(keys))})


def release(db: sqlite3.Connection, keys: Sequence[int], holder: Holder, owned: Sequence[int] = ()) -> None:
    """One hold less for each time a key is listed (several responses or positions at once), and none by their
    owners for the `owned` keys (their owners go); the items no longer held go. A few statements, however many."""
    if keys:
        db.execute(RELEASE.format(holder=holder), (json.dumps(list(keys)),))
    if owned:
        listed = json.dumps(list(owned))
        db.execute(f"DELETE FROM items WHERE key IN ({LISTED}) AND NOT {HELD_ELSEWHERE}", (listed,))
        db.execute(f"UPDATE items SET owner = NULL WHERE key IN ({LISTED})", (listed,))
    if keys or owned:
        listed = json.dumps([*keys, *owned])
        db.execute(f"DELETE FROM items WHERE key IN ({LISTED}) AND owner IS NULL AND NOT {HELD_ELSEWHERE}", (listed,))
        db.execute(f"DELETE FROM item_holds WHERE key IN ({UNHELD})", (listed,))


def read_items(db: sqlite3.Connection, *key_lists: list[int]) -> list[list[dict[str, Any]]]:
    """The items of each list of keys, in order: one query, one JSON decode per list."""
    wanted = json.dumps(list({key for keys in key_lists for key in keys}))
    records = dict(db.execute(ITEMS_BY_KEY, (wanted,)).fetchall())
    return [decode_items(",".join(records[key] for key in keys)) for keys in key_lists]


def forget_responses(db: sqlite3.Connection, seqs: Sequence[int]) -> int:
    """These stored responses go (deleted, expired, pushed out, saved again); how many were there.

    One that a later turn holds as its base is only hidden: renamed (its id free for a new save) and `gone`,
    its holds kept (and its items' ownership: an owner is always a row of `responses`). The others release their own items and their base, which goes too if it was hidden and no
    other turn holds it: deleting the last turn of a chain whose earlier turns were deleted frees them all.
    """
    query = "SELECT seq, successors FROM responses WHERE gone = 0 AND seq IN (SELECT value FROM json_each(?))"
    rows = db.execute(query, (json.dumps(list(seqs)),)).fetchall()
    hidden = [seq for seq, successors in rows if successors > 0]
    if hidden:
        query = "UPDATE responses SET gone = 1, id = id || ' ' || seq WHERE seq IN (SELECT value FROM json_each(?))"
        db.execute(query, (json.dumps(hidden),))
    free = [seq for seq, successors in rows if successors <= 0]
    while free:
        query = (
            "SELECT seq, base, own_from, input_keys, output_keys FROM responses"
            " WHERE seq IN (SELECT value FROM json_each(?))"
        )
        freed = db.execute(query, (json.dumps(free),)).fetchall()
        held = [(seq, key) for seq, _, own_from, *keys in freed for key in own_keys(own_from, *keys)]
        query = "SELECT key, owner FROM items WHERE key IN (SELECT value FROM json_each(?))"
        owners = dict(db.execute(query, (json.dumps([key for _, key in held]),)).fetchall())
        owned = [key for seq, key in held if owners.get(key) == seq]
        release(db, [key for seq, key in held if owners.get(key) != seq], "responses", owned)
        db.execute("DELETE FROM responses WHERE seq IN (SELECT value FROM json_each(?))", (json.dumps(free),))
        bases = Counter(base for _, base, *_ in freed if base is not None)
        db.executemany(
            "UPDATE responses SET successors = successors - ? WHERE seq = ?",
            [(count, base) for base, count in bases.items()],
        )
        query = (
            "SELECT seq FROM responses WHERE gone = 1 AND successors <= 0 AND seq IN (SELECT value FROM json_each(?))"
        )
        free = [seq for (seq,) in db.execute(query, (json.dumps(list(bases)),))]
    return len(rows)


def own_keys(own_from: int, input_keys: str, output_keys: str) -> list[int]:
    """The keys a response holds itself, each once: its input after its base's share, and its output."""
    return list(dict.fromkeys([*json.loads(input_keys)[own_from:], *json.loads(output_keys)]))


def history_keys(
    db: sqlite3.Connection, history: History | None, input_items: list[dict[str, Any]], now: float
) -> tuple[int | None, list[int]] | None:
    """The keys of the items `history` names, when its source is still there and holds that many, with the seq of
    the stored response they come from (the new turn's base; None for a conversation's); else None.

    A conversation's items may have been deleted while the response ran: its first items must have the ids of
    the input's first items.
    """
    if history is None or history.length > len(input_items):
        return None
    base = None
    if history.kind == "response":
        query = "SELECT seq, input_keys, output_keys FROM responses WHERE id = ? AND expires_at > ?"
        row = db.execute(query, (history.source_id, now)).fetchone()
        keys = None if row is None else [*json.loads(row[1]), *json.loads(row[2])]
        base = None if row is None else row[0]
    else:
        query = "SELECT item_key, id FROM conversation_items WHERE conversation_id = ? ORDER BY position LIMIT ?"
        rows = db.execute(query, (history.source_id, history.length)).fetchall()
        same = [item_id for _, item_id in rows] == [item.get("id") for item in input_items[: history.length]]
        keys = [key for key, _ in rows] if same else None
    return (base, keys) if keys is not None and len(keys) == history.length else None


def upgrade(db: sqlite3.Connection, schema: str) -> None:
    """Create the tables, or bring a file of 0.4.0 or of version 2 over, in the caller's transaction: all of it
    or nothing.

    0.4.0 kept each response with its whole conversation (`responses.record`), an index of item ids
    (`response_items`) and each conversation item's JSON; its rows become items stored once, with their holds.
    Version 2 counted every hold in `item_holds` and indexed items by digest and by id apart: its items are
    copied into the new table, unowned (their holds stay rows), one index for both.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return
    if version == 2:
        db.execute("ALTER TABLE items RENAME TO items_2")  # its two indexes go with it
        execute_script(db, schema)
        db.execute("INSERT INTO items (key, digest, item_id, record) SELECT key, digest, item_id, record FROM items_2")
        db.execute("DROP TABLE items_2")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return
    # Below version 2 a table already there was made by 0.4.0 or earlier (the conversations' may be absent).
    old_responses = bool(table_columns(db, "responses"))
    old_conversation_items = bool(table_columns(db, "conversation_items"))
    if old_responses:
        db.execute("ALTER TABLE responses RENAME TO responses_0_4")
        db.execute("DROP TABLE IF EXISTS response_items")
    if old_conversation_items:
        db.execute("DROP INDEX IF EXISTS conversation_item_ids")
        db.execute("ALTER TABLE conversation_items RENAME TO conversation_items_0_4")
    execute_script(db, schema)
    if old_responses:
        copy_responses(db)
        db.execute("DROP TABLE responses_0_4")
    if old_conversation_items:
        copy_conversation_items(db)
        db.execute("DROP TABLE conversation_items_0_4")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def execute_script(db: sqlite3.Connection, script: str) -> None:
    """`executescript` commits first; this runs each statement within the open transaction (split at each `;`,
    so the schema's comments hold none)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def copy_responses(db: sqlite3.Connection) -> None:
    """Each response of 0.4.0 under its old order and expiry, its items stored once."""
    rows = db.execute("SELECT seq, id, expires_at, record FROM responses_0_4 ORDER BY seq").fetchall()
    for seq, response_id, expires_at, old_record in rows:
        stored = StoredResponse.from_json(old_record)
        input_keys, _, written, _ = store_items(db, map(ItemRecord.of, stored.input_items))
        output_keys, _, written_out, _ = store_items(db, map(ItemRecord.of, stored.response.get("output", [])))
        record = response_record(stored.response)
        size = len(record.encode()) + written + written_out
        row = (seq, response_id, expires_at, size, record, json.dumps(input_keys), json.dumps(output_keys))
        columns = "seq, id, expires_at, size, record, input_keys, output_keys"
        db.execute(f"INSERT INTO responses ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        hold(db, list(dict.fromkeys([*input_keys, *output_keys])), "responses", expires_at)


def copy_conversation_items(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT conversation_id, position, id, record FROM conversation_items_0_4 ORDER BY conversation_id, position"
    ).fetchall()
    for conversation_id, position, item_id, record in rows:
        (key,), *_ = store_items(db, [ItemRecord.of(json.loads(record))])
        size = len(record.encode())
        db.execute(
            "INSERT INTO conversation_items VALUES (?, ?, ?, ?, ?)", (conversation_id, position, item_id, key, size)
        )
        hold(db, [key], "conversations")

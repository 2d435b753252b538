"""The state store for replicas: Redis (or Valkey, which speaks the same protocol), through redis-py's asyncio client.

Its keys and the Lua scripts that write them are in `redis_scripts.py`.

Each write is one Lua script or one MULTI/EXEC, so it happens whole or not at all; the scripts take the time
from Redis, so replicas with skewed clocks agree. Lost connections are re-made at the next command, so the
service recovers by itself once Redis is back. (Not for Redis Cluster: the scripts touch keys they name.)

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import redis.asyncio
import redis.exceptions

from .redis_scripts import (
    ADD_CONVERSATION_ITEMS,
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    CONVERSATION,
    CREATE_CONVERSATION,
    CREATE_RUN,
    DELETE_CONVERSATION,
    DELETE_CONVERSATION_ITEM,
    DELETE_FILE,
    DELETE_RESPONSE,
    EVENTS,
    EVENTS_PER_READ,
    EXPIRED_PER_WRITE,
    FILES,
    FIND_CONVERSATION_ITEMS,
    GET_ITEMS,
    GET_RESPONSE,
    ITEM_0_4,
    LAYOUT_VERSION,
    LIST_CONVERSATION_ITEMS,
    PREFIX,
    PRUNE,
    PRUNE_CONVERSATIONS,
    RELEASE_RUNS,
    RENEW_LEASES,
    REQUEST_CANCEL,
    RESPONSE,
    RESPONSE_ITEMS_0_4,
    RUN,
    RUNS,
    SAVE,
    TAKE_OVER_LAPSED,
    UNLOCK,
    UPDATE_CONVERSATION,
    UPDATE_RUN,
    UPGRADE_BATCH,
    UPGRADE_CONVERSATION_ITEMS,
    UPGRADE_LOCK_MS,
    UPGRADE_RESPONSE,
    UPGRADE_WAIT,
    UPGRADING,
    VERSION,
)
from .store import (
    BackgroundRun,
    ConversationFull,
    ConversationLimits,
    DuplicateItem,
    ItemRecord,
    LoggedEvent,
    Order,
    ResponseLimits,
    StoredConversation,
    StoredFile,
    StoredResponse,
    StoreUnavailable,
    conversation_records,
    decode_items,
    response_record,
    size_of,
)

logger = logging.getLogger(__name__)


def run_key(response_id: str) -> str:
    return f"{RUN}{response_id}"


def events_key(response_id: str) -> str:
    return f"{EVENTS}{response_id}"


def file_key(file_id: str) -> str:
    return f"{PREFIX}file:{file_id}"


def _run_from(fields: list[bytes | None]) -> BackgroundRun:
    record, owner, lease_until, cancel = fields
    assert record is not None and owner is not None
    return BackgroundRun.from_json(
        record, owner=owner.decode(), lease_until=float(lease_until or 0) / 1000, cancel_requested=cancel == b"1"
    )


def _entry_id(seq: int) -> str:
    return f"{seq + 1}-0"


def _logged(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[LoggedEvent]:
    return [(int(entry_id.split(b"-")[0]) - 1, fields[b"e"].decode()) for entry_id, fields in entries]


def _items_arguments(records: list[ItemRecord]) -> list[str]:
    """(digest, item id or '', JSON) of each item, as the response scripts take them."""
    return [part for record in records for part in (record.digest, record.item_id or "", record.json)]


def _conversation_arguments(items: list[dict[str, Any]]) -> tuple[list[str], int]:
    """(item id, digest, JSON) of each conversation item, as the conversation scripts take them, and their bytes;
    DuplicateItem when two have the same id."""
    records = conversation_records(items)
    arguments = [
        value for item, record in zip(items, records, strict=True) for value in (item["id"], record.digest, record.json)
    ]
    return arguments, size_of(records)


def _found(pairs: list[bytes]) -> dict[str, dict[str, Any]]:
    """id, JSON, id, JSON... as a dict, the JSON decoded in one go."""
    ids = [pairs[i].decode() for i in range(0, len(pairs), 2)]
    records = decode_items(b",".join(pairs[1::2]).decode())
    return dict(zip(ids, records, strict=True))


class RedisStore:
    engine = "redis"

    def __init__(self, url: str, limits: ResponseLimits, conversation_limits: ConversationLimits) -> None:
        self.limits = limits
        self.conversation_limits = conversation_limits
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT, health_check_interval=30
        )
        # Followers of an event log wait in XREAD BLOCK for longer than a command may take: a pool of their own,
        # without the command timeout (the block's own timeout bounds them).
        self._blocking = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=None, health_check_interval=30
        )
        self._upgraded = False
        self._upgrading = asyncio.Lock()
        script = self._redis.register_script
        self._save = script(SAVE)
        self._get_response = script(GET_RESPONSE)
        self._get_items = script(GET_ITEMS)
        self._delete_response = script(DELETE_RESPONSE)
        self._delete_file = script(DELETE_FILE)
        self._prune = script(PRUNE)
        self._create_run = script(CREATE_RUN)
        self._renew_leases = script(RENEW_LEASES)
        self._take_over_lapsed = script(TAKE_OVER_LAPSED)
        self._release_runs = script(RELEASE_RUNS)
        self._update_run = script(UPDATE_RUN)
        self._request_cancel = script(REQUEST_CANCEL)
        self._create_conversation = script(CREATE_CONVERSATION)
        self._add_conversation_items = script(ADD_CONVERSATION_ITEMS)
        self._update_conversation = script(UPDATE_CONVERSATION)
        self._delete_conversation = script(DELETE_CONVERSATION)
        self._delete_conversation_item = script(DELETE_CONVERSATION_ITEM)
        self._list_conversation_items = script(LIST_CONVERSATION_ITEMS)
        self._find_conversation_items = script(FIND_CONVERSATION_ITEMS)
        self._prune_conversations = script(PRUNE_CONVERSATIONS)
        self._upgrade_response = script(UPGRADE_RESPONSE)
        self._upgrade_conversation_items = script(UPGRADE_CONVERSATION_ITEMS)
        self._unlock = script(UNLOCK)

    @asynccontextmanager
    async def _reachable(self, *, upgraded: bool = True) -> AsyncIterator[None]:
        """Redis going away (refused, reset, timed out) or refusing a write (out of memory) is a 503 for the request.

        The store is brought to this layout first (`upgraded`), once per process.
        """
        try:
            if upgraded and not self._upgraded:
                await self._upgrade()
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            logger.error("Redis state store unreachable: %s", error)
            raise StoreUnavailable("Redis state store", "cannot reach Redis") from None
        except redis.exceptions.RedisError as error:
            logger.error("Redis state store failed: %s", error)
            raise StoreUnavailable("Redis state store", "Redis refused the command; see the service's log") from None

    # --- responses ---

    async def save_response(self, response_id: str, stored: StoredResponse) -> bool:
        if self.limits.max_count <= 0:
            return False
        async with self._reachable():
            return await self._save_with(response_id, stored, owner="") == 1

    async def _save_with(self, response_id: str, stored: StoredResponse, owner: str) -> int:
        """SAVE, with the items after the history; when the history is not there as told, again with all of them.

        So a turn of a chain sends, and writes, only what is new, in one round trip; the script tells whether the
        history is still there, since between the request's read and this write it may have gone.
        """
        outcome = int(await self._save(args=self._save_arguments(response_id, stored, owner, with_history=True)))
        if outcome == -1:
            arguments = self._save_arguments(response_id, stored, owner, with_history=False)
            outcome = int(await self._save(args=arguments))
        return outcome

    def _save_arguments(self, response_id: str, stored: StoredResponse, owner: str, *, with_history: bool) -> list[Any]:
        history = stored.history if with_history else None
        if history is not None and not 0 <= history.length <= len(stored.input_items):
            history = None
        known = history.length if history is not None else 0
        ids_sha1 = ""
        if history is not None and history.kind == "conversation":
            ids = "\n".join(str(item.get("id", "")) for item in stored.input_items[:known])
            ids_sha1 = hashlib.sha1(ids.encode()).hexdigest()
        new_input = [ItemRecord.of(item) for item in stored.input_items[known:]]
        output = [ItemRecord.of(item) for item in stored.response.get("output", ())]
        limits = self.limits
        arguments: list[Any] = [response_id, response_record(stored.response), limits.ttl_seconds * 1000]
        arguments += [limits.max_count, limits.max_bytes, EXPIRED_PER_WRITE]
        if history is None:
            arguments += ["", "", 0, ""]
        else:
            arguments += [history.kind, history.source_id, history.length, ids_sha1]
        return [*arguments, owner, len(new_input), *_items_arguments(new_input), *_items_arguments(output)]

    async def get_response(self, response_id: str) -> StoredResponse | None:
        async with self._reachable():
            found = await self._get_response(args=[response_id])
        if found is None:
            return None
        record, input_items, output = found
        response = {**json.loads(record), "output": decode_items(output.decode())}
        return StoredResponse(response, decode_items(input_items.decode()))

    async def has_response(self, response_id: str) -> bool:
        async with self._reachable():
            return bool(await self._redis.exists(RESPONSE + response_id))

    async def delete_response(self, response_id: str) -> bool:
        async with self._reachable():
            return bool(await self._delete_response(args=[response_id]))

    async def get_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not item_ids:
            return {}
        async with self._reachable():
            return _found(await self._get_items(args=item_ids))

    # --- background runs ---

    async def create_run(self, run: BackgroundRun, lease_seconds: float) -> None:
        arguments = [run.id, run.to_json(), run.owner, int(lease_seconds * 1000)]
        async with self._reachable():
            await self._create_run(keys=[run_key(run.id), RUNS], args=arguments)

    async def get_run(self, response_id: str) -> BackgroundRun | None:
        async with self._reachable():
            fields = await self._redis.hmget(run_key(response_id), ["record", "owner", "lease_until", "cancel"])
        return _run_from(fields) if fields[0] is not None else None

    async def update_run(self, run: BackgroundRun) -> bool:
        async with self._reachable():
            return bool(await self._update_run(keys=[run_key(run.id)], args=[run.to_json(), run.owner]))

    async def renew_leases(self, owner: str, response_ids: list[str], lease_seconds: float) -> dict[str, bool]:
        if not response_ids:
            return {}
        arguments = [run_key(""), owner, int(lease_seconds * 1000), *response_ids]
        async with self._reachable():
            ours = await self._renew_leases(keys=[RUNS], args=arguments)
        return {ours[i].decode(): ours[i + 1] == b"1" for i in range(0, len(ours), 2)}

    async def request_cancel(self, response_id: str) -> BackgroundRun | None:
        async with self._reachable():
            fields = await self._request_cancel(keys=[run_key(response_id)])
        return _run_from(fields) if fields else None

    async def take_over_lapsed(self, owner: str, lease_seconds: float) -> list[BackgroundRun]:
        async with self._reachable():
            taken = await self._take_over_lapsed(keys=[RUNS], args=[run_key(""), owner, int(lease_seconds * 1000)])
        return [_run_from(taken[i : i + 4]) for i in range(0, len(taken), 4)]

    async def release_runs(self, owner: str, response_ids: list[str]) -> None:
        if response_ids:
            async with self._reachable():
                await self._release_runs(keys=[RUNS], args=[run_key(""), owner, *response_ids])

    async def finish_run(self, run: BackgroundRun, stored: StoredResponse) -> bool:
        """The run's response is saved as by `save_response` (a response too large to keep ends the run all the
        same); False only when `run.owner` lost the run."""
        async with self._reachable():
            return await self._save_with(run.id, stored, owner=run.owner) != -2

    # --- event logs ---

    async def append_events(self, response_id: str, events: list[LoggedEvent]) -> None:
        key = events_key(response_id)
        async with self._reachable(), self._redis.pipeline(transaction=True) as transaction:
            for seq, event in events:
                transaction.xadd(key, {"e": event}, id=_entry_id(seq))
            transaction.pexpire(key, self.limits.ttl_seconds * 1000)
            await transaction.execute()

    async def read_events(self, response_id: str, after: int, limit: int) -> list[LoggedEvent]:
        async with self._reachable():
            entries = await self._redis.xrange(events_key(response_id), f"({_entry_id(after)}", "+", count=limit)
        return _logged(entries)

    async def last_sequence_number(self, response_id: str) -> int:
        async with self._reachable():
            last = await self._redis.xrevrange(events_key(response_id), "+", "-", count=1)
        return _logged(last)[0][0] if last else -1

    async def wait_for_events(self, response_id: str, after: int, timeout: float) -> list[LoggedEvent]:
        """XREAD BLOCK: Redis answers as soon as any process appends (or after `timeout`)."""
        key = events_key(response_id)
        block_ms = max(1, int(timeout * 1000))
        async with self._reachable():
            found = await self._blocking.xread({key: _entry_id(after)}, count=EVENTS_PER_READ, block=block_ms)
        return _logged(found[0][1]) if found else []

    # --- files ---

    async def add_file(self, file: StoredFile) -> None:
        async with self._reachable(), self._redis.pipeline(transaction=True) as transaction:
            transaction.set(file_key(file.id), file.to_json())
            transaction.zadd(FILES, {file.id: 0})
            transaction.zadd(f"{FILES}:{file.purpose}", {file.id: 0})
            await transaction.execute()

    async def get_file(self, file_id: str) -> StoredFile | None:
        async with self._reachable():
            record = await self._redis.get(file_key(file_id))
        return StoredFile.from_json(record) if record is not None else None

    async def list_files(self, *, purpose: str | None, order: Order, after: str | None, limit: int) -> list[StoredFile]:
        index = FILES if purpose is None else f"{FILES}:{purpose}"
        async with self._reachable():
            if order == "asc":
                ids = await self._redis.zrangebylex(index, f"({after}" if after else "-", "+", start=0, num=limit)
            else:
                ids = await self._redis.zrevrangebylex(index, f"({after}" if after else "+", "-", start=0, num=limit)
            records = await self._redis.mget([file_key(i.decode()) for i in ids]) if ids else []
        return [StoredFile.from_json(record) for record in records if record is not None]  # None: deleted meanwhile

    async def delete_file(self, file_id: str) -> bool:
        async with self._reachable():
            return bool(await self._delete_file(keys=[file_key(file_id), FILES], args=[file_id, f"{FILES}:"]))

    # --- conversations ---

    async def create_conversation(self, conversation: StoredConversation, items: list[dict[str, Any]]) -> None:
        triples, size = _conversation_arguments(items)
        limits = self.conversation_limits
        if len(items) > limits.max_items_each or size > self._max_bytes_each():
            raise ConversationFull()
        arguments = [conversation.id, conversation.to_json(), limits.ttl_seconds * 1000, limits.max_count]
        arguments += [limits.max_bytes, EXPIRED_PER_WRITE, *triples]
        async with self._reachable():
            await self._create_conversation(args=arguments)

    async def get_conversation(self, conversation_id: str) -> StoredConversation | None:
        async with self._reachable():
            record = await self._redis.get(f"{CONVERSATION}:{conversation_id}")
        return StoredConversation.from_json(record) if record is not None else None

    async def update_conversation(self, conversation_id: str, metadata: dict[str, str]) -> StoredConversation | None:
        current = await self.get_conversation(conversation_id)
        if current is None:
            return None
        updated = replace(current, metadata=metadata)  # id and created_at never change: no race to lose
        arguments = [conversation_id, updated.to_json(), self.conversation_limits.ttl_seconds * 1000]
        async with self._reachable():
            found = await self._update_conversation(args=arguments)
        return updated if found else None

    async def delete_conversation(self, conversation_id: str) -> bool:
        async with self._reachable():
            return bool(await self._delete_conversation(args=[conversation_id]))

    async def add_conversation_items(self, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        triples, _ = _conversation_arguments(items)
        limits = self.conversation_limits
        arguments = [conversation_id, limits.ttl_seconds * 1000, limits.max_count, limits.max_bytes]
        arguments += [EXPIRED_PER_WRITE, limits.max_items_each, self._max_bytes_each(), *triples]
        async with self._reachable():
            outcome = await self._add_conversation_items(args=arguments)
        if isinstance(outcome, bytes):
            raise DuplicateItem(outcome.decode())
        if outcome == -1:
            raise ConversationFull()
        return outcome == 1

    async def list_conversation_items(
        self, conversation_id: str, *, order: Order, after: str | None, limit: int | None
    ) -> list[dict[str, Any]] | None:
        arguments = [conversation_id, order, after or "", -1 if limit is None else limit]
        async with self._reachable():
            records = await self._list_conversation_items(args=arguments)
        return None if records is None else decode_items(records.decode())

    async def get_conversation_item(self, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        async with self._reachable():
            found = await self._find_conversation_items(args=[conversation_id, item_id])
        return _found(found).get(item_id)

    async def find_conversation_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not item_ids:
            return {}
        async with self._reachable():
            return _found(await self._find_conversation_items(args=["", *item_ids]))

    async def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool:
        arguments = [conversation_id, item_id, self.conversation_limits.ttl_seconds * 1000]
        async with self._reachable():
            return bool(await self._delete_conversation_item(args=arguments))

    def _max_bytes_each(self) -> int:
        return min(self.conversation_limits.max_bytes_each, self.conversation_limits.max_bytes)

    # --- upkeep ---

    async def ping(self) -> None:
        async with self._reachable(upgraded=False):
            await self._redis.ping()

    async def prune(self) -> int:
        async with self._reachable():
            responses = int(await self._prune(args=[self.limits.ttl_seconds * 1000]))
            conversations_ttl_ms = self.conversation_limits.ttl_seconds * 1000
            return responses + int(await self._prune_conversations(args=[conversations_ttl_ms]))

    async def close(self) -> None:
        await self._redis.aclose()
        await self._blocking.aclose()

    # --- the upgrade of a store written by 0.4.0 ---

    async def _upgrade(self) -> None:
        """Bring the store to this layout, once: one replica converts (holding `state:upgrading`), the others wait.

        0.4.0 kept each response with its whole conversation (a string at `state:response:<id>`; this layout's is a
        hash), an index `state:item:<id>` -> response, and each conversation item's JSON. Each record is converted
        by one script that first checks that its old value is still there, so after a crash a record is whole or
        absent, and the next replica to start finishes the job; TTLs and the order of saves are kept.
        """
        async with self._upgrading:
            deadline = asyncio.get_running_loop().time() + UPGRADE_WAIT
            while not self._upgraded:
                if await self._redis.get(VERSION) == LAYOUT_VERSION:
                    self._upgraded = True
                    return
                token = secrets.token_hex(8)
                if await self._redis.set(UPGRADING, token, nx=True, px=UPGRADE_LOCK_MS):
                    try:
                        await self._convert_0_4(token)
                        await self._redis.set(VERSION, LAYOUT_VERSION)
                    finally:
                        await self._unlock(keys=[UPGRADING], args=[token])
                    self._upgraded = True
                    return
                if asyncio.get_running_loop().time() > deadline:
                    raise StoreUnavailable("Redis state store", "another replica is upgrading it")
                await asyncio.sleep(0.1)

    async def _convert_0_4(self, token: str) -> None:
        converted = seen = 0
        async for key in self._redis.scan_iter(match=f"{RESPONSE}*", count=UPGRADE_BATCH, _type="string"):
            old = await self._redis.get(key)
            if old is not None:
                converted += await self._upgrade_response(args=self._upgrade_response_arguments(key, old))
            seen += 1
            if seen % UPGRADE_BATCH == 0:
                await self._redis.set(UPGRADING, token, xx=True, px=UPGRADE_LOCK_MS)
        async for key in self._redis.scan_iter(match=f"{CONVERSATION}_items:*", count=UPGRADE_BATCH, _type="hash"):
            items = await self._redis.hgetall(key)
            old = [(item_id, record) for item_id, record in items.items() if record.startswith(b"{")]
            if old:
                converted += len(old)
                conversation_id = key.decode().removeprefix(f"{CONVERSATION}_items:")
                await self._upgrade_conversation_items(args=[conversation_id, *_upgrade_items_arguments(old)])
            await self._redis.set(UPGRADING, token, xx=True, px=UPGRADE_LOCK_MS)
        # What is left of 0.4.0's item index named responses that expired before they were cleaned up.
        async for key in self._redis.scan_iter(match=f"{ITEM_0_4}*", count=UPGRADE_BATCH):
            await self._redis.delete(key)
        await self._redis.delete(RESPONSE_ITEMS_0_4)
        if converted:
            logger.info("Redis state store upgraded from 0.4.0: %d responses and conversation items", converted)

    def _upgrade_response_arguments(self, key: bytes, old: bytes) -> list[Any]:
        stored = StoredResponse.from_json(old)
        output_items = stored.response.get("output", [])
        input_records = [ItemRecord.of(item) for item in stored.input_items]
        output_records = [ItemRecord.of(item) for item in output_items]
        indexed = {record.item_id for record in (*input_records, *output_records) if record.item_id}
        response_id = key.decode().removeprefix(RESPONSE)
        arguments: list[Any] = [response_id, old, response_record(stored.response), self.limits.ttl_seconds * 1000]
        arguments += [len(input_records), len(output_records)]
        return [*arguments, *_items_arguments(input_records), *_items_arguments(output_records), *sorted(indexed)]


def _upgrade_items_arguments(old: list[tuple[bytes, bytes]]) -> list[Any]:
    """(item id, its 0.4.0 JSON, digest, JSON) of each conversation item to convert."""
    arguments: list[Any] = []
    for item_id, old_record in old:
        record = ItemRecord.of(json.loads(old_record))
        arguments += [item_id, old_record, record.digest, record.json]
    return arguments

"""The state store for replicas: Redis (or Valkey, which speaks the same protocol), through redis-py's asyncio client.

Keys, all under the prefix `state:` (give each service its own database, `redis://host/1`, to share a server):

    state:response:<id>         a stored response with its input items (JSON), expiring with RESPONSES_TTL_SECONDS
    state:responses             sorted set of response ids by the time they were saved (the oldest go first)
    state:response_sizes        hash: response id -> bytes;  state:response_bytes: their sum
    state:item:<item id>        the id of the newest stored response holding that item (`item_reference`),
                                expiring with it;  state:response_items: hash, response id -> its item ids (JSON)
    state:file:<id>             an uploaded file's metadata (JSON)
    state:files, state:files:<purpose>   sorted sets of file ids (all scores 0, so ordered by id = by upload time)
    state:run:<id>              hash: a background run's record (JSON), owner, lease_until (ms), cancel (0/1)
    state:runs                  sorted set of running ids by lease_until: the lapsed ones are found at its start
    state:events:<id>           a response's event log: a stream whose entry ids are <sequence number + 1>-0,
                                expiring with the response
    state:conversation:<id>     a conversation's record (JSON)
    state:conversation_items:<id>   hash: item id -> item (JSON); a hash, not a key per item, so that a change
                                    renews the expiry of the conversation's two keys, not of every item
    state:conversation_order:<id>   sorted set of its item ids by position (the order they were added in); it
                                    does not expire but goes with the index entries, once an expired conversation is
                                    cleaned up, so that its items' entries in the owners' hash go too
    state:conversations         sorted set of conversation ids by their last change (the least recent go first)
    state:conversation_sizes    hash: conversation id -> bytes of its items;  state:conversation_bytes: their sum
    state:conversation_item_owners  hash: item id -> the conversation that last added an item of that id

Each write is one Lua script or one MULTI/EXEC, so it happens whole or not at all; the scripts take the time
from Redis, so replicas with skewed clocks agree. Lost connections are re-made at the next command, so the
service recovers by itself once Redis is back. (Not for Redis Cluster: the scripts touch keys they name.)

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import redis.asyncio
import redis.exceptions

from .store import (
    BackgroundRun,
    ConversationFull,
    ConversationLimits,
    DuplicateItem,
    LoggedEvent,
    Order,
    ResponseLimits,
    StoredConversation,
    StoredFile,
    StoredResponse,
    StoreUnavailable,
    decode_items,
    encode_items,
    size_of,
)

logger = logging.getLogger(__name__)

PREFIX = "state:"
RESPONSES = PREFIX + "responses"
RESPONSE_SIZES = PREFIX + "response_sizes"
RESPONSE_BYTES = PREFIX + "response_bytes"
RESPONSE_ITEMS = PREFIX + "response_items"
ITEM_PREFIX = PREFIX + "item:"
FILES = PREFIX + "files"
RUNS = PREFIX + "runs"
CONVERSATION = PREFIX + "conversation"  # + ":<id>", "_items:<id>", "_order:<id>"
CONVERSATION_INDEX = [
    PREFIX + "conversations",
    PREFIX + "conversation_sizes",
    PREFIX + "conversation_bytes",
    PREFIX + "conversation_item_owners",
]
CONNECT_TIMEOUT = 2.0  # seconds: a request that needs an unreachable store gets its 503 this soon
COMMAND_TIMEOUT = 5.0
EXPIRED_PER_WRITE = 100  # expired responses cleaned from the indexes by one save, so no save takes long
EVENTS_PER_READ = 1000

# A response's key goes, its event log (unless kept), its entries in the indexes, and the keys of its items that
# still name it. (The item index's keys are named here, not passed: the scripts already name keys they compute, so
# Redis Cluster is out anyway.)
FORGET = f"""
local response_items, item_prefix, events_prefix = '{RESPONSE_ITEMS}', '{ITEM_PREFIX}', '{PREFIX}events:'
local function forget(id, keep_log)
    redis.call('DEL', ARGV[1] .. id)
    if not keep_log then redis.call('DEL', events_prefix .. id) end
    redis.call('ZREM', KEYS[1], id)
    local size = redis.call('HGET', KEYS[2], id)
    if size then
        redis.call('DECRBY', KEYS[3], size)
        redis.call('HDEL', KEYS[2], id)
    end
    local items = redis.call('HGET', response_items, id)
    if items then
        for _, item in ipairs(cjson.decode(items)) do
            if redis.call('GET', item_prefix .. item) == id then redis.call('DEL', item_prefix .. item) end
        end
        redis.call('HDEL', response_items, id)
    end
end
"""
# KEYS: responses, sizes, bytes. ARGV: key prefix, id, record, ttl ms, max count, max bytes, expired per write,
# the ids of its items (a JSON array).
SAVE = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, ARGV[7])
for _, id in ipairs(expired) do forget(id) end
forget(ARGV[2], true)  -- saved again: counted once (a background response's event log stays with it)
redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], #ARGV[3])
local items = cjson.decode(ARGV[8])
for _, item in ipairs(items) do redis.call('SET', item_prefix .. item, ARGV[2], 'PX', ARGV[4]) end
if #items > 0 then redis.call('HSET', response_items, ARGV[2], ARGV[8]) end
local bytes = redis.call('INCRBY', KEYS[3], #ARGV[3])
while redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[5]) or bytes > tonumber(ARGV[6]) do
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if not oldest then break end
    forget(oldest)
    bytes = tonumber(redis.call('GET', KEYS[3]))
end
"""
SAVE_RESPONSE = FORGET + SAVE
# KEYS: responses, sizes, bytes, the run's key, runs. ARGV: as SAVE, then the owner. Returns 0 if not the owner's.
FINISH_RUN = (
    FORGET
    + """
if redis.call('HGET', KEYS[4], 'owner') ~= ARGV[9] then return 0 end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[2])
"""
    + SAVE
    + "return 1\n"
)
# KEYS: responses, sizes, bytes. ARGV: key prefix, id. Returns 1 when the response was there.
DELETE_RESPONSE = (
    FORGET
    + """
local existed = redis.call('EXISTS', ARGV[1] .. ARGV[2])
forget(ARGV[2])
return existed
"""
)
# KEYS: the file's key, files. ARGV: id, prefix of the per-purpose sets. Returns 1 when the file was there.
DELETE_FILE = """
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. cjson.decode(record)['purpose'], ARGV[1])
return 1
"""
# KEYS: responses, sizes, bytes. ARGV: key prefix, ttl ms. Returns how many expired responses were dropped.
PRUNE = (
    FORGET
    + """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, id in ipairs(expired) do forget(id) end
return #expired
"""
)

# The conversation scripts' common part. KEYS: CONVERSATION_INDEX; ARGV[1]: CONVERSATION.
CONVERSATIONS = """
local P = ARGV[1]
local function keys_of(id) return P .. ':' .. id, P .. '_items:' .. id, P .. '_order:' .. id end
local function now_ms()
    local time = redis.call('TIME')
    return time[1] * 1000 + math.floor(time[2] / 1000)
end
local function disown(id, item_id)
    if redis.call('HGET', KEYS[4], item_id) == id then redis.call('HDEL', KEYS[4], item_id) end
end
local function forget(id)
    local _, _, order = keys_of(id)
    for _, item_id in ipairs(redis.call('ZRANGE', order, 0, -1)) do disown(id, item_id) end
    redis.call('DEL', keys_of(id))
    redis.call('ZREM', KEYS[1], id)
    local size = redis.call('HGET', KEYS[2], id)
    if size then
        redis.call('DECRBY', KEYS[3], size)
        redis.call('HDEL', KEYS[2], id)
    end
end
local function forget_expired(now, ttl, count)
    local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl, 'LIMIT', 0, count)
    for _, id in ipairs(expired) do forget(id) end
    return #expired
end
local function touch(id, now, ttl)  -- changed now: it and its items expire `ttl` ms from now
    local record, items = keys_of(id)
    redis.call('PEXPIRE', record, ttl)
    redis.call('PEXPIRE', items, ttl)
    redis.call('ZADD', KEYS[1], now, id)
end
local function keep_within(max_count, max_bytes)
    local bytes = tonumber(redis.call('GET', KEYS[3]) or 0)
    while redis.call('ZCARD', KEYS[1]) > max_count or bytes > max_bytes do
        local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
        if not oldest then break end
        forget(oldest)
        bytes = tonumber(redis.call('GET', KEYS[3]) or 0)
    end
end
local function append(id, first)  -- the (item id, JSON) pairs of ARGV from `first` on, after its last item
    local _, items, order = keys_of(id)
    local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
    local position = last[2] and tonumber(last[2]) + 1 or 0
    local bytes = 0
    for i = first, #ARGV, 2 do
        redis.call('HSET', items, ARGV[i], ARGV[i + 1])
        redis.call('ZADD', order, position, ARGV[i])
        redis.call('HSET', KEYS[4], ARGV[i], id)
        position = position + 1
        bytes = bytes + #ARGV[i + 1]
    end
    redis.call('HINCRBY', KEYS[2], id, bytes)
    redis.call('INCRBY', KEYS[3], bytes)
end
"""
# ARGV: prefix, id, record, ttl ms, max count, max bytes, expired per write, then (item id, JSON) pairs.
CREATE_CONVERSATION = (
    CONVERSATIONS
    + """
local id, now, ttl = ARGV[2], now_ms(), tonumber(ARGV[4])
forget_expired(now, ttl, ARGV[7])
forget(id)  -- created again (only a migration does that): replaced
redis.call('SET', P .. ':' .. id, ARGV[3])
append(id, 8)
touch(id, now, ttl)
keep_within(tonumber(ARGV[5]), tonumber(ARGV[6]))
"""
)
# ARGV: prefix, id, ttl ms, max count, max bytes, expired per write, max items each, max bytes each, then pairs.
# Returns 1 when added, 0 when there is no such conversation, -1 when it is full, or the id of an item it has.
ADD_CONVERSATION_ITEMS = (
    CONVERSATIONS
    + """
local id, now, ttl = ARGV[2], now_ms(), tonumber(ARGV[3])
forget_expired(now, ttl, ARGV[6])
local record, items = keys_of(id)
if redis.call('EXISTS', record) == 0 then return 0 end
local bytes = 0
for i = 9, #ARGV, 2 do
    if redis.call('HEXISTS', items, ARGV[i]) == 1 then return ARGV[i] end
    bytes = bytes + #ARGV[i + 1]
end
local count = redis.call('HLEN', items) + (#ARGV - 8) / 2
if count > tonumber(ARGV[7]) or tonumber(redis.call('HGET', KEYS[2], id) or 0) + bytes > tonumber(ARGV[8]) then
    return -1
end
append(id, 9)
touch(id, now, ttl)
keep_within(tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
"""
)
# ARGV: prefix, id, record, ttl ms. Returns 1 when the conversation was there (and now has this record).
UPDATE_CONVERSATION = (
    CONVERSATIONS
    + """
if not redis.call('SET', P .. ':' .. ARGV[2], ARGV[3], 'XX') then return 0 end
touch(ARGV[2], now_ms(), tonumber(ARGV[4]))
return 1
"""
)
# ARGV: prefix, id. Returns 1 when the conversation was there.
DELETE_CONVERSATION = (
    CONVERSATIONS
    + """
local existed = redis.call('EXISTS', P .. ':' .. ARGV[2])
forget(ARGV[2])
return existed
"""
)
# ARGV: prefix, id, item id, ttl ms. Returns 1 when the item was there.
DELETE_CONVERSATION_ITEM = (
    CONVERSATIONS
    + """
local id, item_id = ARGV[2], ARGV[3]
local record, items, order = keys_of(id)
local item = redis.call('HGET', items, item_id)
if redis.call('EXISTS', record) == 0 or not item then return 0 end
redis.call('HDEL', items, item_id)
redis.call('ZREM', order, item_id)
disown(id, item_id)
redis.call('HINCRBY', KEYS[2], id, -#item)
redis.call('DECRBY', KEYS[3], #item)
touch(id, now_ms(), tonumber(ARGV[4]))
return 1
"""
)
# ARGV: prefix, id, order (asc or desc), after ('' for none), limit (-1 for all). Returns the items' JSON joined
# by commas, or nil when there is no such conversation.
LIST_CONVERSATION_ITEMS = (
    CONVERSATIONS
    + """
local record, items, order = keys_of(ARGV[2])
if redis.call('EXISTS', record) == 0 then return false end
local ascending, limit = ARGV[3] == 'asc', tonumber(ARGV[5])
local ids
if ARGV[4] ~= '' then
    local position = redis.call('ZSCORE', order, ARGV[4])
    if not position then return '' end
    if ascending then
        ids = redis.call('ZRANGEBYSCORE', order, '(' .. position, '+inf', 'LIMIT', 0, limit)
    else
        ids = redis.call('ZREVRANGEBYSCORE', order, '(' .. position, '-inf', 'LIMIT', 0, limit)
    end
else
    ids = redis.call(ascending and 'ZRANGE' or 'ZREVRANGE', order, 0, limit < 0 and -1 or limit - 1)
end
local records = {}
for start = 1, #ids, 1000 do  -- unpack takes a few thousand values at most
    for _, item in ipairs(redis.call('HMGET', items, unpack(ids, start, math.min(start + 999, #ids)))) do
        records[#records + 1] = item
    end
end
return table.concat(records, ',')  -- one reply to parse, not one per item
"""
)
# ARGV: prefix, ttl ms. Returns how many expired conversations were dropped.
PRUNE_CONVERSATIONS = CONVERSATIONS + "return forget_expired(now_ms(), tonumber(ARGV[2]), -1)"


NOW_MS = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
"""
RUN_FIELDS = "'record', 'owner', 'lease_until', 'cancel'"
# KEYS: the run's key, runs. ARGV: id, record, owner, lease ms.
CREATE_RUN = (
    NOW_MS
    + """
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'owner', ARGV[3], 'lease_until', now + ARGV[4], 'cancel', 0)
redis.call('ZADD', KEYS[2], now + ARGV[4], ARGV[1])
"""
)
# KEYS: runs. ARGV: run key prefix, owner, lease ms, ids... Returns id, cancel, id, cancel... of the runs still ours.
RENEW_LEASES = (
    NOW_MS
    + """
local ours = {}
for i = 4, #ARGV do
    local key = ARGV[1] .. ARGV[i]
    if redis.call('HGET', key, 'owner') == ARGV[2] then
        redis.call('HSET', key, 'lease_until', now + ARGV[3])
        redis.call('ZADD', KEYS[1], now + ARGV[3], ARGV[i])
        table.insert(ours, ARGV[i])
        table.insert(ours, redis.call('HGET', key, 'cancel'))
    end
end
return ours
"""
)
# KEYS: runs. ARGV: run key prefix, owner, lease ms. Returns the taken runs' fields, four per run.
TAKE_OVER_LAPSED = (
    NOW_MS
    + """
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
    local key = ARGV[1] .. id
    if redis.call('EXISTS', key) == 1 then
        redis.call('HSET', key, 'owner', ARGV[2], 'lease_until', now + ARGV[3])
        redis.call('ZADD', KEYS[1], now + ARGV[3], id)
        for _, value in ipairs(redis.call('HMGET', key, """
    + RUN_FIELDS
    + """)) do table.insert(taken, value) end
    else
        redis.call('ZREM', KEYS[1], id)
    end
end
return taken
"""
)
# KEYS: runs. ARGV: run key prefix, owner, ids...
RELEASE_RUNS = """
for i = 3, #ARGV do
    if redis.call('HGET', ARGV[1] .. ARGV[i], 'owner') == ARGV[2] then
        redis.call('HSET', ARGV[1] .. ARGV[i], 'lease_until', 0)
        redis.call('ZADD', KEYS[1], 0, ARGV[i])
    end
end
"""
# KEYS: the run's key. ARGV: record, owner. Returns 1 when the run is still the owner's.
UPDATE_RUN = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1])
return 1
"""
# KEYS: the run's key. Returns its fields, or nothing when there is no such run.
REQUEST_CANCEL = (
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'cancel', 1)
return redis.call('HMGET', KEYS[1], """
    + RUN_FIELDS
    + ")\n"
)


def run_key(response_id: str) -> str:
    return f"{PREFIX}run:{response_id}"


def events_key(response_id: str) -> str:
    return f"{PREFIX}events:{response_id}"


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


def response_key(response_id: str) -> str:
    return f"{PREFIX}response:{response_id}"


def item_key(item_id: str) -> str:
    return f"{ITEM_PREFIX}{item_id}"


def file_key(file_id: str) -> str:
    return f"{PREFIX}file:{file_id}"


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
        self._save_response = self._redis.register_script(SAVE_RESPONSE)
        self._delete_response = self._redis.register_script(DELETE_RESPONSE)
        self._delete_file = self._redis.register_script(DELETE_FILE)
        self._prune = self._redis.register_script(PRUNE)
        self._finish_run = self._redis.register_script(FINISH_RUN)
        self._create_run = self._redis.register_script(CREATE_RUN)
        self._renew_leases = self._redis.register_script(RENEW_LEASES)
        self._take_over_lapsed = self._redis.register_script(TAKE_OVER_LAPSED)
        self._release_runs = self._redis.register_script(RELEASE_RUNS)
        self._update_run = self._redis.register_script(UPDATE_RUN)
        self._request_cancel = self._redis.register_script(REQUEST_CANCEL)
        self._create_conversation = self._redis.register_script(CREATE_CONVERSATION)
        self._add_conversation_items = self._redis.register_script(ADD_CONVERSATION_ITEMS)
        self._update_conversation = self._redis.register_script(UPDATE_CONVERSATION)
        self._delete_conversation = self._redis.register_script(DELETE_CONVERSATION)
        self._delete_conversation_item = self._redis.register_script(DELETE_CONVERSATION_ITEM)
        self._list_conversation_items = self._redis.register_script(LIST_CONVERSATION_ITEMS)
        self._prune_conversations = self._redis.register_script(PRUNE_CONVERSATIONS)

    @asynccontextmanager
    async def _reachable(self) -> AsyncIterator[None]:
        """Redis going away (refused, reset, timed out) or refusing a write (out of memory) is a 503 for the request."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            logger.error("Redis state store unreachable: %s", error)
            raise StoreUnavailable("Redis state store", "cannot reach Redis") from None
        except redis.exceptions.RedisError as error:
            logger.error("Redis state store failed: %s", error)
            raise StoreUnavailable("Redis state store", "Redis refused the command; see the service's log") from None

    # --- responses ---

    async def save_response(self, response_id: str, stored: StoredResponse) -> bool:
        record = stored.to_json()
        if len(record) > self.limits.max_bytes or self.limits.max_count <= 0:
            return False
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES]
        ttl_ms = self.limits.ttl_seconds * 1000
        arguments = [response_key(""), response_id, record, ttl_ms, self.limits.max_count, self.limits.max_bytes]
        item_ids = json.dumps(stored.item_ids())
        async with self._reachable():
            await self._save_response(keys=keys, args=[*arguments, EXPIRED_PER_WRITE, item_ids])
        return True

    async def get_response(self, response_id: str) -> StoredResponse | None:
        async with self._reachable():
            record = await self._redis.get(response_key(response_id))
        return StoredResponse.from_json(record) if record is not None else None

    async def delete_response(self, response_id: str) -> bool:
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES]
        async with self._reachable():
            return bool(await self._delete_response(keys=keys, args=[response_key(""), response_id]))

    async def get_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        async with self._reachable():
            holders = await self._redis.mget([item_key(item_id) for item_id in item_ids]) if item_ids else []
            response_ids = list(dict.fromkeys(holder.decode() for holder in holders if holder is not None))
            records = await self._redis.mget([response_key(i) for i in response_ids]) if response_ids else []
        found: dict[str, dict[str, Any]] = {}
        for record in records:
            if record is not None:  # None: deleted or expired meanwhile
                found |= StoredResponse.from_json(record).find_items(item_ids)
        return found

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
        record = stored.to_json()
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES, run_key(run.id), RUNS]
        ttl_ms = self.limits.ttl_seconds * 1000
        arguments = [response_key(""), run.id, record, ttl_ms, self.limits.max_count, self.limits.max_bytes]
        item_ids = json.dumps(stored.item_ids())
        async with self._reachable():
            return bool(await self._finish_run(keys=keys, args=[*arguments, EXPIRED_PER_WRITE, item_ids, run.owner]))

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
        encoded = encode_items(items)
        if len(encoded) > self.conversation_limits.max_items_each or size_of(encoded) > self._max_bytes_each():
            raise ConversationFull()
        limits = self.conversation_limits
        arguments = [CONVERSATION, conversation.id, conversation.to_json(), limits.ttl_seconds * 1000]
        arguments += [limits.max_count, limits.max_bytes, EXPIRED_PER_WRITE, *flatten(encoded)]
        async with self._reachable():
            await self._create_conversation(keys=CONVERSATION_INDEX, args=arguments)

    async def get_conversation(self, conversation_id: str) -> StoredConversation | None:
        async with self._reachable():
            record = await self._redis.get(f"{CONVERSATION}:{conversation_id}")
        return StoredConversation.from_json(record) if record is not None else None

    async def update_conversation(self, conversation_id: str, metadata: dict[str, str]) -> StoredConversation | None:
        current = await self.get_conversation(conversation_id)
        if current is None:
            return None
        updated = replace(current, metadata=metadata)  # id and created_at never change: no race to lose
        arguments = [CONVERSATION, conversation_id, updated.to_json(), self.conversation_limits.ttl_seconds * 1000]
        async with self._reachable():
            found = await self._update_conversation(keys=CONVERSATION_INDEX, args=arguments)
        return updated if found else None

    async def delete_conversation(self, conversation_id: str) -> bool:
        async with self._reachable():
            return bool(await self._delete_conversation(keys=CONVERSATION_INDEX, args=[CONVERSATION, conversation_id]))

    async def add_conversation_items(self, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        encoded = encode_items(items)
        limits = self.conversation_limits
        arguments = [CONVERSATION, conversation_id, limits.ttl_seconds * 1000, limits.max_count, limits.max_bytes]
        arguments += [EXPIRED_PER_WRITE, limits.max_items_each, self._max_bytes_each(), *flatten(encoded)]
        async with self._reachable():
            outcome = await self._add_conversation_items(keys=CONVERSATION_INDEX, args=arguments)
        if isinstance(outcome, bytes):
            raise DuplicateItem(outcome.decode())
        if outcome == -1:
            raise ConversationFull()
        return outcome == 1

    async def list_conversation_items(
        self, conversation_id: str, *, order: Order, after: str | None, limit: int | None
    ) -> list[dict[str, Any]] | None:
        arguments = [CONVERSATION, conversation_id, order, after or "", -1 if limit is None else limit]
        async with self._reachable():
            records = await self._list_conversation_items(keys=CONVERSATION_INDEX, args=arguments)
        return None if records is None else decode_items(records.decode())

    async def get_conversation_item(self, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        async with self._reachable():  # the items expire, and go, with the conversation
            record = await self._redis.hget(f"{CONVERSATION}_items:{conversation_id}", item_id)
        return json.loads(record) if record is not None else None

    async def find_conversation_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        async with self._reachable():
            owners = await self._redis.hmget(CONVERSATION_INDEX[3], item_ids) if item_ids else []
            owned = [(item_id, owner.decode()) for item_id, owner in zip(item_ids, owners, strict=True) if owner]
            async with self._redis.pipeline(transaction=False) as pipeline:
                for item_id, owner in owned:
                    pipeline.hget(f"{CONVERSATION}_items:{owner}", item_id)
                records = await pipeline.execute()
        found = zip([item_id for item_id, _ in owned], records, strict=True)
        return {item_id: json.loads(record) for item_id, record in found if record is not None}  # None: gone meanwhile

    async def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool:
        arguments = [CONVERSATION, conversation_id, item_id, self.conversation_limits.ttl_seconds * 1000]
        async with self._reachable():
            return bool(await self._delete_conversation_item(keys=CONVERSATION_INDEX, args=arguments))

    def _max_bytes_each(self) -> int:
        return min(self.conversation_limits.max_bytes_each, self.conversation_limits.max_bytes)

    # --- upkeep ---

    async def ping(self) -> None:
        async with self._reachable():
            await self._redis.ping()

    async def prune(self) -> int:
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES]
        conversations_ttl_ms = self.conversation_limits.ttl_seconds * 1000
        async with self._reachable():
            responses = int(await self._prune(keys=keys, args=[response_key(""), self.limits.ttl_seconds * 1000]))
            arguments = [CONVERSATION, conversations_ttl_ms]
            return responses + int(await self._prune_conversations(keys=CONVERSATION_INDEX, args=arguments))

    async def close(self) -> None:
        await self._redis.aclose()
        await self._blocking.aclose()


def flatten(encoded: list[tuple[str, str]]) -> list[str]:
    """(id, JSON) pairs as the scripts take them: id, JSON, id, JSON..."""
    return [part for pair in encoded for part in pair]

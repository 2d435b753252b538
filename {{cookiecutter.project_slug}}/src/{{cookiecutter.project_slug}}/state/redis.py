"""The state store for replicas: Redis (or Valkey, which speaks the same protocol), through redis-py's asyncio client.

Keys, all under the prefix `state:` (give each service its own database, `redis://host/1`, to share a server):

    state:response:<id>         a stored response with its input items (JSON), expiring with RESPONSES_TTL_SECONDS
    state:responses             sorted set of response ids by the time they were saved (the oldest go first)
    state:response_sizes        hash: response id -> bytes;  state:response_bytes: their sum
    state:file:<id>             an uploaded file's metadata (JSON)
    state:files, state:files:<purpose>   sorted sets of file ids (all scores 0, so ordered by id = by upload time)

Each write is one Lua script or one MULTI/EXEC, so it happens whole or not at all; the scripts take the time
from Redis, so replicas with skewed clocks agree. Lost connections are re-made at the next command, so the
service recovers by itself once Redis is back. (Not for Redis Cluster: the scripts touch keys they name.)
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
import redis.exceptions

from .store import FileOrder, ResponseLimits, StoredFile, StoredResponse, StoreUnavailable

logger = logging.getLogger(__name__)

PREFIX = "state:"
RESPONSES = PREFIX + "responses"
RESPONSE_SIZES = PREFIX + "response_sizes"
RESPONSE_BYTES = PREFIX + "response_bytes"
FILES = PREFIX + "files"
CONNECT_TIMEOUT = 2.0  # seconds: a request that needs an unreachable store gets its 503 this soon
COMMAND_TIMEOUT = 5.0
EXPIRED_PER_WRITE = 100  # expired responses cleaned from the indexes by one save, so no save takes long

# A response's key goes, and its entries in the indexes with it.
FORGET = """
local function forget(id)
    redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[1], id)
    local size = redis.call('HGET', KEYS[2], id)
    if size then
        redis.call('DECRBY', KEYS[3], size)
        redis.call('HDEL', KEYS[2], id)
    end
end
"""
# KEYS: responses, sizes, bytes. ARGV: key prefix, id, record, ttl ms, max count, max bytes, expired per write.
SAVE_RESPONSE = (
    FORGET
    + """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, ARGV[7])
for _, id in ipairs(expired) do forget(id) end
forget(ARGV[2])  -- saved again: counted once
redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], #ARGV[3])
local bytes = redis.call('INCRBY', KEYS[3], #ARGV[3])
while redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[5]) or bytes > tonumber(ARGV[6]) do
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if not oldest then break end
    forget(oldest)
    bytes = tonumber(redis.call('GET', KEYS[3]))
end
"""
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


def response_key(response_id: str) -> str:
    return f"{PREFIX}response:{response_id}"


def file_key(file_id: str) -> str:
    return f"{PREFIX}file:{file_id}"


class RedisStore:
    engine = "redis"

    def __init__(self, url: str, limits: ResponseLimits) -> None:
        self.limits = limits
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT, health_check_interval=30
        )
        self._save_response = self._redis.register_script(SAVE_RESPONSE)
        self._delete_response = self._redis.register_script(DELETE_RESPONSE)
        self._delete_file = self._redis.register_script(DELETE_FILE)
        self._prune = self._redis.register_script(PRUNE)

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
        async with self._reachable():
            await self._save_response(keys=keys, args=[*arguments, EXPIRED_PER_WRITE])
        return True

    async def get_response(self, response_id: str) -> StoredResponse | None:
        async with self._reachable():
            record = await self._redis.get(response_key(response_id))
        return StoredResponse.from_json(record) if record is not None else None

    async def delete_response(self, response_id: str) -> bool:
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES]
        async with self._reachable():
            return bool(await self._delete_response(keys=keys, args=[response_key(""), response_id]))

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

    async def list_files(
        self, *, purpose: str | None, order: FileOrder, after: str | None, limit: int
    ) -> list[StoredFile]:
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

    # --- upkeep ---

    async def ping(self) -> None:
        async with self._reachable():
            await self._redis.ping()

    async def prune(self) -> int:
        keys = [RESPONSES, RESPONSE_SIZES, RESPONSE_BYTES]
        async with self._reachable():
            return int(await self._prune(keys=keys, args=[response_key(""), self.limits.ttl_seconds * 1000]))

    async def close(self) -> None:
        await self._redis.aclose()

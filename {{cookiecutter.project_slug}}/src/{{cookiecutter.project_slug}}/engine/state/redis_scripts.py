"""The Redis store's key layout and its Lua scripts, apart from the Python that calls them (`redis.py`).

Keys, all under the prefix `state:` (give each service its own database, `redis://host/1`, to share a server):

    state:items                 hash: item key (an integer, from the counter state:next_item) -> the item (JSON).
                                Each distinct item is stored once (`ItemRecord`), whoever holds it: a chain of
                                turns, or a client resending its history, writes only what is new
    state:item_digests          hash: digest of an item's JSON -> its key (an item sent again is found by content)
    state:item_ids              hash: item id -> the key of the newest item with that id (`item_reference`); it
                                goes with that item, if it still names it
    state:item_meta             hash: item key -> its digest (32 hex) and id, to drop those two entries with it
    state:item_holds            hash: item key -> how many stored responses hold it (each once, however often it
                                lists it);  state:item_conversation_holds: how many conversation positions do.
                                An item goes, with its entries, in the write that drops its last hold
    state:item_until            hash: item key -> the latest expiry (ms, Redis's clock) of a response holding it:
                                `get_items` finds an item while a response holds it and until then, so an expired
                                response's items are not found even before its holds are released
    state:response:<id>         hash: record (the response, its output left out), input and output (its items' keys
                                in order, comma-joined), expiring with RESPONSES_TTL_SECONDS
    state:response_holds        hash: response id -> the keys it holds itself, each once: its input after the
                                history it continued, and its output. It does not expire: an expired response's
                                holds are released when it is cleaned up, and the entry goes with it
    state:response_bases        hash: response id -> the response it continued (`previous_response_id`), whose
                                holds cover the rest of its history: a turn holds what it adds, not the chain
    state:response_successors   hash: response id -> how many later turns hold it as their base. A response that
                                goes (deleted, expired, pushed out) while it has some keeps its holds, unseen,
                                until the last of them goes; then it lets go of its items, and of its own base
    state:responses             sorted set of response ids by the time they were saved (the oldest go first)
    state:response_sizes        hash: response id -> what its save added (its record, and the items it was first
                                to store);  state:response_bytes: their sum
    state:file:<id>             an uploaded file's metadata (JSON)
    state:files, state:files:<purpose>   sorted sets of file ids (all scores 0, so ordered by id = by upload time)
    state:run:<id>              hash: a background run's record (JSON), owner, lease_until (ms), cancel (0/1)
    state:runs                  sorted set of running ids by lease_until: the lapsed ones are found at its start
    state:events:<id>           a response's event log: a stream whose entry ids are <sequence number + 1>-0,
                                expiring with the response
    state:conversation:<id>     a conversation's record (JSON), expiring CONVERSATIONS_TTL_SECONDS after its last
                                change; its other keys are read only while it is there
    state:conversation_items:<id>   hash: item id -> item key (the items themselves are in state:items)
    state:conversation_order:<id>   sorted set of its item ids by position (the order they were added in)
                                    (these two do not expire: they go, with the items' holds, once an expired
                                    conversation is cleaned up)
    state:conversations         sorted set of conversation ids by their last change (the least recent go first)
    state:conversation_sizes    hash: conversation id -> bytes of its items' JSON;  state:conversation_bytes: the sum
    state:conversation_item_owners  hash: item id -> the conversation that last added an item of that id
    state:version               the layout's version (2: items stored once); state:upgrading: the lock a replica
                                holds while it converts a store written by 0.4.0 (see `RedisStore._upgrade`)

Each write is one of the scripts below, so it happens whole or not at all; the scripts take the time from Redis,
so replicas with skewed clocks agree.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

PREFIX = "state:"
RESPONSE = PREFIX + "response:"  # + id
RESPONSES = PREFIX + "responses"
RESPONSE_SIZES = PREFIX + "response_sizes"
RESPONSE_BYTES = PREFIX + "response_bytes"
RESPONSE_HOLDS = PREFIX + "response_holds"
RESPONSE_BASES = PREFIX + "response_bases"
RESPONSE_SUCCESSORS = PREFIX + "response_successors"
ITEMS = PREFIX + "items"
ITEM_NEXT = PREFIX + "next_item"
ITEM_DIGESTS = PREFIX + "item_digests"
ITEM_IDS = PREFIX + "item_ids"
ITEM_META = PREFIX + "item_meta"
ITEM_HOLDS = PREFIX + "item_holds"
ITEM_CONVERSATION_HOLDS = PREFIX + "item_conversation_holds"
ITEM_UNTIL = PREFIX + "item_until"
EVENTS = PREFIX + "events:"  # + id
FILES = PREFIX + "files"
RUN = PREFIX + "run:"  # + id
RUNS = PREFIX + "runs"
CONVERSATION = PREFIX + "conversation"  # + ":<id>", "_items:<id>", "_order:<id>"
CONVERSATIONS = PREFIX + "conversations"
CONVERSATION_SIZES = PREFIX + "conversation_sizes"
CONVERSATION_BYTES = PREFIX + "conversation_bytes"
CONVERSATION_ITEM_OWNERS = PREFIX + "conversation_item_owners"
VERSION = PREFIX + "version"
UPGRADING = PREFIX + "upgrading"
LAYOUT_VERSION = b"2"  # 0.4.0 had none: each response kept its whole conversation, each conversation its items' JSON
# What 0.4.0 wrote besides, which the upgrade removes: item id -> the response holding it; response id -> its ids.
ITEM_0_4 = PREFIX + "item:"
RESPONSE_ITEMS_0_4 = PREFIX + "response_items"

CONNECT_TIMEOUT = 2.0  # seconds: a request that needs an unreachable store gets its 503 this soon
COMMAND_TIMEOUT = 5.0
EXPIRED_PER_WRITE = 100  # expired responses cleaned from the indexes by one save, so no save takes long
EVENTS_PER_READ = 1000
UPGRADE_LOCK_MS = 30_000  # the converting replica renews it as it goes; if it dies, another takes over after this
UPGRADE_WAIT = 10.0  # seconds a request waits for another replica's upgrade before its 503
UPGRADE_BATCH = 100  # records converted between two renewals of the lock

# Every script starts with the names of the keys it may touch (computed, not passed: Redis Cluster is out anyway).
NAMES = f"""
local RESPONSE, RESPONSES, RESPONSE_SIZES = '{RESPONSE}', '{RESPONSES}', '{RESPONSE_SIZES}'
local RESPONSE_BYTES, RESPONSE_HOLDS, EVENTS, RUN, RUNS = '{RESPONSE_BYTES}', '{RESPONSE_HOLDS}', '{EVENTS}', '{RUN}', '{RUNS}'
local RESPONSE_BASES, RESPONSE_SUCCESSORS = '{RESPONSE_BASES}', '{RESPONSE_SUCCESSORS}'
local ITEMS, ITEM_NEXT, ITEM_DIGESTS, ITEM_IDS = '{ITEMS}', '{ITEM_NEXT}', '{ITEM_DIGESTS}', '{ITEM_IDS}'
local ITEM_META, ITEM_HOLDS, ITEM_UNTIL = '{ITEM_META}', '{ITEM_HOLDS}', '{ITEM_UNTIL}'
local ITEM_CONVERSATION_HOLDS = '{ITEM_CONVERSATION_HOLDS}'
local CONVERSATION, CONVERSATIONS, CONVERSATION_SIZES = '{CONVERSATION}', '{CONVERSATIONS}', '{CONVERSATION_SIZES}'
local CONVERSATION_BYTES, CONVERSATION_ITEM_OWNERS = '{CONVERSATION_BYTES}', '{CONVERSATION_ITEM_OWNERS}'
local ITEM_0_4, RESPONSE_ITEMS_0_4 = '{ITEM_0_4}', '{RESPONSE_ITEMS_0_4}'
"""
# Items stored once, and their holds. An item key is a decimal string throughout; key lists are comma-joined.
ITEM_FUNCTIONS = """
local function now_ms()
    local time = redis.call('TIME')
    return time[1] * 1000 + math.floor(time[2] / 1000)
end
-- The members of a sorted set by time (ms) older than `ttl`, at most `count` (-1: all), each forgotten; how many.
local function forget_expired(index, forget, now, ttl, count)
    local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now - ttl, 'LIMIT', 0, count)
    for _, id in ipairs(expired) do forget(id) end
    return #expired
end
local function split(joined)
    local keys = {}
    if joined then
        for key in string.gmatch(joined, '%d+') do keys[#keys + 1] = key end
    end
    return keys
end
local function distinct(keys)
    local seen, once = {}, {}
    for _, key in ipairs(keys) do
        if not seen[key] then
            seen[key] = true
            once[#once + 1] = key
        end
    end
    return once
end
local function hmget(hash, fields)  -- any number of fields: unpack takes a few thousand values at most
    local values = {}
    for start = 1, #fields, 1000 do
        local part = redis.call('HMGET', hash, unpack(fields, start, math.min(start + 999, #fields)))
        for i = 1, #part do values[#values + 1] = part[i] end
    end
    return values
end
local function joined_items(keys)  -- the items' JSON in order, joined by commas: one reply, parsed in one go
    local records = {}
    for _, record in ipairs(hmget(ITEMS, keys)) do
        if record then records[#records + 1] = record end
    end
    return table.concat(records, ',')
end
local function store_item(digest, item_id, record)  -- its key, and the bytes written (0: it was there)
    local key = redis.call('HGET', ITEM_DIGESTS, digest)
    if key then
        if item_id ~= '' then redis.call('HSETNX', ITEM_IDS, item_id, key) end
        return key, 0
    end
    key = tostring(redis.call('INCR', ITEM_NEXT))
    redis.call('HSET', ITEMS, key, record)
    redis.call('HSET', ITEM_META, key, digest .. item_id)
    redis.call('HSET', ITEM_DIGESTS, digest, key)
    if item_id ~= '' then redis.call('HSET', ITEM_IDS, item_id, key) end  -- the newest of an id answers
    return key, #record
end
local function new_bytes(first, last, step)  -- what storing the items of ARGV[first..last] would write
    local seen, bytes = {}, 0
    for i = first, last, step do
        if not seen[ARGV[i]] and redis.call('HEXISTS', ITEM_DIGESTS, ARGV[i]) == 0 then
            bytes = bytes + #ARGV[i + 2]
        end
        seen[ARGV[i]] = true
    end
    return bytes
end
local function hold(holds, keys)
    for _, key in ipairs(keys) do redis.call('HINCRBY', holds, key, 1) end
end
local function release(holds, keys)  -- one hold less on each; an item no longer held goes, with its entries
    for _, key in ipairs(keys) do
        if redis.call('HINCRBY', holds, key, -1) <= 0 then
            redis.call('HDEL', holds, key)
            if redis.call('HEXISTS', ITEM_HOLDS, key) == 0 and redis.call('HEXISTS', ITEM_CONVERSATION_HOLDS, key) == 0 then
                local meta = redis.call('HGET', ITEM_META, key)
                if meta then
                    local digest, item_id = string.sub(meta, 1, 32), string.sub(meta, 33)
                    if redis.call('HGET', ITEM_DIGESTS, digest) == key then redis.call('HDEL', ITEM_DIGESTS, digest) end
                    if item_id ~= '' and redis.call('HGET', ITEM_IDS, item_id) == key then
                        redis.call('HDEL', ITEM_IDS, item_id)
                    end
                end
                redis.call('HDEL', ITEMS, key)
                redis.call('HDEL', ITEM_META, key)
                redis.call('HDEL', ITEM_UNTIL, key)
            end
        end
    end
end
local function conversation_keys_of(id)
    return CONVERSATION .. ':' .. id, CONVERSATION .. '_items:' .. id, CONVERSATION .. '_order:' .. id
end
local function history_of_conversation(id, length, ids_sha1)  -- its first `length` item keys, if its first ids
    local record, items, order = conversation_keys_of(id)        -- are those the caller saw (by their SHA-1)
    if redis.call('EXISTS', record) == 0 then return nil end
    local ids = redis.call('ZRANGE', order, 0, length - 1)
    if #ids ~= length or redis.sha1hex(table.concat(ids, '\\n')) ~= ids_sha1 then return nil end
    local keys = hmget(items, ids)
    for i = 1, #keys do
        if not keys[i] then return nil end
    end
    return keys
end
"""
# Stored responses: each lists its items' keys, holds those it added, and holds its base for the rest.
RESPONSE_FUNCTIONS = """
-- A response that has gone (not in RESPONSES) lets go of its items once no later turn holds it as their base;
-- then its base has one successor less, and may go the same way.
local function let_go(id)
    while id and not redis.call('ZSCORE', RESPONSES, id) and not redis.call('HGET', RESPONSE_SUCCESSORS, id) do
        local held = redis.call('HGET', RESPONSE_HOLDS, id)
        if held then
            redis.call('HDEL', RESPONSE_HOLDS, id)
            release(ITEM_HOLDS, split(held))
        end
        local base = redis.call('HGET', RESPONSE_BASES, id)
        redis.call('HDEL', RESPONSE_BASES, id)
        id = nil
        if base and redis.call('HINCRBY', RESPONSE_SUCCESSORS, base, -1) <= 0 then
            redis.call('HDEL', RESPONSE_SUCCESSORS, base)
            id = base
        end
    end
end
local function forget_response(id, keep_log)
    redis.call('DEL', RESPONSE .. id)
    if not keep_log then redis.call('DEL', EVENTS .. id) end
    redis.call('ZREM', RESPONSES, id)
    local size = redis.call('HGET', RESPONSE_SIZES, id)
    if size then
        redis.call('DECRBY', RESPONSE_BYTES, size)
        redis.call('HDEL', RESPONSE_SIZES, id)
    end
    let_go(id)
end
local function forget_expired_responses(now, ttl, count)
    return forget_expired(RESPONSES, forget_response, now, ttl, count)
end
-- A response's record, with the keys of its items in order; its size. It holds its input after the first
-- `own_from` (covered by `base`, the response it continued, which it holds instead) and its output, each once,
-- until `now + ttl`. Saved again while its earlier self is still a base, it holds its whole history itself.
local function keep_response(id, record, input, output, written, now, ttl, base, own_from)
    local lingering = redis.call('HGET', RESPONSE_HOLDS, id)
    if lingering then base, own_from = nil, 0 end
    local keys = {}
    for i = own_from + 1, #input do keys[#keys + 1] = input[i] end
    for _, key in ipairs(output) do keys[#keys + 1] = key end
    keys = distinct(keys)
    hold(ITEM_HOLDS, keys)
    local expires = now + ttl
    for _, key in ipairs(keys) do
        if tonumber(redis.call('HGET', ITEM_UNTIL, key) or 0) < expires then redis.call('HSET', ITEM_UNTIL, key, expires) end
    end
    redis.call('HSET', RESPONSE .. id, 'record', record, 'input', table.concat(input, ','), 'output', table.concat(output, ','))
    redis.call('PEXPIRE', RESPONSE .. id, ttl)
    local held = table.concat(keys, ',')
    redis.call('HSET', RESPONSE_HOLDS, id, lingering and (lingering .. ',' .. held) or held)
    if base then
        redis.call('HSET', RESPONSE_BASES, id, base)
        redis.call('HINCRBY', RESPONSE_SUCCESSORS, base, 1)
    end
    local size = #record + written
    redis.call('HSET', RESPONSE_SIZES, id, size)
    redis.call('INCRBY', RESPONSE_BYTES, size)
    return size
end
"""
# ARGV: id, record, ttl ms, max count, max bytes, expired per write, history kind ('', 'response' or
# 'conversation'), its source id, its length, the SHA-1 of a conversation's first item ids joined by newlines, the
# run's owner ('' when saving no run), the number of input items sent, then (digest, item id or '', JSON) of each
# input item after the history, then of each output item.
# Returns 1 when saved, 0 when larger than the byte bound (not saved; a run is dropped all the same), -1 when the
# history is not there as told (nothing written: send every item), -2 when the run is not the owner's.
SAVE = (
    NAMES
    + ITEM_FUNCTIONS
    + RESPONSE_FUNCTIONS
    + """
local id, record, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_count, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local kind, source, length, owner = ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[11]
local first_output = 13 + 3 * tonumber(ARGV[12])
if owner ~= '' and redis.call('HGET', RUN .. id, 'owner') ~= owner then return -2 end
local now = now_ms()
forget_expired_responses(now, ttl, ARGV[6])  -- first, so that a history is never one about to go
local input = {}
if kind == 'response' then  -- its own earlier self is no history: it goes before its items are held again
    local lists = redis.call('HMGET', RESPONSE .. source, 'input', 'output')
    if source == id or not lists[1] then return -1 end
    input = split(lists[1])
    for _, key in ipairs(split(lists[2])) do input[#input + 1] = key end
    if #input ~= length then return -1 end
elseif kind == 'conversation' and length > 0 then
    input = history_of_conversation(source, length, ARGV[10])
    if not input then return -1 end
end
local too_large = #record + new_bytes(13, #ARGV, 3) > max_bytes
if owner ~= '' then
    redis.call('DEL', RUN .. id)
    redis.call('ZREM', RUNS, id)
end
if too_large then return 0 end
forget_response(id, true)  -- saved again: counted once (a background response's event log stays with it)
local written, output = 0, {}
for i = 13, #ARGV, 3 do
    local key, bytes = store_item(ARGV[i], ARGV[i + 1], ARGV[i + 2])
    if i < first_output then input[#input + 1] = key else output[#output + 1] = key end
    written = written + bytes
end
local base = kind == 'response' and source or nil
keep_response(id, record, input, output, written, now, ttl, base, base and length or 0)
redis.call('ZADD', RESPONSES, now, id)
local bytes = tonumber(redis.call('GET', RESPONSE_BYTES))
while redis.call('ZCARD', RESPONSES) > max_count or bytes > max_bytes do
    local oldest = redis.call('ZRANGE', RESPONSES, 0, 0)[1]
    if not oldest then break end
    forget_response(oldest)
    bytes = tonumber(redis.call('GET', RESPONSE_BYTES))
end
return 1
"""
)
# ARGV: id. Returns the record and its input and output items (JSON joined by commas), or nil.
GET_RESPONSE = (
    NAMES
    + ITEM_FUNCTIONS
    + """
local fields = redis.call('HMGET', RESPONSE .. ARGV[1], 'record', 'input', 'output')
if not fields[1] then return false end
return {fields[1], joined_items(split(fields[2])), joined_items(split(fields[3]))}
"""
)
# ARGV: item ids. Returns id, JSON, id, JSON... of those a response holds that has not expired.
GET_ITEMS = (
    NAMES
    + ITEM_FUNCTIONS
    + """
local now, found = now_ms(), {}
local keys = hmget(ITEM_IDS, ARGV)
for i, key in ipairs(keys) do
    if key and redis.call('HEXISTS', ITEM_HOLDS, key) == 1 and tonumber(redis.call('HGET', ITEM_UNTIL, key) or 0) > now then
        local record = redis.call('HGET', ITEMS, key)
        if record then
            found[#found + 1] = ARGV[i]
            found[#found + 1] = record
        end
    end
end
return found
"""
)
# ARGV: id. Returns 1 when the response was there.
DELETE_RESPONSE = (
    NAMES
    + ITEM_FUNCTIONS
    + RESPONSE_FUNCTIONS
    + """
local existed = redis.call('EXISTS', RESPONSE .. ARGV[1])
forget_response(ARGV[1])
return existed
"""
)
# ARGV: ttl ms. Returns how many expired responses were dropped.
PRUNE = NAMES + ITEM_FUNCTIONS + RESPONSE_FUNCTIONS + "return forget_expired_responses(now_ms(), tonumber(ARGV[1]), -1)"
# KEYS: the file's key, files. ARGV: id, prefix of the per-purpose sets. Returns 1 when the file was there.
DELETE_FILE = """
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. cjson.decode(record)['purpose'], ARGV[1])
return 1
"""

# Conversations: their positions name item keys, each position holding its item.
CONVERSATION_FUNCTIONS = """
local function disown(id, item_id)
    if redis.call('HGET', CONVERSATION_ITEM_OWNERS, item_id) == id then redis.call('HDEL', CONVERSATION_ITEM_OWNERS, item_id) end
end
local function forget_conversation(id)
    local record, items, order = conversation_keys_of(id)
    local held, keys = redis.call('HGETALL', items), {}
    for i = 1, #held, 2 do
        disown(id, held[i])
        keys[#keys + 1] = held[i + 1]
    end
    release(ITEM_CONVERSATION_HOLDS, keys)
    redis.call('DEL', record, items, order)
    redis.call('ZREM', CONVERSATIONS, id)
    local size = redis.call('HGET', CONVERSATION_SIZES, id)
    if size then
        redis.call('DECRBY', CONVERSATION_BYTES, size)
        redis.call('HDEL', CONVERSATION_SIZES, id)
    end
end
local function forget_expired_conversations(now, ttl, count)
    return forget_expired(CONVERSATIONS, forget_conversation, now, ttl, count)
end
local function touch(id, now, ttl)  -- changed now: it expires `ttl` ms from now
    redis.call('PEXPIRE', CONVERSATION .. ':' .. id, ttl)
    redis.call('ZADD', CONVERSATIONS, now, id)
end
local function keep_within(max_count, max_bytes)
    local bytes = tonumber(redis.call('GET', CONVERSATION_BYTES) or 0)
    while redis.call('ZCARD', CONVERSATIONS) > max_count or bytes > max_bytes do
        local oldest = redis.call('ZRANGE', CONVERSATIONS, 0, 0)[1]
        if not oldest then break end
        forget_conversation(oldest)
        bytes = tonumber(redis.call('GET', CONVERSATION_BYTES) or 0)
    end
end
local function append(id, first)  -- the (item id, digest, JSON) triples of ARGV from `first` on, after its last item
    local _, items, order = conversation_keys_of(id)
    local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
    local position = last[2] and tonumber(last[2]) + 1 or 0
    local bytes = 0
    for i = first, #ARGV, 3 do
        local key = store_item(ARGV[i + 1], ARGV[i], ARGV[i + 2])
        redis.call('HINCRBY', ITEM_CONVERSATION_HOLDS, key, 1)
        redis.call('HSET', items, ARGV[i], key)
        redis.call('ZADD', order, position, ARGV[i])
        redis.call('HSET', CONVERSATION_ITEM_OWNERS, ARGV[i], id)
        position = position + 1
        bytes = bytes + #ARGV[i + 2]
    end
    redis.call('HINCRBY', CONVERSATION_SIZES, id, bytes)
    redis.call('INCRBY', CONVERSATION_BYTES, bytes)
end
local function item_of(id, item_id)  -- the JSON of a live conversation's item, or nil
    local record, items = conversation_keys_of(id)
    if redis.call('EXISTS', record) == 0 then return nil end
    local key = redis.call('HGET', items, item_id)
    return key and redis.call('HGET', ITEMS, key) or nil
end
"""
CONVERSATION_SCRIPT = NAMES + ITEM_FUNCTIONS + CONVERSATION_FUNCTIONS
# ARGV: id, record, ttl ms, max count, max bytes, expired per write, then (item id, digest, JSON) triples.
CREATE_CONVERSATION = (
    CONVERSATION_SCRIPT
    + """
local id, now, ttl = ARGV[1], now_ms(), tonumber(ARGV[3])
forget_expired_conversations(now, ttl, ARGV[6])
forget_conversation(id)  -- created again (only a migration does that): replaced
redis.call('SET', CONVERSATION .. ':' .. id, ARGV[2])
append(id, 7)
touch(id, now, ttl)
keep_within(tonumber(ARGV[4]), tonumber(ARGV[5]))
"""
)
# ARGV: id, ttl ms, max count, max bytes, expired per write, max items each, max bytes each, then triples.
# Returns 1 when added, 0 when there is no such conversation, -1 when it is full, or the id of an item it has.
ADD_CONVERSATION_ITEMS = (
    CONVERSATION_SCRIPT
    + """
local id, now, ttl = ARGV[1], now_ms(), tonumber(ARGV[2])
forget_expired_conversations(now, ttl, ARGV[5])
local record, items = conversation_keys_of(id)
if redis.call('EXISTS', record) == 0 then return 0 end
local bytes = 0
for i = 8, #ARGV, 3 do
    if redis.call('HEXISTS', items, ARGV[i]) == 1 then return ARGV[i] end
    bytes = bytes + #ARGV[i + 2]
end
local count = redis.call('HLEN', items) + (#ARGV - 7) / 3
if count > tonumber(ARGV[6]) or tonumber(redis.call('HGET', CONVERSATION_SIZES, id) or 0) + bytes > tonumber(ARGV[7]) then
    return -1
end
append(id, 8)
touch(id, now, ttl)
keep_within(tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
"""
)
# ARGV: id, record, ttl ms. Returns 1 when the conversation was there (and now has this record).
UPDATE_CONVERSATION = (
    CONVERSATION_SCRIPT
    + """
if not redis.call('SET', CONVERSATION .. ':' .. ARGV[1], ARGV[2], 'XX') then return 0 end
touch(ARGV[1], now_ms(), tonumber(ARGV[3]))
return 1
"""
)
# ARGV: id. Returns 1 when the conversation was there.
DELETE_CONVERSATION = (
    CONVERSATION_SCRIPT
    + """
local existed = redis.call('EXISTS', CONVERSATION .. ':' .. ARGV[1])
forget_conversation(ARGV[1])
return existed
"""
)
# ARGV: id, item id, ttl ms. Returns 1 when the item was there.
DELETE_CONVERSATION_ITEM = (
    CONVERSATION_SCRIPT
    + """
local id, item_id = ARGV[1], ARGV[2]
local record, items, order = conversation_keys_of(id)
local key = redis.call('HGET', items, item_id)
if redis.call('EXISTS', record) == 0 or not key then return 0 end
local bytes = redis.call('HSTRLEN', ITEMS, key)
redis.call('HDEL', items, item_id)
redis.call('ZREM', order, item_id)
disown(id, item_id)
release(ITEM_CONVERSATION_HOLDS, {key})
redis.call('HINCRBY', CONVERSATION_SIZES, id, -bytes)
redis.call('DECRBY', CONVERSATION_BYTES, bytes)
touch(id, now_ms(), tonumber(ARGV[3]))
return 1
"""
)
# ARGV: id, order (asc or desc), after ('' for none), limit (-1 for all). Returns the items' JSON joined by
# commas, or nil when there is no such conversation.
LIST_CONVERSATION_ITEMS = (
    CONVERSATION_SCRIPT
    + """
local record, items, order = conversation_keys_of(ARGV[1])
if redis.call('EXISTS', record) == 0 then return false end
local ascending, limit = ARGV[2] == 'asc', tonumber(ARGV[4])
local ids
if ARGV[3] ~= '' then
    local position = redis.call('ZSCORE', order, ARGV[3])
    if not position then return '' end
    if ascending then
        ids = redis.call('ZRANGEBYSCORE', order, '(' .. position, '+inf', 'LIMIT', 0, limit)
    else
        ids = redis.call('ZREVRANGEBYSCORE', order, '(' .. position, '-inf', 'LIMIT', 0, limit)
    end
else
    ids = redis.call(ascending and 'ZRANGE' or 'ZREVRANGE', order, 0, limit < 0 and -1 or limit - 1)
end
local keys = {}
for _, key in ipairs(hmget(items, ids)) do
    if key then keys[#keys + 1] = key end
end
return joined_items(keys)
"""
)
# ARGV: conversation id ('' for whichever last added each), then item ids. Returns id, JSON, id, JSON...
FIND_CONVERSATION_ITEMS = (
    CONVERSATION_SCRIPT
    + """
local found = {}
for i = 2, #ARGV do
    local owner = ARGV[1]
    if owner == '' then owner = redis.call('HGET', CONVERSATION_ITEM_OWNERS, ARGV[i]) end
    local record = owner and item_of(owner, ARGV[i])
    if record then
        found[#found + 1] = ARGV[i]
        found[#found + 1] = record
    end
end
return found
"""
)
# ARGV: ttl ms. Returns how many expired conversations were dropped.
PRUNE_CONVERSATIONS = CONVERSATION_SCRIPT + "return forget_expired_conversations(now_ms(), tonumber(ARGV[1]), -1)"

# --- the upgrade of a store written by 0.4.0 ---

# ARGV: id, its 0.4.0 record (a string: the response with its output, and input_items), the new record, the ttl
# (ms) to give it if it had none, the number of input items, the number of output items, then (digest, item id,
# JSON) of each input then output item, then the ids 0.4.0 indexed for it. Returns 1 when converted, 0 when the
# old record is no longer there (converted already, or gone).
UPGRADE_RESPONSE = (
    NAMES
    + ITEM_FUNCTIONS
    + RESPONSE_FUNCTIONS
    + """
local id = ARGV[1]
local old = RESPONSE .. id
if redis.call('TYPE', old).ok ~= 'string' or redis.call('GET', old) ~= ARGV[2] then return 0 end
local ttl = redis.call('PTTL', old)
if ttl < 0 then ttl = tonumber(ARGV[4]) end
redis.call('DEL', old)
local first_output, first_id = 7 + 3 * tonumber(ARGV[5]), 7 + 3 * (tonumber(ARGV[5]) + tonumber(ARGV[6]))
local input, output, written = {}, {}, 0
for i = 7, first_id - 1, 3 do
    local key, bytes = store_item(ARGV[i], ARGV[i + 1], ARGV[i + 2])
    if i < first_output then input[#input + 1] = key else output[#output + 1] = key end
    written = written + bytes
end
local size = redis.call('HGET', RESPONSE_SIZES, id)
if size then
    redis.call('DECRBY', RESPONSE_BYTES, size)
    redis.call('HDEL', RESPONSE_SIZES, id)
end
keep_response(id, ARGV[3], input, output, written, now_ms(), ttl, nil, 0)
redis.call('ZADD', RESPONSES, 'NX', now_ms(), id)  -- it keeps its place in the order of saves
for i = first_id, #ARGV do
    if redis.call('GET', ITEM_0_4 .. ARGV[i]) == id then redis.call('DEL', ITEM_0_4 .. ARGV[i]) end
end
redis.call('HDEL', RESPONSE_ITEMS_0_4, id)
return 1
"""
)
# ARGV: conversation id, then (item id, its 0.4.0 JSON, digest, JSON) of each item to convert. Converts those whose
# JSON is still there (an item deleted or converted meanwhile is left alone).
UPGRADE_CONVERSATION_ITEMS = (
    NAMES
    + ITEM_FUNCTIONS
    + """
local id = ARGV[1]
local _, items = conversation_keys_of(id)
local change = 0
for i = 2, #ARGV, 4 do
    if redis.call('HGET', items, ARGV[i]) == ARGV[i + 1] then
        local key = store_item(ARGV[i + 2], ARGV[i], ARGV[i + 3])
        redis.call('HINCRBY', ITEM_CONVERSATION_HOLDS, key, 1)
        redis.call('HSET', items, ARGV[i], key)
        change = change + #ARGV[i + 3] - #ARGV[i + 1]
    end
end
redis.call('PERSIST', items)  -- it now goes with the conversation's cleanup, which releases its holds
if change ~= 0 and redis.call('HEXISTS', CONVERSATION_SIZES, id) == 1 then
    redis.call('HINCRBY', CONVERSATION_SIZES, id, change)
    redis.call('INCRBY', CONVERSATION_BYTES, change)
end
"""
)
# KEYS: the lock. ARGV: its token. Lets go of the lock if it is still this holder's.
UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"

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

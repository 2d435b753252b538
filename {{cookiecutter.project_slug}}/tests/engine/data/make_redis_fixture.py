"""How `redis-0.4.0.json` was made: a Redis state store written by the store of 0.4.0, every key dumped as JSON.

Run with a project baked from 0.4.0 installed, against an empty Redis (`python make_redis_fixture.py
redis://localhost/15 <out.json>`); kept to show what the fixture holds, not run by the tests. It writes what
`make_sqlite_fixture.py` writes (and an event log), with a TTL of ten years, so that the records are alive when a
test loads them. Each key is dumped with its type, its value and its remaining TTL in ms (-1: none).
"""

import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import redis

# The package of the 0.4.0 bake it runs with (looked up by name, so its import sorts the same anywhere).
state = importlib.import_module("haystack_service.engine.state")
TEN_YEARS = 10 * 365 * 86400


def message(role: str, text: str, item_id: str | None = None) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return {"id": item_id, **item} if item_id else item


async def write(url: str) -> None:
    limits = state.ResponseLimits(100, 10_000_000, TEN_YEARS)
    conversations = state.ConversationLimits(100, 10_000_000, 100, 1_000_000, TEN_YEARS)
    store = state.open_state_store(url, Path("."), limits, conversations)
    history: list[dict] = []
    for turn in range(3):  # a chain, as previous_response_id makes it: each keeps the whole history before it
        new = [message("user", f"turn {turn} ünïcode", item_id="msg_client_note" if turn == 1 else None)]
        output = [
            {"id": f"rs_{turn}", "type": "reasoning", "summary": []},
            {**message("assistant", f"answer {turn}", item_id=f"msg_answer_{turn}"), "status": "completed"},
        ]
        response = {"id": f"resp_{turn}", "object": "response", "status": "completed", "output": output}
        await store.save_response(f"resp_{turn}", state.StoredResponse(response, [*history, *new]))
        history = [*history, *new, *output]
    await store.append_events("resp_2", [(0, "event: response.created\ndata: {}\n\n")])
    items = [{**message("user" if n % 2 == 0 else "assistant", f"conv {n}"), "id": f"item_{n}"} for n in range(4)]
    await store.create_conversation(state.StoredConversation("conv_1", 1_700_000_000, {"topic": "demo"}), items)
    await store.delete_conversation_item("conv_1", "item_2")
    await store.add_file(state.StoredFile("file-" + "0" * 32, "notes.txt", "user_data", 12, 1_700_000_000))
    await store.close()


def dump(client: redis.Redis) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for key in sorted(client.scan_iter(match="*")):
        kind = client.type(key)
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = dict(sorted(client.hgetall(key).items()))
        elif kind == "zset":
            value = [[member, score] for member, score in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            value = [[entry_id, fields] for entry_id, fields in client.xrange(key)]
        else:
            raise ValueError(f"{key}: a {kind}, which 0.4.0 does not write")
        keys[key] = {"type": kind, "value": value, "pttl": client.pttl(key)}
    return keys


def main() -> None:
    url, out = sys.argv[1], Path(sys.argv[2])
    client = redis.Redis.from_url(url, decode_responses=True)
    if client.dbsize():
        raise SystemExit(f"{url} is not empty")
    asyncio.run(write(url))
    out.write_text(json.dumps({"template_version": "0.4.0", "keys": dump(client)}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

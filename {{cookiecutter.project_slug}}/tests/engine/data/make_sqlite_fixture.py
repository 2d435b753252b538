"""How `state-0.4.0.sql` was made: a SQLite state store written by the store of 0.4.0, dumped as SQL.

Run with a project baked from 0.4.0 installed (`python make_sqlite_fixture.py <out.sql>`); kept to show what the
fixture holds, not run by the tests. The TTL is ten years, so that the records are alive when a test loads them.
"""

import asyncio
import importlib
import sqlite3
import sys
import tempfile
from pathlib import Path

# The package of the 0.4.0 bake it runs with (looked up by name, so its import sorts the same anywhere).
state = importlib.import_module("haystack_service.engine.state")
TEN_YEARS = 10 * 365 * 86400


def message(role: str, text: str, item_id: str | None = None) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return {"id": item_id, **item} if item_id else item


async def write(path: Path) -> None:
    limits = state.ResponseLimits(100, 10_000_000, TEN_YEARS)
    conversations = state.ConversationLimits(100, 10_000_000, 100, 1_000_000, TEN_YEARS)
    store = state.open_state_store(f"sqlite:///{path}", path.parent, limits, conversations)
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
    items = [{**message("user" if n % 2 == 0 else "assistant", f"conv {n}"), "id": f"item_{n}"} for n in range(4)]
    await store.create_conversation(state.StoredConversation("conv_1", 1_700_000_000, {"topic": "demo"}), items)
    await store.delete_conversation_item("conv_1", "item_2")
    await store.add_file(state.StoredFile("file-" + "0" * 32, "notes.txt", "user_data", 12, 1_700_000_000))
    await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        asyncio.run(write(path))
        with sqlite3.connect(path) as database:
            Path(sys.argv[1]).write_text("\n".join(database.iterdump()) + "\n")


if __name__ == "__main__":
    main()

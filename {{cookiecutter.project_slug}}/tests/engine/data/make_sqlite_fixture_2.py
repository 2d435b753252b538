"""How `state-2.sql` was made: a SQLite state store of schema version 2 (items stored once, every hold a row of
`item_holds`; the engine before items had owners), dumped as SQL.

Run with a project baked from a template of that version installed (`python make_sqlite_fixture_2.py <out.sql>`);
kept to show what the fixture holds, not run by the tests. The TTL is ten years, so that the records are alive
when a test loads them.
"""

import asyncio
import importlib
import sqlite3
import sys
import tempfile
from pathlib import Path

# The package of the bake it runs with (looked up by name, so its import sorts the same anywhere).
state = importlib.import_module("haystack_service.engine.state")
TEN_YEARS = 10 * 365 * 86400


def message(role: str, text: str, item_id: str | None = None) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return {"id": item_id, **item} if item_id else item


def response(turn: int) -> dict:
    output = [
        {"id": f"rs_{turn}", "type": "reasoning", "summary": []},
        {**message("assistant", f"answer {turn}", item_id=f"msg_answer_{turn}"), "status": "completed"},
    ]
    return {"id": f"resp_{turn}", "object": "response", "status": "completed", "output": output}


async def write(path: Path) -> None:
    limits = state.ResponseLimits(100, 10_000_000, TEN_YEARS)
    conversations = state.ConversationLimits(100, 10_000_000, 100, 1_000_000, TEN_YEARS)
    store = state.open_state_store(f"sqlite:///{path}", path.parent, limits, conversations)
    history: list[dict] = []
    for turn in range(3):  # a chain, as previous_response_id makes it: each holds what it adds, and its base
        hint = state.History("response", f"resp_{turn - 1}", len(history)) if turn else None
        new = [message("user", f"turn {turn} ünïcode", item_id="msg_client_note" if turn == 1 else None)]
        await store.save_response(f"resp_{turn}", state.StoredResponse(response(turn), [*history, *new], hint))
        history = [*history, *new, *response(turn)["output"]]
    await store.delete_response("resp_0")  # hidden: resp_1 holds it as its base
    items = [{**message("user" if n % 2 == 0 else "assistant", f"conv {n}"), "id": f"item_{n}"} for n in range(4)]
    await store.create_conversation(state.StoredConversation("conv_1", 1_700_000_000, {"topic": "demo"}), items)
    await store.delete_conversation_item("conv_1", "item_2")
    conversation_turn = [*(item for item in items if item["id"] != "item_2"), message("user", "conv turn")]
    hint = state.History("conversation", "conv_1", 3)
    await store.save_response("resp_3", state.StoredResponse(response(3), conversation_turn, hint))
    await store.add_file(state.StoredFile("file-" + "0" * 32, "notes.txt", "user_data", 12, 1_700_000_000))
    await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        asyncio.run(write(path))
        with sqlite3.connect(path) as database:
            assert database.execute("PRAGMA user_version").fetchone() == (2,)
            dump = "\n".join(database.iterdump())
        # iterdump leaves the schema version out: set it as the store did.
        Path(sys.argv[1]).write_text(dump + "\nPRAGMA user_version = 2;\n")


if __name__ == "__main__":
    main()

"""What the service keeps beyond one request, in one store that every process and replica shares.

STATE_URL picks the engine: unset, SQLite in DATA_DIR (`sqlite.py`: durable, several workers on one
host); `redis://`, `rediss://` or `unix://`, Redis or Valkey (`redis.py`: several replicas). The app makes
one store when it starts serving (`create_app()`) and reaches it as `current_app.extensions["state"]`.
File bytes are not here but in the blob store (`blobs.py`); their metadata is. Conversations (the Conversations
API) are here too: a record plus its items, ordered by the position they were added at, paged by item id and
deletable one by one; each engine's docstring says how it keeps them.

Design for what comes next, so that it is added beside the methods in `store.StateStore`, not instead of them:

- Background runs: a run record (status, the response so far, `cancel_requested`) plus a lease
  (owner, expires_at). The running process renews the lease every few seconds; a run whose lease has
  expired belongs to a dead process, and any process may take it over with one compare-and-set
  (SQLite: `UPDATE ... WHERE id = ? AND lease_expires_at < now`; Redis: `SET lease NX PX` or a script).
  A cancel is a write to the record that the owner sees at its next renewal.
- Event logs, for resuming a stream: per response an append-only log of the internal events with
  sequence numbers; `append(response_id, events)`, `read_after(response_id, n)` and `follow(...)`.
  Redis: a stream per response (`XADD`, `XREAD BLOCK` from any process), expiring with the response.
  SQLite: a table (response_id, seq, event), read after `seq`, polled while following.
- Items by id (`item_reference`): `save_response` would also write item id -> response id for the
  response's output items and the input items it carries that have ids (SQLite: a table with a
  foreign key that cascades on delete; Redis: a hash per response, the reverse index expiring with it);
  a lookup is then one read of the index and one of the response.
"""

from pathlib import Path

from ..settings import Settings
from .redis import RedisStore
from .sqlite import SQLiteStore
from .store import (
    BackgroundRun,
    ConversationFull,
    ConversationLimits,
    DuplicateItem,
    LoggedEvent,
    ResponseLimits,
    StateStore,
    StoredConversation,
    StoredFile,
    StoredResponse,
    StoreUnavailable,
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SQLITE_FILE = "state.db"


def open_state_store(
    url: str | None, data_dir: Path, limits: ResponseLimits, conversation_limits: ConversationLimits
) -> StateStore:
    """The store STATE_URL names: unset, SQLite at DATA_DIR/state.db; `sqlite:///relative` or `sqlite:////absolute`."""
    if not url:
        return SQLiteStore(data_dir / SQLITE_FILE, limits, conversation_limits)
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url.removeprefix("sqlite:///")), limits, conversation_limits)
    if url.startswith(REDIS_SCHEMES):
        return RedisStore(url, limits, conversation_limits)
    raise ValueError(f"STATE_URL must start with sqlite:///, {', '.join(REDIS_SCHEMES)}; got {url.split(':')[0]}:")


def store_limits(settings: Settings) -> tuple[ResponseLimits, ConversationLimits]:
    """The store's bounds, from the settings. A conversation holds no more than one request could send as its
    input (MAX_INPUT_ITEMS items, MAX_BODY_BYTES), and expires as a stored response does, after its last change."""
    responses = ResponseLimits(
        settings.responses_store_size, settings.responses_store_bytes, settings.responses_ttl_seconds
    )
    conversations = ConversationLimits(
        max_count=settings.conversations_store_size,
        max_bytes=settings.conversations_store_bytes,
        max_items_each=settings.max_input_items,
        max_bytes_each=settings.max_body_bytes,
        ttl_seconds=settings.responses_ttl_seconds,
    )
    return responses, conversations


__all__ = [
    "BackgroundRun",
    "ConversationFull",
    "ConversationLimits",
    "DuplicateItem",
    "LoggedEvent",
    "ResponseLimits",
    "StateStore",
    "StoreUnavailable",
    "StoredConversation",
    "StoredFile",
    "StoredResponse",
    "open_state_store",
    "store_limits",
]

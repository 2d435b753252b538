"""What the service keeps beyond one request, in one store that every process and replica shares.

STATE_URL picks the engine: unset, SQLite in DATA_DIR (`sqlite.py`: durable, several workers on one
host); `redis://`, `rediss://` or `unix://`, Redis or Valkey (`redis.py`: several replicas). The app makes
one store when it starts serving (`create_app()`) and reaches it as `services().state`.
File bytes are not here but in the blob store (`files/blobs.py`); their metadata is. Conversations (the Conversations
API) are here too: a record plus its items, ordered by the position they were added at, paged by item id and
deletable one by one; each engine's docstring says how it keeps them.

What it keeps besides (`store.StateStore` lists every method):

- Background runs (`runs/background.py`): a run record (the response so far, its request, `cancel_requested`)
  and a lease (owner, lease_until) that the running process renews; a run whose lease lapsed belongs to a
  dead process, and another takes it over in one compare-and-set. A cancel is a write to the record that
  the owner sees at its next renewal. Its final response replaces the record in one write (`finish_run`).
- Event logs, for resuming a stream: per response its SSE events with their sequence numbers, expiring with
  the response. Redis: a stream per response (`XADD`, `XREAD BLOCK` wakes a follower in any process);
  SQLite: a table (response_id, seq, event), polled while following.
- Items by id (`get_items`, for `item_reference`): `save_response` and `finish_run` also write item id ->
  response for the response's output items and the input items it holds that have ids, in the same write
  (SQLite: the `response_items` table, whose foreign key cascades when the response goes; Redis:
  `state:item:<id>` keys expiring with the response, and a hash of each response's item ids, so they go with
  it). A lookup is one read of the index and one of the responses found. Conversation items are found by id
  too (`find_conversation_items`).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
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

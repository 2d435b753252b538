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
- Items, stored once: each distinct item (named by a digest of its JSON, `store.ItemRecord`) is kept once, under
  an integer key; a stored response lists the keys of its input and output items in order, and a conversation's
  positions name keys. A turn of a chain writes only what is new: the route says which input items the store
  holds already (`store.History`: a previous response's input and output, or a conversation's items), and the
  others are found by digest, so a client resending its history stores nothing twice. Each item counts its
  holders (responses, conversation positions) and goes in the same write as the last of them (deleted, expired,
  pushed out by the bounds). `get_items` (for `item_reference`) finds an item by its own id while a stored
  response that has not expired holds it; `find_conversation_items`, while a live conversation does.
  SQLite: `sqlite_items.py`; Redis: `redis.py`'s module docstring. A store of 0.4.0 is brought over the first
  time it is opened, in one transaction (SQLite) or one script per record (Redis).

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
    History,
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
    "History",
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

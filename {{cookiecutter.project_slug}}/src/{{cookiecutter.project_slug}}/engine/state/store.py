"""What every state store offers: the `StateStore` interface, the records it keeps, and its limits.

Two engines implement it, `sqlite.SQLiteStore` and `redis.RedisStore`; `state.open_state_store` picks one
from the STATE_URL setting. Every method is a coroutine that never blocks the event loop, and every write
is atomic: after a crash a record is whole or absent.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from quart import Response

from ..http.errors import OpenAIError
from ..wire.json_text import compact_json

Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class History:
    """Where the first `length` input items of a response being saved are stored already, so the store refers to
    them instead of writing them again: the input then the output of a stored response (`previous_response_id`),
    or the first items of a conversation. A source that is gone, or holds another count, is ignored."""

    kind: Literal["response", "conversation"]
    source_id: str
    length: int


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished response and the whole conversation that led to it, as the routes see it.

    The stores keep each item once (`ItemRecord`): a response's record refers to its input and output items by
    key, in order, so a turn writes only what is new. `history` (not stored) tells the store which of the input
    items it holds already; without it the store finds them by content.
    """

    response: dict[str, Any]
    input_items: list[dict[str, Any]]  # the whole conversation that led to it, earlier turns included
    history: History | None = field(default=None, compare=False)

    def to_json(self) -> bytes:
        """The response with its input, in one record: what `state.migrate` reads from a store of 0.4.0."""
        record = {"response": self.response, "input_items": self.input_items}  # not asdict(): it deep-copies
        return compact_json(record).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "StoredResponse":
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item as the stores keep it: its JSON, named by a digest of that JSON, so that an item sent again (a
    client resending its history, a chain, a conversation) is the same record. `item_id` is the item's own `id`,
    by which `item_reference` finds it."""

    digest: str
    item_id: str | None
    json: str
    size: int  # bytes of `json` in UTF-8, counted from the bytes the digest was made of, not encoded again

    @classmethod
    def of(cls, item: dict[str, Any]) -> "ItemRecord":
        text = compact_json(item)
        item_id = item.get("id")
        data = text.encode()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        return cls(digest, item_id if isinstance(item_id, str) and item_id else None, text, len(data))


def response_record(response: dict[str, Any]) -> str:
    """A response's own record: the response without its output, whose items are kept as items."""
    return compact_json({**response, "output": []})


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the store knows about one uploaded file: OpenAI's FileObject without the constant fields."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
        }

    def to_json(self) -> str:
        return compact_json(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> "StoredFile":
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """Stored responses are bounded three ways; past a bound the oldest go first."""

    max_count: int  # 0 stores none
    max_bytes: int  # what their saves added (a record, and the items it was first to store); a larger one is not stored
    ttl_seconds: int  # each expires this long after it was stored


@dataclass(frozen=True, slots=True)
class BackgroundRun:
    """A background response still running (or waiting to): what it was asked, and who runs it.

    The record exists from the request until the run ends, when its final response is stored in its place
    (`finish_run`). `owner` holds a lease until `lease_until` (the store's clock, seconds): the owner renews it
    while it runs; a run whose lease lapsed belongs to a process that died, and another process takes it over.
    """

    response: dict[str, Any]  # the response as it stands (status queued or in_progress, output [])
    request: dict[str, Any]  # {"model", "input_items", "body"}: enough to start it again
    owner: str
    lease_until: float = 0.0
    cancel_requested: bool = False
    attempts: int = 1
    output_logged: bool = False  # an event past the preamble is in the log: a client may have read some answer

    @property
    def id(self) -> str:
        return self.response["id"]

    def to_json(self) -> str:
        return compact_json(
            {
                "response": self.response,
                "request": self.request,
                "attempts": self.attempts,
                "output_logged": self.output_logged,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str, *, owner: str, lease_until: float, cancel_requested: bool) -> "BackgroundRun":
        """The record's JSON holds what the run is; its owner, lease and cancel flag are kept beside it."""
        return cls(**json.loads(data), owner=owner, lease_until=lease_until, cancel_requested=cancel_requested)


# One event of a response's stream, as sent: its sequence number and its SSE text (`event: ...\ndata: ...\n\n`).
LoggedEvent = tuple[int, str]


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """A conversation's own record (its items are kept beside it, one by one): OpenAI's Conversation object."""

    id: str
    created_at: int
    metadata: dict[str, str]

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "conversation", "created_at": self.created_at, "metadata": self.metadata}

    def to_json(self) -> str:
        return compact_json(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> "StoredConversation":
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class ConversationLimits:
    """Conversations are bounded in all and each; past a bound in all, the least recently changed go first."""

    max_count: int  # conversations kept
    max_bytes: int  # of all their records and items (JSON)
    max_items_each: int  # items one conversation holds: adding more is refused
    max_bytes_each: int  # bytes one conversation holds: adding more is refused
    ttl_seconds: int  # each expires, with its items, this long after its last change


class ConversationFull(Exception):
    """Adding these items would take the conversation past `max_items_each` or `max_bytes_each`; none was added."""


class DuplicateItem(Exception):
    """An item being added has the id of one the conversation holds (ids name one item); none was added."""

    def __init__(self, item_id: str) -> None:
        super().__init__(item_id)
        self.item_id = item_id


def conversation_records(items: list[dict[str, Any]]) -> list[ItemRecord]:
    """Conversation items (each with its `id`) as the stores keep them (the JSON's UTF-8 bytes are what the bounds
    count); DuplicateItem when two have the same id."""
    seen: set[str] = set()
    for item in items:
        if item["id"] in seen:
            raise DuplicateItem(item["id"])
        seen.add(item["id"])
    return [ItemRecord.of(item) for item in items]


def decode_items(joined: str) -> list[dict[str, Any]]:
    """Items as the stores keep them, joined by commas, decoded in one go: a whole conversation is read on every
    turn, and one parse of the joined JSON takes a third of the time of one parse per item (800: 1.2 ms, 3.7)."""
    return json.loads(f"[{joined}]")


def size_of(records: list[ItemRecord]) -> int:
    return sum(record.size for record in records)


class StoreUnavailable(OpenAIError):
    """The store cannot be reached (or failed): 503, and the SDK may retry, since an outage is transient."""

    def __init__(self, store: str, reason: object) -> None:
        super().__init__(503, f"The {store} is unavailable ({reason}); try again shortly.", code="store_unavailable")

    def to_response(self) -> Response:
        response = super().to_response()
        response.headers["x-should-retry"] = "true"
        return response


class StateStore(Protocol):
    """What the service keeps beyond one request, shared by every process that uses the same store."""

    engine: str  # "sqlite" or "redis", for logs and /status (never the URL: it may hold a password)

    async def save_response(self, response_id: str, stored: StoredResponse) -> bool:
        """Keep a finished response; False when it alone is larger than the byte bound (then it is not kept).

        One write: the items the store does not hold yet (by digest), the response's record with the keys of its
        input and output items in order, and a hold on each of those items. A response saved again under its id
        replaces the first (and lets go of its items).
        """
        ...

    async def get_response(self, response_id: str) -> StoredResponse | None: ...

    async def has_response(self, response_id: str) -> bool:
        """Whether the response is stored (not deleted, not expired): one small read, for `RecentResponses`."""
        ...

    async def delete_response(self, response_id: str) -> bool: ...

    async def get_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored items with these ids (for `item_reference`), by id; an id that is not stored is left out.

        An item is found while a stored response that has not expired holds it (in its input or output): deleting
        a response, or its expiry, or the bounds pushing it out, frees the items no other response or conversation
        holds, in the same write.
        """
        ...

    async def add_file(self, file: StoredFile) -> None:
        """List an uploaded file (its bytes are already in the blob store); adding it again changes nothing."""
        ...

    async def get_file(self, file_id: str) -> StoredFile | None: ...

    async def list_files(self, *, purpose: str | None, order: Order, after: str | None, limit: int) -> list[StoredFile]:
        """Files by id, which is by upload time; `after` is an id: only files past it in that order."""
        ...

    async def delete_file(self, file_id: str) -> bool: ...

    # --- background runs (see BackgroundRun) ---

    async def create_run(self, run: BackgroundRun, lease_seconds: float) -> None:
        """Record a new run, leased to its owner for `lease_seconds`."""
        ...

    async def get_run(self, response_id: str) -> BackgroundRun | None: ...

    async def update_run(self, run: BackgroundRun) -> bool:
        """Replace the run's record (its response, attempts, output_logged) if `run.owner` still owns it."""
        ...

    async def renew_leases(self, owner: str, response_ids: list[str], lease_seconds: float) -> dict[str, bool]:
        """Extend the leases `owner` still holds; for each, whether a cancel was requested (absent: no longer ours)."""
        ...

    async def request_cancel(self, response_id: str) -> BackgroundRun | None:
        """Ask the run's owner to cancel it (it sees this at its next renewal); None when there is no such run."""
        ...

    async def take_over_lapsed(self, owner: str, lease_seconds: float) -> list[BackgroundRun]:
        """Lease to `owner` every run whose lease lapsed (its process died, or handed it back), one at a time."""
        ...

    async def release_runs(self, owner: str, response_ids: list[str]) -> None:
        """End `owner`'s leases now (a normal shutdown): another process takes the runs over at once."""
        ...

    async def finish_run(self, run: BackgroundRun, stored: StoredResponse) -> bool:
        """In one write, store the run's final response and drop its record; False if `run.owner` lost it."""
        ...

    # --- event logs, for resuming a stream (a background response's) ---

    async def append_events(self, response_id: str, events: list[LoggedEvent]) -> None:
        """Add events at the end of the response's log (it expires with the stored response)."""
        ...

    async def read_events(self, response_id: str, after: int, limit: int) -> list[LoggedEvent]:
        """The logged events whose sequence number is greater than `after`, in order, at most `limit`."""
        ...

    async def wait_for_events(self, response_id: str, after: int, timeout: float) -> list[LoggedEvent]:
        """`read_events`, waiting up to `timeout` seconds for one to be appended (from any process)."""
        ...

    async def last_sequence_number(self, response_id: str) -> int:
        """The sequence number of the log's last event; -1 when it has none."""
        ...

    async def create_conversation(self, conversation: StoredConversation, items: list[dict[str, Any]]) -> None:
        """Keep a new conversation with its first items (each with an `id`); one with the same id is replaced.

        Raises ConversationFull or DuplicateItem, and then keeps nothing.
        """
        ...

    async def get_conversation(self, conversation_id: str) -> StoredConversation | None: ...

    async def update_conversation(self, conversation_id: str, metadata: dict[str, str]) -> StoredConversation | None:
        """Replace its metadata; None when there is no such conversation."""
        ...

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Forget the conversation and its items."""
        ...

    async def add_conversation_items(self, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        """Append items (each with an `id`) after the last, all or none; False when there is no such conversation.

        Raises ConversationFull or DuplicateItem, and then adds nothing.
        """
        ...

    async def list_conversation_items(
        self, conversation_id: str, *, order: Order, after: str | None, limit: int | None
    ) -> list[dict[str, Any]] | None:
        """Items in the order they were added (or the reverse); `after` is an item id: only those past it in that
        order (none when it is not in the conversation). `limit` None: all of them. None when there is no such
        conversation."""
        ...

    async def get_conversation_item(self, conversation_id: str, item_id: str) -> dict[str, Any] | None: ...

    async def find_conversation_items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The items of live conversations with these ids (for `item_reference`), by id; others are left out. When
        several conversations hold an id, the most recent answers."""
        ...

    async def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool: ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it does not."""
        ...

    async def prune(self) -> int:
        """Drop what has expired now rather than at the next write; the number of records dropped."""
        ...

    async def close(self) -> None: ...

"""What every state store offers: the `StateStore` interface, the records it keeps, and its limits.

Two engines implement it, `sqlite.SQLiteStore` and `redis.RedisStore`; `state.open_state_store` picks one
from the STATE_URL setting. Every method is a coroutine that never blocks the event loop, and every write
is atomic: after a crash a record is whole or absent.
"""

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from quart import Response

from ..errors import OpenAIError

FileOrder = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]  # the whole conversation that led to it, earlier turns included

    def to_json(self) -> bytes:
        record = {"response": self.response, "input_items": self.input_items}  # not asdict(): it deep-copies
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "StoredResponse":
        return cls(**json.loads(data))


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
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: bytes | str) -> "StoredFile":
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """Stored responses are bounded three ways; past a bound the oldest go first."""

    max_count: int  # 0 stores none
    max_bytes: int  # of their JSON, conversations included; a single larger response is not stored
    ttl_seconds: int  # each expires this long after it was stored


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
        """Keep a finished response; False when it alone is larger than the byte bound (then it is not kept)."""
        ...

    async def get_response(self, response_id: str) -> StoredResponse | None: ...

    async def delete_response(self, response_id: str) -> bool: ...

    async def add_file(self, file: StoredFile) -> None:
        """List an uploaded file (its bytes are already in the blob store); adding it again changes nothing."""
        ...

    async def get_file(self, file_id: str) -> StoredFile | None: ...

    async def list_files(
        self, *, purpose: str | None, order: FileOrder, after: str | None, limit: int
    ) -> list[StoredFile]:
        """Files by id, which is by upload time; `after` is an id: only files past it in that order."""
        ...

    async def delete_file(self, file_id: str) -> bool: ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it does not."""
        ...

    async def prune(self) -> int:
        """Drop what has expired now rather than at the next write; the number of records dropped."""
        ...

    async def close(self) -> None: ...

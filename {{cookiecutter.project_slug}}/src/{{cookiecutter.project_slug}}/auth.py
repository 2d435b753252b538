"""Optional API keys: with API_KEYS set, every route but `/status` needs `Authorization: Bearer <key>`.

A key may be named (`team-a:sk-...`), so that wrappers know which client is asking (`request_context.py`)
without ever seeing the key itself.
"""

import hmac
from collections.abc import Awaitable, Callable

from quart import g, request

from .errors import OpenAIError

OPEN_PATHS = frozenset({"/status"})  # health checks come from load balancers without keys


def parse_api_keys(setting: str) -> dict[str, str | None]:
    """API_KEYS, comma-separated: plain keys (`sk-abc`) or named ones (`team-a:sk-abc`); key -> name (or None).

    A key holding a `:` of its own must be named, as the first `:` separates a name from its key.
    """
    keys: dict[str, str | None] = {}
    for item in setting.split(","):
        name, separator, key = item.strip().partition(":")
        if not separator:
            name, key = "", name
        if key:
            keys[key] = name or None
    return keys


def require_api_key(keys: dict[str, str | None]) -> Callable[[], Awaitable[None]]:
    """A before-request hook answering 401 (OpenAI's envelope) unless the request carries one of `keys`.

    The matching key's name is kept in `g.api_key_name` for the request's context.
    """
    encoded_keys = [(key.encode(), name) for key, name in keys.items()]

    async def check_api_key() -> None:
        if request.path in OPEN_PATHS or request.method == "OPTIONS":
            return  # CORS preflights carry no credentials
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # compare_digest against every key: the time taken does not reveal which key nearly matched.
        matches = [name for key, name in encoded_keys if hmac.compare_digest(token.encode(), key)] or None
        if scheme.lower() != "bearer" or matches is None:
            raise OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key")
        g.api_key_name = matches[0]

    return check_api_key

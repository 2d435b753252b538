"""Optional API keys: with API_KEYS set, every route but `/status` needs `Authorization: Bearer <key>`."""

import hmac
from collections.abc import Awaitable, Callable

from quart import request

from .errors import OpenAIError

OPEN_PATHS = frozenset({"/status"})  # health checks come from load balancers without keys


def require_api_key(keys: set[str]) -> Callable[[], Awaitable[None]]:
    """A before-request hook answering 401 (OpenAI's envelope) unless the request carries one of `keys`."""
    encoded_keys = [key.encode() for key in keys]

    async def check_api_key() -> None:
        if request.path in OPEN_PATHS or request.method == "OPTIONS":
            return  # CORS preflights carry no credentials
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # compare_digest against every key: the time taken does not reveal which key nearly matched.
        matches = [hmac.compare_digest(token.encode(), key) for key in encoded_keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key")

    return check_api_key

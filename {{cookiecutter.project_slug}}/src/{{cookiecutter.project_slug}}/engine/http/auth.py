"""Optional API keys: with API_KEYS set, every route but the health checks needs `Authorization: Bearer <key>`.

`GET /status` answers without a key too, but then only says whether the service is ready: its list of models and
of failed wrappers needs a key. `GET /metrics` needs one with METRICS=keyed.

A key may be named (`team-a:sk-...`), so that wrappers know which client is asking (`parsing/who_is_asking.py`)
without ever seeing the key itself.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import hmac

from quart import Quart, g, request

from ..services import services
from .errors import OpenAIError, settle_unread_body

# Load balancers and Kubernetes probe these without keys.
HEALTH_PATHS = frozenset({"/status", "/health/live", "/health/ready"})


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


def require_api_keys(app: Quart, open_paths: frozenset[str] = HEALTH_PATHS) -> None:
    """Answer 401 (OpenAI's envelope) to every request outside `open_paths` that does not carry one of the keys.

    The matching key's name is kept in `g.api_key_name` for the request's context. The keys themselves are the
    app's `services().api_keys`.
    """

    @app.before_request
    async def check_api_key() -> None:
        if request.path in open_paths or request.method == "OPTIONS":
            return  # CORS preflights carry no credentials
        names = names_of_keys_sent()
        if names is None:
            headers = await settle_unread_body()  # so that the connection carries the client's next request
            raise OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key", headers=headers)
        g.api_key_name = names[0]


def names_of_keys_sent() -> list[str | None] | None:
    """The names of the API keys the current request carries (None for an unnamed key); None when it has none."""
    return key_names(request.headers.get("Authorization", ""), services().api_keys)


def key_names(authorization: str, keys: list[tuple[bytes, str | None]]) -> list[str | None] | None:
    """The names of the keys an `Authorization` header carries; None when it carries none of them."""
    scheme, _, token = authorization.partition(" ")
    # compare_digest against every key: the time taken does not reveal which key nearly matched.
    names = [name for key, name in keys if hmac.compare_digest(token.encode(), key)]
    return names if scheme.lower() == "bearer" and names else None


def carries_api_key() -> bool:
    """Whether the current request has one of the API keys (always true when none are set)."""
    return not services().api_keys or names_of_keys_sent() is not None

"""Optional API keys: with API_KEYS set, every route but the health checks needs `Authorization: Bearer <key>`.

`GET /status` answers without a key too, but then only says whether the service is ready: its list of models and
of failed wrappers needs a key. `GET /metrics` needs one with METRICS=keyed.
"""

import hmac

from quart import Quart, current_app, request

from .errors import OpenAIError

# Load balancers and Kubernetes probe these without keys.
HEALTH_PATHS = frozenset({"/status", "/health/live", "/health/ready"})


def require_api_keys(app: Quart, keys: set[str], open_paths: frozenset[str] = HEALTH_PATHS) -> None:
    """Answer 401 (OpenAI's envelope) to every request outside `open_paths` that does not carry one of `keys`."""
    app.extensions["api_keys"] = [key.encode() for key in keys]

    @app.before_request
    async def check_api_key() -> None:
        if request.path in open_paths or request.method == "OPTIONS":
            return  # CORS preflights carry no credentials
        if not carries_api_key():
            raise OpenAIError(401, "Missing or invalid API key.", code="invalid_api_key")


def carries_api_key() -> bool:
    """Whether the current request has one of the API keys (always true when none are set)."""
    keys: list[bytes] = current_app.extensions.get("api_keys", [])
    if not keys:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # compare_digest against every key: the time taken does not reveal which key nearly matched.
    matches = [hmac.compare_digest(token.encode(), key) for key in keys]
    return scheme.lower() == "bearer" and any(matches)

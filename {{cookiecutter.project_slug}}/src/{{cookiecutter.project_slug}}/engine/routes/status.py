"""`GET /status`: for people and scripts; 200 once the wrappers are loaded (or failed to), 503 before.

`status` is `ready`, or `degraded` when a wrapper failed to load (then `/health/ready` answers 503 unless
READY_WITH_FAILED_WRAPPERS is set). Without a key (when API_KEYS is set) it says only that; with one, also which
models it serves, which wrappers failed to load and why (one line each, the traceback is in the log), and whether
the state store answers. A store that does not answer leaves it at 200 (the service
serves what does not need the store, and recovers by itself); `/health/ready` is the probe that counts it.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from quart import Blueprint, Response, jsonify

from ..http.auth import carries_api_key
from ..services import services
from ..state import StateStore, StoreUnavailable
from .health import readiness

blueprint = Blueprint("status", __name__)


@blueprint.get("/status")
async def status() -> Response:
    registry = services().registry
    if registry.loading:
        response = jsonify({"status": "not ready", "checks": await readiness()})
        response.status_code = 503
        return response
    state = "degraded" if registry.failed else "ready"
    if not carries_api_key():
        return jsonify({"status": state})
    return jsonify(
        {
            "status": state,
            "models": [w.model_id for w in registry.serving()],
            "failed": registry.failed,
            "store": await store_status(services().state),
        }
    )


async def store_status(store: StateStore) -> dict[str, str | bool]:
    """Which engine keeps the state, and whether it answers now (never its URL, which may hold a password)."""
    try:
        await store.ping()
    except StoreUnavailable:
        return {"engine": store.engine, "reachable": False}
    return {"engine": store.engine, "reachable": True}

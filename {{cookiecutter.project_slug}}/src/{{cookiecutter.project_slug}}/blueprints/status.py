"""`GET /status`: a health check for load balancers and for people."""

from quart import Blueprint, Response, current_app, jsonify

from ..registry import Registry
from ..state import StateStore, StoreUnavailable

blueprint = Blueprint("status", __name__)


@blueprint.get("/status")
async def status() -> Response:
    registry: Registry = current_app.extensions["registry"]
    return jsonify(
        {
            "status": "ready",
            "models": [w.model_id for w in registry.serving()],
            "failed": registry.failed,
            "store": await store_status(current_app.extensions["state"]),
        }
    )


async def store_status(store: StateStore) -> dict[str, str | bool]:
    """Which engine keeps the state, and whether it answers now (never its URL, which may hold a password)."""
    try:
        await store.ping()
    except StoreUnavailable:
        return {"engine": store.engine, "reachable": False}
    return {"engine": store.engine, "reachable": True}

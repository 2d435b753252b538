"""`GET /status`: readiness for people and for the tests; 200 once ready, 503 before.

Without a key (when API_KEYS is set) it says only that; with one, also which models it serves and which wrappers
failed to load.
"""

from quart import Blueprint, Response, current_app, jsonify

from ..auth import carries_api_key
from ..registry import Registry
from .health import readiness

blueprint = Blueprint("status", __name__)


@blueprint.get("/status")
async def status() -> Response:
    checks = await readiness()
    if any(outcome != "ok" for outcome in checks.values()):
        response = jsonify({"status": "not ready", "checks": checks})
        response.status_code = 503
        return response
    if not carries_api_key():
        return jsonify({"status": "ready"})
    registry: Registry = current_app.extensions["registry"]
    return jsonify({"status": "ready", "models": [w.model_id for w in registry.serving()], "failed": registry.failed})

"""`GET /status`: a health check for load balancers and for people."""

from quart import Blueprint, Response, current_app, jsonify

from ..registry import Registry

blueprint = Blueprint("status", __name__)


@blueprint.get("/status")
async def status() -> Response:
    registry: Registry = current_app.extensions["registry"]
    return jsonify({"status": "ready", "models": [w.model_id for w in registry.serving()], "failed": registry.failed})

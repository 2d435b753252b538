"""`GET /v1/models` and `GET /v1/models/<id>`: every wrapper that serves an OpenAI API is a model.

The list holds the loaded models only, as OpenAI's model objects: a client offers its users what it lists, and a
model that failed to load answers nothing. Asked by id, such a model answers as a request for it does: 503
`model_failed_to_load` with the reason (`/status` lists them all).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from quart import Blueprint, Response, jsonify

from ..runs.registry import LoadedWrapper
from ..services import services

blueprint = Blueprint("models", __name__)


def model_object(wrapper: LoadedWrapper) -> dict[str, Any]:
    owner = services().settings.wrappers_package.split(".")[0]
    return {"id": wrapper.model_id, "object": "model", "created": wrapper.created, "owned_by": owner}


@blueprint.get("/models")
async def list_models() -> Response:
    registry = services().registry
    registry.require_loaded()  # a partial list would be cached by clients (Open WebUI asks once)
    return jsonify({"object": "list", "data": [model_object(wrapper) for wrapper in registry.serving()]})


@blueprint.get("/models/<path:model>")
async def get_model(model: str) -> Response:
    registry = services().registry
    wrapper = registry.require(model)
    if wrapper not in registry.serving():
        raise registry.unknown(model)
    return jsonify(model_object(wrapper))

"""`GET /v1/models` and `GET /v1/models/<id>`: every wrapper that serves an OpenAI API is a model.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from quart import Blueprint, Response, jsonify

from ..http.errors import OpenAIError
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
    wrapper = registry.get(model)
    if wrapper is None and registry.loading:
        registry.require_loaded()
    if wrapper is None or wrapper not in registry.serving():
        raise OpenAIError(404, f"The model '{model}' does not exist.", param="model", code="model_not_found")
    return jsonify(model_object(wrapper))

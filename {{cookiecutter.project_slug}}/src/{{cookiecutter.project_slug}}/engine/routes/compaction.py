"""`POST /v1/responses/compact` (and `/responses/compact`): a long conversation shortened for the next request.

The answer is OpenAI's CompactResource: the conversation's user messages, then one `compaction` item standing for
everything else, whose summary the wrapper wrote and the store keeps (`runs/compaction.py`). The client sends that
output back as the input of its next `POST /v1/responses`, with its new message after it.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from quart import Blueprint, Response

from ..http.errors import OpenAIError
from ..observability.request_tracking import note_model
from ..parsing.request_body import optional_string, read_json_object, require_string
from ..runs.compaction import compact, expand_compactions
from ..services import services
from ..wire import json_response
from .responses import normalise_input, resolve_item_references

blueprint = Blueprint("compaction", __name__)


@blueprint.post("/responses/compact")
async def compact_response() -> Response:
    """Compact `input` (after the `previous_response_id` chain, when given) with the model's own summary.

    Other fields of the spec (`prompt_cache_key`, `service_tier`...) and unknown ones are accepted and ignored; so is
    `store`: the summary must be stored, or the item could not be sent back.
    """
    body = await read_json_object()
    app_services = services()
    model = require_string(body, "model")
    optional_string(body, "instructions")
    previous_id = optional_string(body, "previous_response_id")
    client_items = await resolve_item_references(
        normalise_input(body.get("input"), app_services.settings.max_input_items)
    )
    if previous_id is not None:
        previous = await app_services.state.get_response(previous_id)
        if previous is None:
            message = f"Previous response with id '{previous_id}' not found."
            raise OpenAIError(400, message, param="previous_response_id", code="previous_response_not_found")
        client_items = [*previous.input_items, *previous.response["output"], *client_items]
    if not client_items:
        raise OpenAIError(400, "There is nothing to compact: send the conversation as 'input'.", param="input")
    wrapper, method_name = app_services.registry.find(model, "responses")
    note_model(wrapper.model_id)
    items = await expand_compactions(client_items)  # an earlier compaction: its summary is part of what is summarised
    return json_response(await compact(wrapper, method_name, model, client_items, items, body))

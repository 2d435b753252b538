"""`POST /v1/responses` (and `/responses`), plus `GET` and `DELETE /v1/responses/<id>`: the Responses API."""

from typing import Any

from quart import Blueprint, Response, current_app, jsonify

from ..errors import OpenAIError
from ..registry import Registry
from ..runner import Runner
from ..settings import Settings
from ..state import StateStore, StoredResponse
from ..wire import json_response
from ..wire.responses import ResponseEncoder, response_object
from ..wire.sse import error_response, stream_response
from .request_body import optional_bool, read_json_object, require_string

blueprint = Blueprint("responses", __name__)


def normalise_input(raw: object) -> list[dict[str, Any]]:
    """`input` as a list of items: a string is one user message, absent is none."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise OpenAIError(400, "'input' must be a string or an array of items.", param="input")
    items = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise OpenAIError(400, "Each input item must be an object.", param=f"input[{position}]")
        # A bare {"role", "content"} is shorthand for a message item.
        items.append(item if "type" in item else {"type": "message", **item})
    return items


def state() -> StateStore:
    return current_app.extensions["state"]


async def stored_or_404(response_id: str) -> StoredResponse:
    stored = await state().get_response(response_id)
    if stored is None:
        raise OpenAIError(404, f"No response with id '{response_id}' is stored.", param="response_id")
    return stored


@blueprint.post("/v1/responses")
@blueprint.post("/responses")
async def create_response() -> Response:
    body = await read_json_object()
    model = require_string(body, "model")
    input_items = normalise_input(body.get("input"))
    wants_stream = optional_bool(body, "stream")
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous = await state().get_response(previous_id) if isinstance(previous_id, str) else None
        if previous is None:
            raise OpenAIError(
                400,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        input_items = [*previous.input_items, *previous.response["output"], *input_items]
    registry: Registry = current_app.extensions["registry"]
    wrapper, method_name = registry.find(model, "responses")

    runner: Runner = current_app.extensions["runner"]
    settings: Settings = current_app.config["SETTINGS"]
    method = getattr(wrapper.instance, method_name)
    encoder = ResponseEncoder(response_object(model, body), emit=wants_stream)
    store = state()  # the stream's last events are sent outside the app context

    async def save() -> None:
        """Stored before the client hears it is complete, so its next request finds it, on any replica."""
        await store.save_response(encoder.response["id"], StoredResponse(encoder.response, input_items))

    on_finish = save if body.get("store", True) is not False else None
    if not wants_stream:
        encoder.encode(await runner.collect(method, model, input_items, body))
        if encoder.error is not None:
            raise error_response(encoder.error)
        encoder.finish()
        if on_finish is not None:
            await on_finish()
        return json_response(encoder.response)
    stream = runner.start(method, model, input_items, body)
    return await stream_response(stream, encoder, settings.keepalive_seconds, on_finish)


@blueprint.get("/v1/responses/<response_id>")
@blueprint.get("/responses/<response_id>")
async def get_response(response_id: str) -> Response:
    stored = await stored_or_404(response_id)
    return jsonify(stored.response)


@blueprint.get("/v1/responses/<response_id>/input_items")
@blueprint.get("/responses/<response_id>/input_items")
async def list_input_items(response_id: str) -> Response:
    stored = await stored_or_404(response_id)
    items = [{"id": item.get("id") or f"item_{index}", **item} for index, item in enumerate(stored.input_items)]
    return jsonify(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None,
            "has_more": False,
        }
    )


@blueprint.delete("/v1/responses/<response_id>")
@blueprint.delete("/responses/<response_id>")
async def delete_response(response_id: str) -> Response:
    if not await state().delete_response(response_id):
        raise OpenAIError(404, f"No response with id '{response_id}' is stored.", param="response_id")
    return jsonify({"id": response_id, "object": "response", "deleted": True})

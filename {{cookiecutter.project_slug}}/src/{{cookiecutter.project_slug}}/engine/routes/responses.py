"""`POST /v1/responses` (and `/responses`), plus `GET`, `DELETE` and `POST .../cancel` of `/v1/responses/<id>`.

A response with `background: true` runs on in `runs/background.py` whatever its client does; `GET ...?stream=true`
replays and follows its events from any replica.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, g, jsonify, request

from ..http.errors import OpenAIError
from ..observability.request_tracking import note_model
from ..parsing.declared_tools import namespaced_functions
from ..parsing.model_options import check_reasoning, check_text, check_tool_choice, check_tools
from ..parsing.paging import list_page
from ..parsing.request_body import (
    check_item_count,
    check_sampling,
    optional_bool,
    optional_number,
    optional_string,
    read_json_object,
    require_string,
)
from ..parsing.who_is_asking import remember_request
from ..runs.background import BackgroundRuns
from ..runs.compaction import expand_compactions, stored_compaction
from ..runs.context_window import fit_context
from ..runs.conversation_turns import Turn, start_turn
from ..runs.registry import LoadedWrapper
from ..runs.remote_mcp import check_approvals, check_not_run_elsewhere, remote_servers, with_remote_mcp
from ..services import services
from ..state import History, StateStore, StoredResponse
from ..wire import json_response
from ..wire.responses import ResponseEncoder, response_object
from ..wire.sse import error_response, sse_response, stream_response

blueprint = Blueprint("responses", __name__)


def normalise_input(raw: object, max_items: int) -> list[dict[str, Any]]:
    """`input` as a list of items: a string is one user message, absent is none."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise OpenAIError(400, "'input' must be a string or an array of items.", param="input")
    items = []
    parts = 0
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise OpenAIError(400, "Each input item must be an object.", param=f"input[{position}]")
        content = item.get("content")
        parts += len(content) if isinstance(content, list) else 0
        items.append(item if item.get("type") is not None else {"type": implied_type(item), **item})
    check_item_count(len(items) + parts, "input", max_items)
    return items


def implied_type(item: dict[str, Any]) -> str:
    """A bare {"role", "content"} is shorthand for a message item; a bare {"id"}, for an item reference."""
    return "item_reference" if "id" in item and "role" not in item and "content" not in item else "message"


async def resolve_item_references(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each `item_reference` replaced by the stored item it names (docs/responses.md); one not stored is a 400."""
    references = {position: item.get("id") for position, item in enumerate(items) if item["type"] == "item_reference"}
    if not references:
        return items
    for position, item_id in references.items():
        if not isinstance(item_id, str) or not item_id:
            raise OpenAIError(400, "An item_reference needs the 'id' of a stored item.", param=f"input[{position}].id")
    wanted = list(dict.fromkeys(references.values()))
    stored = await state().get_items(wanted)
    if missing := [item_id for item_id in wanted if item_id not in stored]:
        stored |= await state().find_conversation_items(missing)
    for position, item_id in references.items():
        if item_id not in stored:
            message = (
                f"Item with id '{item_id}' not found. Items are kept with the stored response or the conversation "
                "that holds them: not with store: false, and not once that is deleted or has expired."
            )
            raise OpenAIError(400, message, param=f"input[{position}]")
    return [stored[item["id"]] if item["type"] == "item_reference" else item for item in items]


def validate_fields(body: dict[str, Any]) -> None:
    """The fields besides `input` that the service uses or echoes in the response object."""
    check_sampling(body)
    optional_number(body, "max_output_tokens", low=1, integer=True)
    optional_number(body, "max_tool_calls", low=1, integer=True)
    optional_string(body, "instructions")
    optional_string(body, "previous_response_id")
    optional_bool(body, "store")
    optional_bool(body, "parallel_tool_calls")
    check_text(body)
    check_reasoning(body)
    check_tools(body, nested=False)
    check_tool_choice(body, nested=False)
    if body.get("truncation") not in (None, "auto", "disabled"):
        raise OpenAIError(400, "'truncation' must be 'auto' or 'disabled'.", param="truncation")
    for field, why in UNSUPPORTED.items():
        if body.get(field) not in (None, False):
            raise OpenAIError(400, f"'{field}' is not supported here: {why}", param=field, code="unsupported_parameter")


# Fields that would change what a response means, which this service cannot honour: refused, not ignored.
UNSUPPORTED = {
    "prompt": "there are no stored prompt templates here; send instructions and input.",
}


def state() -> StateStore:
    return services().state


def background_runs() -> BackgroundRuns:
    return services().background


async def previous_response(response_id: str) -> StoredResponse | None:
    """The response a turn continues: as this process saved it, if it is the last of its chain here and the store
    still has it (no conversation read back and decoded), else from the store."""
    app_services = services()
    kept = app_services.recent.recall(response_id)
    if kept is not None and await app_services.state.has_response(response_id):
        return kept
    app_services.recent.forget(response_id)
    return await app_services.state.get_response(response_id)


async def stored_or_404(response_id: str) -> StoredResponse:
    stored = await state().get_response(response_id)
    if stored is None:
        raise OpenAIError(404, f"No response with id '{response_id}' is stored.", param="response_id")
    return stored


@blueprint.post("/responses")
async def create_response() -> Response:
    body = await read_json_object()
    app_services = services()
    settings = app_services.settings
    model = require_string(body, "model")
    input_items = normalise_input(body.get("input"), settings.max_input_items)
    compacting = bool(input_items) and input_items[-1]["type"] == "compaction_trigger"
    if compacting:  # Codex's remote compaction: the answer is one `compaction` item for the whole conversation
        input_items = input_items[:-1]
    validate_fields(body)
    mcp_servers = remote_servers(body, settings.mcp_server_urls)
    wants_stream = optional_bool(body, "stream")
    input_items = await expand_compactions(await resolve_item_references(input_items))
    in_background = optional_bool(body, "background")
    if in_background and body.get("store") is False:
        raise OpenAIError(400, "A background response must be stored: 'background' needs 'store' true.", param="store")
    turn = await start_turn(body, input_items)  # with `conversation`: its items come first, the new ones after
    previous_id = body.get("previous_response_id")
    history: History | None = None  # which of the input items the store holds already
    if turn is not None:
        input_items = turn.input_items
        history = History("conversation", turn.conversation_id, len(turn.history))
    elif previous_id is not None:
        previous = await previous_response(previous_id) if isinstance(previous_id, str) else None
        if previous is None and isinstance(previous_id, str) and await state().get_run(previous_id) is not None:
            message = f"Previous response with id '{previous_id}' is still running in the background."
            raise OpenAIError(400, message, param="previous_response_id", code="previous_response_in_progress")
        if previous is None:
            raise OpenAIError(
                400,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        input_items = [*previous.input_items, *previous.response["output"], *input_items]
        history = History("response", previous_id, len(previous.input_items) + len(previous.response["output"]))
    check_approvals(input_items, mcp_servers, model)
    await check_not_run_elsewhere(input_items, {server.label for server in mcp_servers} | {model}, state().get_items)
    registry = app_services.registry
    wrapper, method_name = registry.find(model, "responses")
    note_model(wrapper.model_id)
    fitted = fit_context(wrapper, input_items, body)
    if fitted is not input_items:  # turns were dropped: the first items are no longer the history's
        input_items, history = fitted, None

    remember_request("responses", request.headers, body, g.get("api_key_name"))  # the run inherits it
    if compacting:
        return await answer_compaction(wrapper, method_name, model, input_items, body, wants_stream)
    if in_background:
        return await start_in_background(model, input_items, body, wants_stream, turn, history)
    runner = app_services.runner
    method = with_remote_mcp(runner, getattr(wrapper.instance, method_name), body, settings)
    encoder = ResponseEncoder(response_object(model, body), emit=wants_stream, namespaced=namespaced_functions(body))
    store = state()  # the stream's last events are sent outside the app context

    stored = body.get("store", True) is not False
    recent = app_services.recent

    async def save() -> None:
        """Kept before the client hears it is complete, so its next request finds it, on any replica."""
        if turn is not None:
            await turn.append(encoder.response)
        if stored:
            saved = StoredResponse(encoder.response, input_items, history)
            if await store.save_response(encoder.response["id"], saved):
                recent.remember(encoder.response["id"], saved)

    on_finish = save if stored or turn is not None else None
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


async def answer_compaction(
    wrapper: LoadedWrapper,
    method_name: str,
    model: str,
    input_items: list[dict[str, Any]],
    body: dict[str, Any],
    wants_stream: bool,
) -> Response:
    """A response whose only output is the conversation's `compaction` item (its summary stored first, as
    `/v1/responses/compact` does); streamed as one piece once the summary is written."""
    encoder = ResponseEncoder(response_object(model, body), emit=wants_stream, namespaced=namespaced_functions(body))
    item, usage = await stored_compaction(wrapper, method_name, model, input_items, body, encoder.response["id"])
    text = encoder.start() + encoder.add_item(item) + encoder.encode([usage] if usage else []) + encoder.finish()
    if not wants_stream:
        return json_response(encoder.response)

    async def whole() -> AsyncIterator[str]:
        yield text

    return sse_response(whole())


async def start_in_background(
    model: str,
    input_items: list[dict[str, Any]],
    body: dict[str, Any],
    wants_stream: bool,
    turn: Turn | None,
    history: History | None,
) -> Response:
    """Record the run and start it; answer with the response as it stands (`queued`), or follow its events."""
    response = response_object(model, body)
    conversation = None if turn is None else turn.record()
    await background_runs().start(response, model, input_items, body, conversation, history)
    if not wants_stream:
        return json_response(response)
    return sse_response(background_runs().follow(response["id"], -1))


@blueprint.get("/responses/<response_id>")
async def get_response(response_id: str) -> Response:
    """The response as it stands; a background one still running from its run's record. `stream=true` replays
    a background response's events after `starting_after`, then follows them live to the last."""
    run = await state().get_run(response_id)
    response = run.response if run is not None else (await stored_or_404(response_id)).response
    if request.args.get("stream", "false").lower() != "true":
        return jsonify(response)
    if not response.get("background"):
        message = "Only a background response can be streamed again: this one was not created with 'background'."
        raise OpenAIError(400, message, param="stream")
    after = request.args.get("starting_after", "-1")
    if not after.lstrip("-").isdigit():
        raise OpenAIError(400, "'starting_after' must be an integer.", param="starting_after")
    return sse_response(background_runs().follow(response_id, int(after)))


@blueprint.post("/responses/<response_id>/cancel")
async def cancel_response(response_id: str) -> Response:
    """Cancel a background response wherever it runs; one that already ended is answered as it is."""
    cancelled = await background_runs().cancel(response_id)
    if cancelled is not None:
        return jsonify(cancelled)
    stored = await stored_or_404(response_id)
    if not stored.response.get("background"):
        raise OpenAIError(400, "Only a background response can be cancelled.", param="response_id")
    return jsonify(stored.response)


@blueprint.get("/responses/<response_id>/input_items")
async def list_input_items(response_id: str) -> Response:
    run = await state().get_run(response_id)  # a background response still running has its input there
    input_items = run.request["input_items"] if run is not None else (await stored_or_404(response_id)).input_items
    items = [{"id": item.get("id") or f"item_{index}", **item} for index, item in enumerate(input_items)]
    return list_page(items, has_more=False)


@blueprint.delete("/responses/<response_id>")
async def delete_response(response_id: str) -> Response:
    if await state().get_run(response_id) is not None:
        message = "The response is still running in the background: cancel it first."
        raise OpenAIError(400, message, param="response_id")
    services().recent.forget(response_id)
    if not await state().delete_response(response_id):
        raise OpenAIError(404, f"No response with id '{response_id}' is stored.", param="response_id")
    return jsonify({"id": response_id, "object": "response", "deleted": True})

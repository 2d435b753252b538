"""`/v1/conversations` (and `/conversations`): conversations and their items, kept in the state store.

A conversation is a list of items that `POST /v1/responses` continues when a request names it (`conversation`):
its items come before the request's input, and once the response has ended, the input and the output are
appended to it in one write (`runs/conversation_turns.py`). Clients may also add, list and delete items themselves.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import time
from typing import Any

from quart import Blueprint, Response, jsonify, request

from ..http.errors import OpenAIError
from ..parsing.conversation_items import conversation_items
from ..parsing.paging import int_arg, list_page, order_arg
from ..parsing.request_body import optional_metadata, read_json_object
from ..runs.conversation_turns import (
    conversation_not_found,
    item_not_found,
    refusal_explained,
)
from ..services import services
from ..state import StateStore, StoredConversation
from ..wire.ids import new_id

blueprint = Blueprint("conversations", __name__)

MAX_ITEMS_PER_REQUEST = 20  # OpenAI's bound on the items one request adds
DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT = 20, 100
# What OpenAI's `include` may ask for; none of it exists here, so it is checked and nothing is added.
INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)


def state() -> StateStore:
    return services().state


def new_items(body: dict[str, Any], *, required: bool) -> list[dict[str, Any]]:
    raw = body.get("items")
    if raw is None and not required:
        return []
    if isinstance(raw, list) and len(raw) > MAX_ITEMS_PER_REQUEST:
        message = f"'items' holds {len(raw)} items; add at most {MAX_ITEMS_PER_REQUEST} at a time."
        raise OpenAIError(400, message, param="items", code="invalid_value")
    return conversation_items(raw, "items")


def check_include() -> None:
    for value in request.args.getlist("include") + request.args.getlist("include[]"):
        if value not in INCLUDABLE:
            raise OpenAIError(400, f"'include' may hold {', '.join(INCLUDABLE)}.", param="include")


# --- conversations ---


@blueprint.post("/conversations")
async def create_conversation() -> Response:
    body = await read_json_object(optional=True)
    metadata = optional_metadata(body) or {}
    items = new_items(body, required=False)
    conversation = StoredConversation(new_id("conv_"), int(time.time()), metadata)
    with refusal_explained("items", services().settings):
        await state().create_conversation(conversation, items)
    return jsonify(conversation.to_openai())


@blueprint.get("/conversations/<conversation_id>")
async def retrieve_conversation(conversation_id: str) -> Response:
    return jsonify((await conversation_or_404(conversation_id)).to_openai())


@blueprint.post("/conversations/<conversation_id>")
async def update_conversation(conversation_id: str) -> Response:
    """The metadata is replaced whole, as OpenAI does; `null` clears it."""
    body = await read_json_object()
    if "metadata" not in body:
        raise OpenAIError(400, "'metadata' is required.", param="metadata")
    updated = await state().update_conversation(conversation_id, optional_metadata(body) or {})
    if updated is None:
        raise conversation_not_found(conversation_id)
    return jsonify(updated.to_openai())


@blueprint.delete("/conversations/<conversation_id>")
async def delete_conversation(conversation_id: str) -> Response:
    if not await state().delete_conversation(conversation_id):
        raise conversation_not_found(conversation_id)
    return jsonify({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


# --- items ---


@blueprint.post("/conversations/<conversation_id>/items")
async def create_items(conversation_id: str) -> Response:
    check_include()
    items = new_items(await read_json_object(), required=True)
    with refusal_explained("items", services().settings):
        if not await state().add_conversation_items(conversation_id, items):
            raise conversation_not_found(conversation_id)
    return list_page(items, has_more=False)


@blueprint.get("/conversations/<conversation_id>/items")
async def list_items(conversation_id: str) -> Response:
    """Newest first by default; `after` is the last id of the previous page, as the SDK's auto-pager sends it."""
    check_include()
    limit = int_arg("limit", default=DEFAULT_LIST_LIMIT, low=1, high=MAX_LIST_LIMIT)
    order = order_arg()
    after = request.args.get("after") or None
    store = state()
    if after is not None and await store.get_conversation_item(conversation_id, after) is None:
        if await store.get_conversation(conversation_id) is None:
            raise conversation_not_found(conversation_id)
        raise OpenAIError(400, f"'after' names no item of this conversation: {after}.", param="after")
    items = await store.list_conversation_items(conversation_id, order=order, after=after, limit=limit + 1)
    if items is None:
        raise conversation_not_found(conversation_id)
    return list_page(items[:limit], has_more=len(items) > limit)


@blueprint.get("/conversations/<conversation_id>/items/<item_id>")
async def retrieve_item(conversation_id: str, item_id: str) -> Response:
    check_include()
    item = await state().get_conversation_item(conversation_id, item_id)
    if item is None:
        await conversation_or_404(conversation_id)
        raise item_not_found(item_id)
    return jsonify(item)


@blueprint.delete("/conversations/<conversation_id>/items/<item_id>")
async def delete_item(conversation_id: str, item_id: str) -> Response:
    """Answers with the conversation, as OpenAI does."""
    store = state()
    if not await store.delete_conversation_item(conversation_id, item_id):
        await conversation_or_404(conversation_id)
        raise item_not_found(item_id)
    return jsonify((await conversation_or_404(conversation_id)).to_openai())


async def conversation_or_404(conversation_id: str) -> StoredConversation:
    conversation = await state().get_conversation(conversation_id)
    if conversation is None:
        raise conversation_not_found(conversation_id)
    return conversation

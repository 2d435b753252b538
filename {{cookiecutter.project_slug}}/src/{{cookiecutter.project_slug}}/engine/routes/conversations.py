"""`/v1/conversations` (and `/conversations`): conversations and their items, kept in the state store.

A conversation is a list of items that `POST /v1/responses` continues when a request names it (`conversation`):
its items come before the request's input, and once the response has ended, the input and the output are
appended to it in one write (`Turn` below). Clients may also add, list and delete items themselves.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from ..http.errors import OpenAIError
from ..parsing.paging import int_arg, list_page, order_arg
from ..parsing.request_body import optional_metadata, read_json_object
from ..settings import Settings
from ..state import ConversationFull, DuplicateItem, StateStore, StoredConversation
from ..wire.ids import new_id
from .conversation_items import conversation_items

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
    return current_app.extensions["state"]


def service_settings() -> Settings:
    return current_app.config["SETTINGS"]


def conversation_not_found(conversation_id: str, param: str = "conversation_id") -> OpenAIError:
    return OpenAIError(404, f"Conversation with id '{conversation_id}' not found.", param=param)


def item_not_found(item_id: str) -> OpenAIError:
    return OpenAIError(404, f"Item with id '{item_id}' not found.", param="item_id")


def duplicate_item(item_id: str, param: str) -> OpenAIError:
    message = f"Duplicate item found with id {item_id}. Remove duplicate items from your input and try again."
    return OpenAIError(400, message, param=param, code="duplicate_item")


@contextmanager
def refusal_explained(param: str, settings: Settings) -> Iterator[None]:
    """A write the store refused (an id it holds, a conversation grown too large) in OpenAI's envelope."""
    try:
        yield
    except DuplicateItem as duplicate:
        raise duplicate_item(duplicate.item_id, param) from None
    except ConversationFull:
        raise conversation_full(param, settings) from None


def conversation_full(param: str, settings: Settings) -> OpenAIError:
    """A conversation's bounds are those of one request's input (see `state.store_limits`)."""
    message = (
        f"The conversation would hold more than {settings.max_input_items} items (MAX_INPUT_ITEMS) or "
        f"{settings.max_body_bytes} bytes of them (MAX_BODY_BYTES); start a new conversation."
    )
    return OpenAIError(400, message, param=param, code="conversation_too_large")


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


@blueprint.post("/v1/conversations")
@blueprint.post("/conversations")
async def create_conversation() -> Response:
    body = await read_json_object(optional=True)
    metadata = optional_metadata(body) or {}
    items = new_items(body, required=False)
    conversation = StoredConversation(new_id("conv_"), int(time.time()), metadata)
    with refusal_explained("items", service_settings()):
        await state().create_conversation(conversation, items)
    return jsonify(conversation.to_openai())


@blueprint.get("/v1/conversations/<conversation_id>")
@blueprint.get("/conversations/<conversation_id>")
async def retrieve_conversation(conversation_id: str) -> Response:
    return jsonify((await conversation_or_404(conversation_id)).to_openai())


@blueprint.post("/v1/conversations/<conversation_id>")
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


@blueprint.delete("/v1/conversations/<conversation_id>")
@blueprint.delete("/conversations/<conversation_id>")
async def delete_conversation(conversation_id: str) -> Response:
    if not await state().delete_conversation(conversation_id):
        raise conversation_not_found(conversation_id)
    return jsonify({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


# --- items ---


@blueprint.post("/v1/conversations/<conversation_id>/items")
@blueprint.post("/conversations/<conversation_id>/items")
async def create_items(conversation_id: str) -> Response:
    check_include()
    items = new_items(await read_json_object(), required=True)
    with refusal_explained("items", service_settings()):
        if not await state().add_conversation_items(conversation_id, items):
            raise conversation_not_found(conversation_id)
    return list_page(items, has_more=False)


@blueprint.get("/v1/conversations/<conversation_id>/items")
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


@blueprint.get("/v1/conversations/<conversation_id>/items/<item_id>")
@blueprint.get("/conversations/<conversation_id>/items/<item_id>")
async def retrieve_item(conversation_id: str, item_id: str) -> Response:
    check_include()
    item = await state().get_conversation_item(conversation_id, item_id)
    if item is None:
        await conversation_or_404(conversation_id)
        raise item_not_found(item_id)
    return jsonify(item)


@blueprint.delete("/v1/conversations/<conversation_id>/items/<item_id>")
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


# --- a response in a conversation ---


@dataclass
class Turn:
    """A response's place in a conversation: the items it reads before its run, and what it adds after."""

    store: StateStore  # the stream's last events are sent outside the app context: what they need is kept here
    settings: Settings
    conversation_id: str
    history: list[dict[str, Any]]  # the conversation's items, oldest first
    new_items: list[dict[str, Any]]  # this request's input, with ids

    @property
    def input_items(self) -> list[dict[str, Any]]:
        return [*self.history, *self.new_items]

    def record(self) -> dict[str, Any]:
        """What a background run keeps of its turn, to add it when the run ends (`end_background_turn`)."""
        return {"id": self.conversation_id, "history_length": len(self.history)}

    async def append(self, response: dict[str, Any]) -> None:
        """Once the response has ended (completed or incomplete): its input and its output, in one write."""
        items = [*self.new_items, *response["output"]]
        with refusal_explained("conversation", self.settings):
            added = await self.store.add_conversation_items(self.conversation_id, items)
        if not added:
            raise conversation_not_found(self.conversation_id, "conversation")  # deleted during the run


async def end_background_turn(
    store: StateStore, settings: Settings, request: dict[str, Any], response: dict[str, Any]
) -> None:
    """A background run in a conversation adds its input and output once it has ended, as a foreground one does
    (on whichever process ends it)."""
    record = request.get("conversation")
    if record is not None:
        new_items = request["input_items"][record["history_length"] :]
        await Turn(store, settings, record["id"], [], new_items).append(response)


async def start_turn(body: dict[str, Any], input_items: list[dict[str, Any]]) -> Turn | None:
    """The turn a request's `conversation` (an id, or `{"id": ...}`) asks for; None when it names none."""
    reference = body.get("conversation")
    if reference is None:
        return None
    conversation_id = reference.get("id") if isinstance(reference, dict) else reference
    if not isinstance(conversation_id, str) or not conversation_id:
        raise OpenAIError(400, "'conversation' must be an id or an object with an 'id'.", param="conversation")
    if body.get("previous_response_id") is not None:
        message = (
            "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or "
            "'conversation'."
        )
        raise OpenAIError(400, message, param="conversation", code="mutually_exclusive_parameters")
    new = conversation_items(input_items, "input")
    store = state()
    history = await store.list_conversation_items(conversation_id, order="asc", after=None, limit=None)
    if history is None:
        raise conversation_not_found(conversation_id, "conversation")
    held = {item["id"] for item in history}
    if repeated := next((item["id"] for item in new if item["id"] in held), None):
        raise duplicate_item(repeated, "input")
    if len(history) + len(new) > service_settings().max_input_items:
        raise conversation_full("conversation", service_settings())
    return Turn(store, service_settings(), conversation_id, history, new)

"""A response's turn in a conversation: the items it reads before its run, and what it appends after.

The template's file, updated by `cruft update`. `POST /v1/responses` starts a turn when a request names a
`conversation`; the conversations routes share its errors. A background run appends its turn when it ends, on
whichever process ends it (`end_background_turn`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..http.errors import OpenAIError
from ..parsing.conversation_items import conversation_items
from ..services import services
from ..settings import Settings
from ..state import ConversationFull, DuplicateItem, StateStore


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
    store = services().state
    history = await store.list_conversation_items(conversation_id, order="asc", after=None, limit=None)
    if history is None:
        raise conversation_not_found(conversation_id, "conversation")
    held = {item["id"] for item in history}
    if repeated := next((item["id"] for item in new if item["id"] in held), None):
        raise duplicate_item(repeated, "input")
    if len(history) + len(new) > services().settings.max_input_items:
        raise conversation_full("conversation", services().settings)
    return Turn(store, services().settings, conversation_id, history, new)

"""What fits a wrapper's LLM: a chain too long for it is truncated (`truncation: "auto"`) or refused.

A Responses request grows with its `previous_response_id` chain or its `conversation`. A wrapper says what its LLM
can take (`context_window` on its class, in tokens; see `base_wrapper.py`), else the `CONTEXT_WINDOW` setting does,
and with neither nothing is cut here. The input is measured by an estimate, without a tokenizer: characters / 4 of
its text (instructions and tools included), 1,000 tokens for each image or file, 4 more for each item. Room for the
answer is kept when the request sets `max_output_tokens`.

Too long, and `truncation` is `"disabled"` (OpenAI's default): a 400 `context_length_exceeded` naming the limit and
the estimate, as OpenAI answers, so nothing is dropped silently. With `"auto"`: the oldest items go first, whole
turns (a user message and what answered it), then the oldest tool steps of the newest turn, until the rest fits.
System and developer messages and the newest user message always stay, and so do the newest items; a tool call
never loses its output, nor a reasoning item what followed it. When even that does not fit: the same 400.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
import math
from typing import Any

from ..http.errors import OpenAIError
from ..services import services
from .registry import LoadedWrapper

CHARS_PER_TOKEN = 4
ATTACHMENT_TOKENS = 1_000  # an image or a file: what is in it is not read here, only counted
ITEM_TOKENS = 4  # what a chat template adds around each message
ATTACHMENT_TYPES = {"input_image", "input_file", "image_url", "file"}
NOT_TEXT = {"id", "type", "role", "status", "call_id", "encrypted_content"}  # never shown to an LLM as text
PINNED_ROLES = {"system", "developer"}


def fit_context(wrapper: LoadedWrapper, items: list[dict[str, Any]], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The input the wrapper runs on: `items` itself (the same list) when it fits, else a shorter new list
    (`truncation: "auto"`), else a 400."""
    window = context_window_of(wrapper)
    if window is None:
        return items
    reserved = body.get("max_output_tokens") or 0
    budget = window - reserved
    fixed = request_tokens(body)
    costs = [item_tokens(item) for item in items]
    total = fixed + sum(costs)
    if total <= budget:
        return items
    if body.get("truncation") != "auto":
        raise too_long(wrapper, window, reserved, total, truncated=False)
    pinned = pinned_positions(items)
    dropped, start = 0, 0
    for cut in cut_points(items):
        dropped += sum(costs[i] for i in range(start, cut) if i not in pinned)
        start = cut
        if total - dropped <= budget:
            return [item for i, item in enumerate(items) if i >= cut or i in pinned]
    raise too_long(wrapper, window, reserved, total - dropped, truncated=True)


def context_window_of(wrapper: LoadedWrapper) -> int | None:
    """The wrapper's own `context_window`, else the CONTEXT_WINDOW setting; None when neither is set."""
    declared = getattr(wrapper.instance, "context_window", None)
    if declared is None:
        return services().settings.context_window
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 1:
        raise TypeError(f"Wrapper {wrapper.model_id!r}: context_window must be a positive int (tokens) or None")
    return declared


def item_tokens(item: dict[str, Any]) -> int:
    """An item's estimate: its text's characters / 4, rounded up, and what a chat template adds around it."""
    return ITEM_TOKENS + math.ceil(text_characters(item) / CHARS_PER_TOKEN)


def request_tokens(body: dict[str, Any]) -> int:
    """What the request adds besides its items: its instructions and its tools' definitions."""
    instructions = body.get("instructions")
    tools = body.get("tools")
    characters = len(instructions) if isinstance(instructions, str) else 0
    characters += len(json.dumps(tools)) if tools else 0
    return math.ceil(characters / CHARS_PER_TOKEN)


def text_characters(value: Any) -> int:
    """Characters of the text in an item, its content parts, call arguments and outputs; an attachment at a fixed count."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(text_characters(part) for part in value)
    if not isinstance(value, dict):
        return 0
    if value.get("type") in ATTACHMENT_TYPES:
        return ATTACHMENT_TOKENS * CHARS_PER_TOKEN
    return sum(text_characters(part) for key, part in value.items() if key not in NOT_TEXT)


def pinned_positions(items: list[dict[str, Any]]) -> set[int]:
    """Items never dropped: system and developer messages, and the newest user message."""
    pinned = {i for i, item in enumerate(items) if is_message(item) and item.get("role") in PINNED_ROLES}
    newest_user = newest_user_message(items)
    return pinned if newest_user is None else pinned | {newest_user}


def cut_points(items: list[dict[str, Any]]) -> list[int]:
    """Where the kept items may begin, oldest first: what goes before a cut can be dropped without breaking the rest.

    Before the newest user message, only at a user message (whole turns go); after it, between any two items.
    Never between a tool call and its output, nor after a reasoning item. The newest items always stay.
    """
    newest_user = newest_user_message(items)
    spanned = [0] * (len(items) + 1)  # > 0 where a cut would part a call from its output
    calls: dict[str, int] = {}
    for position, item in enumerate(items):
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            continue
        if not str(item.get("type", "")).endswith("_output"):
            calls.setdefault(call_id, position)
        elif call_id in calls:
            spanned[calls[call_id] + 1] += 1
            spanned[position + 1] -= 1
    cuts, open_calls = [], 0
    for position in range(1, len(items)):
        open_calls += spanned[position]
        in_history = newest_user is not None and position <= newest_user
        if open_calls or items[position - 1].get("type") == "reasoning":
            continue
        if not in_history or is_user_message(items[position]):
            cuts.append(position)
    return cuts


def newest_user_message(items: list[dict[str, Any]]) -> int | None:
    return next((i for i in range(len(items) - 1, -1, -1) if is_user_message(items[i])), None)


def is_message(item: dict[str, Any]) -> bool:
    return item.get("type", "message") == "message"


def is_user_message(item: dict[str, Any]) -> bool:
    return is_message(item) and item.get("role") == "user"


def too_long(wrapper: LoadedWrapper, window: int, reserved: int, estimate: int, truncated: bool) -> OpenAIError:
    """OpenAI's answer to an input too long for the model: 400 `context_length_exceeded` on `input`."""
    takes = f"{window} tokens" + (f", less max_output_tokens {reserved} kept for the answer" if reserved else "")
    if truncated:
        message = (
            f"Your input exceeds the context window of model '{wrapper.model_id}' even truncated: its newest turn, "
            f"system messages, instructions and tools alone are about {estimate} tokens (estimated: characters / 4) "
            f"where it takes {takes}. Send a shorter input or instructions, or a lower max_output_tokens."
        )
    else:
        message = (
            f"Your input exceeds the context window of model '{wrapper.model_id}': about {estimate} tokens "
            f"(estimated: characters / 4) where it takes {takes}. Send truncation: 'auto' to drop the oldest "
            "turns, compact the conversation, or start a new one."
        )
    return OpenAIError(400, message, param="input", code="context_length_exceeded")

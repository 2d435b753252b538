"""Compaction: a long conversation shortened to its user messages and one `compaction` item standing for the rest.

`POST /v1/responses/compact` (`routes/compaction.py`) calls `compact`: the wrapper writes a summary of the conversation
(its own `run_compaction`, or else its Responses method asked to summarise), the summary is kept in the state store as
a stored response whose input is the summary (one message, whose id is the compaction's with `_summary` after it) and
whose output is the `compaction` item the client gets, its `encrypted_content` naming it. When a later
`POST /v1/responses` sends the item back, `expand_compactions` finds the summary in the store (by the item's `id` or
its `encrypted_content`, from any replica) and puts it in its place, so the wrapper sees a message holding the
summary where the older turns were.

OpenAI keeps a conversation's user messages verbatim and replaces everything else (assistant messages, tool calls and
their outputs, reasoning, an earlier compaction) by the compaction item; so does this module.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import time
from typing import Any

from ..http.errors import OpenAIError
from ..parsing.conversation_items import conversation_item
from ..services import services
from ..state import StoredResponse
from ..wire.ids import new_id
from ..wire.responses import usage_object
from ..wire.sse import error_response
from .context_window import fit_context
from .events import Event, StreamError, TextDelta, Usage
from .registry import LoadedWrapper
from .token_usage import add_usage

SUMMARY_SUFFIX = "_summary"  # the stored summary's id: the compaction item's, with this after it
SUMMARY_PREFIX = "Summary of the earlier part of this conversation (compacted):\n\n"
# What a wrapper without `run_compaction` is asked, as the last user message after the conversation.
SUMMARY_REQUEST = (
    "Summarise the conversation above for whoever continues it: the task and the user's goals and constraints, "
    "what was done and decided, facts, names, files and results that still matter, and what remains to do. "
    "Write only the summary, as plain text."
)
# The request fields a summary run keeps: the client's tools and output format would turn it into something else.
SUMMARY_BODY_FIELDS = ("model", "instructions", "metadata", "safety_identifier", "user")
COMPACTION_METHODS = ("run_compaction_async", "run_compaction")


def kept_verbatim(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user messages of the conversation, in order, as output items (an id and a status each), as OpenAI keeps
    them. `items` are the client's own: summaries of earlier compactions are not among them, the new summary covers
    those."""
    return [
        conversation_item(item, f"input[{position}]")
        for position, item in enumerate(items)
        if item.get("type") == "message" and item.get("role") == "user"
    ]


async def summarise(
    wrapper: LoadedWrapper, responses_method: str, model: str, items: list[dict[str, Any]], body: dict[str, Any]
) -> tuple[str, Usage | None]:
    """The wrapper's summary of `items`, and the tokens it took; a run that failed raises its error (as JSON)."""
    runner = services().runner
    own = next((name for name in COMPACTION_METHODS if wrapper.implements(name)), None)
    if own is not None:
        events = await runner.collect(getattr(wrapper.instance, own), model, items, body)
    else:
        request = {field: body[field] for field in SUMMARY_BODY_FIELDS if field in body}
        request |= {"input": items, "stream": False, "store": False, "truncation": "auto"}
        asked = [
            *items,
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": SUMMARY_REQUEST}]},
        ]
        asked = fit_context(wrapper, asked, request)  # the oldest turns go first when the LLM cannot take them all
        events = await runner.collect(getattr(wrapper.instance, responses_method), model, asked, request)
    return summary_of(events)


def summary_of(events: list[Event]) -> tuple[str, Usage | None]:
    """The text a run produced (its reasoning and tool calls are not the summary) and its token counts."""
    usage: Usage | None = None
    texts: list[str] = []
    for event in events:
        if isinstance(event, StreamError):
            raise error_response(event)
        if isinstance(event, TextDelta):
            texts.append(event.text)
        elif isinstance(event, Usage):
            usage = add_usage(usage, event)
    summary = "".join(texts).strip()
    if not summary:
        message = "The model wrote no summary of the conversation, so it was not compacted; send the whole input."
        raise OpenAIError(500, message, type="server_error", code="empty_summary", headers={"x-should-retry": "false"})
    return summary, usage


def summary_items(summary: str) -> list[dict[str, Any]]:
    """What a compaction item stands for in a wrapper's input: one user message holding the summary.

    A user message, because every wrapper reads those (some leave system messages out, or keep only their own).
    """
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": SUMMARY_PREFIX + summary}]}]


async def compact(
    wrapper: LoadedWrapper,
    responses_method: str,
    model: str,
    client_items: list[dict[str, Any]],
    items: list[dict[str, Any]],
    body: dict[str, Any],
) -> dict[str, Any]:
    """The CompactResource for a conversation: `client_items` as the client sent them (their user messages are kept),
    `items` the same with earlier compactions expanded (what the summary is written from). Stored before it is
    answered, so a later request on any replica finds it."""
    response_id = new_id("resp_")
    item, usage = await stored_compaction(wrapper, responses_method, model, items, body, response_id)
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept_verbatim(client_items), item],
        # Both specs require the counts here (no null); a run that reported none counts as 0.
        "usage": usage_object(usage or Usage()),
    }


async def stored_compaction(
    wrapper: LoadedWrapper,
    responses_method: str,
    model: str,
    items: list[dict[str, Any]],
    body: dict[str, Any],
    response_id: str,
) -> tuple[dict[str, Any], Usage | None]:
    """The `compaction` item for `items` as a client gets it, its summary stored (under `response_id`) first; and
    what writing the summary used. Also what `POST /v1/responses` answers to a trailing `compaction_trigger`."""
    summary, usage = await summarise(wrapper, responses_method, model, items, body)
    item_id = new_id("cmp_")
    item = {"id": item_id, "type": "compaction", "encrypted_content": item_id}
    record = {
        "id": response_id,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "model": model,
        "status": "completed",
        "output": [item],
    }
    summary_message = {"id": item_id + SUMMARY_SUFFIX, **summary_items(summary)[0]}
    if not await services().state.save_response(response_id, StoredResponse(record, [summary_message])):
        message = (
            "The summary could not be kept: the store keeps no responses this large (RESPONSES_STORE_BYTES) or none at "
            "all (RESPONSES_STORE_SIZE=0), and a compaction item is only usable while it is stored; send the whole input."
        )
        raise OpenAIError(
            500, message, type="server_error", code="compaction_not_stored", headers={"x-should-retry": "false"}
        )
    return item, usage


async def expand_compactions(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each `compaction` item replaced by the summary it stands for, found in the store by its `id` or its
    `encrypted_content` (which names it); one the store does not hold (never made here, or expired) is a 400."""
    wanted: list[str] = []
    for position, item in enumerate(items):
        if item.get("type") == "compaction":
            names = names_of(item)
            if not names:
                raise OpenAIError(400, "A compaction item needs its 'encrypted_content'.", param=f"input[{position}]")
            wanted += names
    if not wanted:
        return items
    stored = await services().state.get_items(list(dict.fromkeys(name + SUMMARY_SUFFIX for name in wanted)))
    expanded: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        if item.get("type") != "compaction":
            expanded.append(item)
            continue
        found = next(
            (stored[name + SUMMARY_SUFFIX] for name in names_of(item) if name + SUMMARY_SUFFIX in stored), None
        )
        if found is None:
            message = (
                "This compaction item is not stored here: it was made elsewhere, or it expired with its response "
                "(RESPONSES_TTL_SECONDS). Send the conversation again in full, or compact it again."
            )
            raise OpenAIError(400, message, param=f"input[{position}]", code="compaction_not_found")
        expanded.append(found)
    return expanded


def names_of(item: dict[str, Any]) -> list[str]:
    """What a compaction item may be found by: its `id`, and its `encrypted_content` (the id, from this service)."""
    return [name for name in (item.get("id"), item.get("encrypted_content")) if isinstance(name, str) and name]

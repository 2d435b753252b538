"""Paged lists, as OpenAI's list endpoints answer them: the query's `limit` and `order`, and the page object.

Files, a conversation's items and a response's input items are all listed this way, so that the SDKs'
auto-pagers (which send `after` = the last id of the page before) walk them alike.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any, cast

from quart import Response, jsonify, request

from ..http.errors import OpenAIError
from ..state.store import Order


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; anything else is a 400 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise OpenAIError(400, f"'{name}' must be an integer from {low} to {high}.", param=name)
    return value


def order_arg() -> Order:
    """The `order` query parameter: newest first (`desc`) unless the client asks for `asc`."""
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise OpenAIError(400, "'order' must be 'asc' or 'desc'.", param="order")
    return cast(Order, order)


def list_page(data: list[dict[str, Any]], *, has_more: bool) -> Response:
    """The page object: its objects (each with an `id`), the first and last ids, and whether more follow."""
    return jsonify(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )

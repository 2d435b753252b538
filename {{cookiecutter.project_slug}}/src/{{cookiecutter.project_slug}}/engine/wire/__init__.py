"""Encoding the service's answers for the wire: one module per API, plus server-sent events.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from quart import Response

from .json_text import compact_json


def json_response(payload: dict[str, Any]) -> Response:
    """A JSON answer, serialised directly: every non-streamed completion takes this path."""
    return Response(compact_json(payload), content_type="application/json")

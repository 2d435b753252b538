"""Encoding the service's answers for the wire: one module per API, plus server-sent events."""

import json
from typing import Any

from quart import Response


def json_response(payload: dict[str, Any]) -> Response:
    """A JSON answer, serialised directly: every non-streamed completion takes this path."""
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), content_type="application/json")

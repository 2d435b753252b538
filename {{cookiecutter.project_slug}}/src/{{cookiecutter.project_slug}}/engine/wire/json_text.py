"""JSON text as the service writes it, on the wire and into its stores: no spaces, non-ASCII kept as it is.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: Any) -> str:
    return _encoder.encode(value)

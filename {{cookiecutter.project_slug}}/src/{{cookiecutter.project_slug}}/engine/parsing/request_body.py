"""Reading a JSON request body and checking its fields, with OpenAI errors for what cannot be used.

Every field the service uses or echoes back is checked here first, so nothing a client sends reaches
a response unchecked: a number must be finite and in range, `metadata` is bounded as OpenAI bounds it.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import json
import json.scanner
import math
import threading
from typing import Any

from quart import request
from werkzeug.exceptions import RequestTimeout

from ..http.errors import OpenAIError


async def read_json_object(*, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; 400 for anything else, 413 (from Quart) when too large.

    `optional`: where the API makes the body optional, none at all is `{}`.
    """
    raw = await _body_bytes()
    if optional and not raw:
        return {}
    try:
        if len(raw) > LARGE_BODY_BYTES:
            body = await asyncio.to_thread(_parse_large, raw)
        else:
            body = _parse(raw)
    except _NotFinite as error:
        raise OpenAIError(
            400, f"The request body holds a number JSON cannot carry: {error}", code="invalid_json"
        ) from None
    except RecursionError:
        raise OpenAIError(400, "The request body is nested too deeply.", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError):
        raise OpenAIError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise OpenAIError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


async def _body_bytes() -> bytes:
    """`request.get_data(cache=False)` under the same `BODY_TIMEOUT`, without the task per call.

    `get_data` waits with `asyncio.wait_for`, which starts a task for every request body: ~4% of the
    server's CPU per non-streamed request in a profile. A timeout scope waits without one.
    """
    try:
        async with asyncio.timeout(request.body_timeout):
            raw = await request.body
    except TimeoutError:
        raise RequestTimeout() from None
    request.body.clear()  # the parsed body is all that is kept
    return raw


def require_string(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise OpenAIError(400, f"'{field}' is required and must be a non-empty string.", param=field)
    return value


def optional_bool(body: dict[str, Any], field: str) -> bool:
    """A boolean flag that may be absent or null (false)."""
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise OpenAIError(400, f"'{field}' must be a boolean.", param=field)
    return value


class _NotFinite(ValueError):
    """`1e999`, `NaN` or `Infinity` in a body: Python's parser takes them, JSON has no such numbers."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _refuse_constant(name: str) -> float:
    raise _NotFinite(name)


# `json.loads` with `parse_float` builds a decoder on every call: 13 µs for a small chat request, 5 with this one.
_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def _parse(raw: bytes) -> Any:
    """What `json.loads(raw, parse_float=..., parse_constant=...)` returns, with the decoder made once."""
    return _decoder.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


# Bodies larger than this are parsed in a worker thread by Python's own JSON scanner. The C scanner holds the
# GIL, and so the event loop, for the whole parse: 0.4 to 2.6 s for 32 MB of small objects, every other client
# waiting meanwhile. The Python scanner (strings still go through C) lets the loop run every few milliseconds
# (measured: 16 ms at most), at about 6 times the CPU; one parse at a time, so the loop keeps its share.
LARGE_BODY_BYTES = 1 << 20
_interruptible_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)
_interruptible_decoder.scan_once = json.scanner.py_make_scanner(_interruptible_decoder)  # type: ignore[attr-defined]
_one_large_parse = threading.Lock()


def _parse_large(raw: bytes) -> Any:
    with _one_large_parse:
        return _interruptible_decoder.decode(raw.decode("utf-8"))


def optional_number(
    body: dict[str, Any], field: str, *, low: float, high: float = math.inf, integer: bool = False
) -> float | None:
    """A number that may be absent or null; 400 naming `field` when it is not a number in [low, high]."""
    value = body.get(field)
    if value is None:
        return None
    kind = "an integer" if integer else "a number"
    is_number = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not is_number or not low <= value <= high:
        bounds = f"from {low:g} to {high:g}" if high != math.inf else f"of at least {low:g}"
        raise OpenAIError(400, f"'{field}' must be {kind} {bounds}.", param=field, code="invalid_value")
    return value


def optional_string(body: dict[str, Any], field: str, *, max_length: int | None = None) -> str | None:
    """A string that may be absent or null."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
        limit = f" of at most {max_length} characters" if max_length is not None else ""
        raise OpenAIError(400, f"'{field}' must be a string{limit}.", param=field, code="invalid_value")
    return value


# OpenAI's bounds for `metadata`.
METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512


def optional_metadata(body: dict[str, Any]) -> dict[str, str] | None:
    """`metadata`: at most 16 string pairs, keys up to 64 characters, values up to 512, as OpenAI allows."""
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > METADATA_PAIRS:
        raise OpenAIError(
            400,
            f"'metadata' must be an object of at most {METADATA_PAIRS} pairs.",
            param="metadata",
            code="invalid_value",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS or not isinstance(value, str) or len(value) > METADATA_VALUE_CHARS:
            message = (
                f"'metadata' keys must be at most {METADATA_KEY_CHARS} characters and its values strings of at most "
                f"{METADATA_VALUE_CHARS}."
            )
            raise OpenAIError(400, message, param=f"metadata.{key[:METADATA_KEY_CHARS]}", code="invalid_value")
    return metadata


def check_sampling(body: dict[str, Any]) -> None:
    """The sampling fields both APIs share, in OpenAI's ranges."""
    optional_number(body, "temperature", low=0, high=2)
    optional_number(body, "top_p", low=0, high=1)
    optional_number(body, "presence_penalty", low=-2, high=2)
    optional_number(body, "frequency_penalty", low=-2, high=2)
    optional_number(body, "top_logprobs", low=0, high=20, integer=True)
    optional_number(body, "seed", low=-(2**63), high=2**63 - 1, integer=True)
    optional_metadata(body)
    optional_string(body, "user")
    optional_string(body, "safety_identifier", max_length=64)
    optional_string(body, "prompt_cache_key")
    stop = body.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(item, str) for item in stop))
    ):
        raise OpenAIError(400, "'stop' must be a string or an array of at most 4 strings.", param="stop")


def check_item_count(count: int, field: str, limit: int) -> None:
    """Bound what one request may make the service convert: past MAX_INPUT_ITEMS, a 400 instead of a stall."""
    if count > limit:
        message = (
            f"'{field}' holds {count} items and content parts; this service takes at most {limit} (MAX_INPUT_ITEMS)."
        )
        raise OpenAIError(400, message, param=field, code="too_many_items")

"""What a client is told when a run fails, above all when the LLM server behind it failed.

A wrapper's LLM call fails with the `openai` SDK's errors, usually wrapped by Haystack (a pipeline raises
`PipelineRuntimeError` from the component's error). The client gets what helps it act:

- the LLM server rate-limits (429): 429 with the server's `Retry-After`, so the client waits and retries;
- the LLM server refuses the service's credentials (401, 403): 502, and one loud line in the log, since only
  the operator can fix `OPENAI_API_KEY` (the key itself is never shown);
- the LLM server refuses the request (another 4xx, e.g. a context overflow): 400 with the server's reason, and
  OpenAI's code `context_length_exceeded` for an overflow, which clients act on (by compacting the history);
- the LLM server fails, cannot be reached or times out: 502 or 504;
- anything else: 500, and the traceback in the server's log only.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
import os
import re
from functools import cache

import openai

from ..observability import metrics
from ..observability.request_tracking import see_the_server_log
from ..runs.events import StreamError

logger = logging.getLogger(__name__)

# The kinds of LLM server failure the metrics count (upstream_errors_total): the codes `_for_upstream` gives, with a
# refusal's own code (which the server chooses) counted as `upstream_rejected`.
UPSTREAM_KINDS = frozenset(
    {
        "upstream_timeout",
        "upstream_unavailable",
        "upstream_error",
        "rate_limit_exceeded",
        "upstream_authentication_failed",
        "context_length_exceeded",
        "upstream_rejected",
    }
)


def failure_event(error: BaseException, where: str) -> StreamError:
    """The StreamError for a run that raised `error`; logs it as its kind deserves."""
    upstream = _upstream_cause(error)
    if upstream is None:
        logger.error("Wrapper %s failed", where, exc_info=error)
        return StreamError(f"The pipeline failed ({type(error).__name__}); {see_the_server_log()}.")
    failure = _for_upstream(upstream)
    metrics.count_upstream_error(failure.code if failure.code in UPSTREAM_KINDS else "upstream_rejected")
    if failure.code == "upstream_authentication_failed":
        _log_refused_credentials(type(upstream).__name__)
    else:
        logger.warning("Wrapper %s: the LLM server failed: %s", where, failure.message)
    return failure


def _upstream_cause(error: BaseException) -> openai.APIError | None:
    """The SDK error behind `error`, following the chain of causes (Haystack wraps component errors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, openai.APIError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _for_upstream(error: openai.APIError) -> StreamError:
    if isinstance(error, openai.APITimeoutError):
        return StreamError("The LLM server did not answer in time.", code="upstream_timeout", status=504)
    if isinstance(error, openai.APIConnectionError):
        return StreamError("The LLM server could not be reached.", code="upstream_unavailable", status=502)
    if not isinstance(error, openai.APIStatusError):  # e.g. an error event in the middle of a stream
        return StreamError(f"The LLM server reported an error: {_reason(error)}", code="upstream_error", status=502)
    status = error.status_code
    if status == 429:
        retry_after = error.response.headers.get("retry-after")
        headers = {"x-should-retry": "true"} | ({"Retry-After": retry_after} if retry_after else {})
        message = "The LLM server is rate-limiting this service; retry later."
        return StreamError(message, type="rate_limit_error", code="rate_limit_exceeded", status=429, headers=headers)
    if status in (401, 403):
        message = "The LLM server refused this service's credentials; the operator must check OPENAI_API_KEY."
        return StreamError(message, code="upstream_authentication_failed", status=502)
    if 400 <= status < 500:
        message = f"The LLM server refused the request: {_reason(error)}"
        return StreamError(message, type="invalid_request_error", code=_refusal_code(error), status=400)
    return StreamError(f"The LLM server failed (HTTP {status}).", code="upstream_error", status=502)


# How servers say a prompt is too long for their context (OpenAI's code, llama.cpp's error type).
CONTEXT_OVERFLOW = {"context_length_exceeded", "exceed_context_size_error"}


def _refusal_code(error: openai.APIStatusError) -> str:
    """OpenAI's code for a context overflow, else the server's own string code (some send the HTTP status)."""
    body = error.body if isinstance(error.body, dict) else {}
    if {body.get("code"), body.get("type")} & CONTEXT_OVERFLOW:
        return "context_length_exceeded"
    code = body.get("code")
    return code if isinstance(code, str) and code else "upstream_rejected"


# What an LLM server's message may carry that no client should see: key-like tokens and addresses.
SECRET_LIKE = re.compile(r"\b(?:sk|pk|rk|key|token|api)[-_][A-Za-z0-9_\-]{6,}|\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def _reason(error: openai.APIError) -> str:
    """The LLM server's own message (from its error body when it sent one), with keys and URLs taken out."""
    body = error.body
    message = error.message
    if isinstance(body, dict):
        nested = body.get("error")
        found = nested.get("message") if isinstance(nested, dict) else body.get("message")
        if isinstance(found, str) and found:
            message = found
    key = os.environ.get("OPENAI_API_KEY", "")
    if len(key) >= 8:  # a dummy key for a local server ("x") is no secret, and replacing it would mangle the text
        message = message.replace(key, "[redacted]")
    return SECRET_LIKE.sub("[redacted]", message)


@cache
def _log_refused_credentials(kind: str) -> None:
    """Once per process: every request fails the same way until the operator fixes the key."""
    logger.error(
        "The LLM server refused the service's credentials (%s): check OPENAI_API_KEY (and OPENAI_BASE_URL). "
        "Every request that calls the LLM fails until it is fixed.",
        kind,
    )

"""What a client is told when a run fails, above all when the LLM server behind it failed.

The rule, on every path (a non-streamed or a streamed answer, Chat Completions or Responses, a sync or an async
wrapper; an HTTP status, an error event in the middle of a stream, an exception of the SDK or its HTTP library,
or any of these wrapped by Haystack):

- A server-side failure (a 5xx, an error event mid-stream, a connection refused or cut, a timeout, an answer that is
  not valid JSON, refused credentials) is described to the client by its kind only, e.g. `The LLM server failed
  (error event mid-stream); see the server log for request req_…`. The LLM server's own words, which may name its
  hosts, paths or accounts, go to the server log on a line that carries the request id, never to the client.
- A refusal the client caused (a 4xx, e.g. a context overflow) keeps the server's reason, since the client must act
  on it: cleaned of anything key-, URL-, host-, IP- or path-shaped, and cut to REASON_LIMIT characters.

Each fault has one answer (status, code, `x-should-retry`, `Retry-After`), whichever wrapper kind met it
(the table in docs/api.md, "When the LLM server fails"):

- timed out (OPENAI_TIMEOUT): 504 `upstream_timeout`;
- connection refused or cut: 502 `upstream_unavailable`;
- a 5xx, an error event mid-stream, an answer that is not valid JSON: 502 `upstream_error`;
- refused credentials (401, 403): 502 `upstream_authentication_failed`, and one loud line in the log;
- rate-limited (429): 429 `rate_limit_exceeded`, with `x-should-retry: true` and the server's `Retry-After`;
- another 4xx: 400 with the server's cleaned reason, code `context_length_exceeded` for a context overflow, else
  the server's own string code, else `upstream_rejected`;
- anything else: 500, and the traceback in the server's log only.

All but the 429 say `x-should-retry: false`: the service already retried what a retry can fix (OPENAI_MAX_RETRIES),
and a client SDK retrying a 504 twice more would hold its user three times as long.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import importlib
import logging
import os
import re
from functools import cache
from typing import Any

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

# How much of a refusal's reason a client gets; how much of the server's own words one log line holds.
REASON_LIMIT = 200
LOG_DETAIL_LIMIT = 2000


def _http_errors(attribute: str) -> tuple[type[Exception], ...]:
    """One exception class of each HTTP library the SDK may use: httpx2 (openai 3's own), and httpx (a client given
    to Haystack's `http_client_kwargs`). The SDK raises them as they are while a response body is read line by line."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(getattr(importlib.import_module(name), attribute))
        except ImportError:
            continue
    return tuple(found)


TRANSPORT_ERRORS = _http_errors("TransportError")
TIMEOUT_ERRORS = _http_errors("TimeoutException")
CONNECT_ERRORS = _http_errors("ConnectError")


def as_api_error(error: Exception, request: Any) -> openai.APIError | None:
    """The SDK's error for an HTTP library's error met while reading an answer (a stall, a cut), else None."""
    if isinstance(error, TIMEOUT_ERRORS):
        return openai.APITimeoutError(request=request)
    if isinstance(error, TRANSPORT_ERRORS):
        return openai.APIConnectionError(message=f"Connection error ({type(error).__name__}).", request=request)
    return None


class UpstreamErrorEvent(openai.APIError):
    """The LLM server ended its stream with an error event (raised by the engine's generator)."""


class UpstreamInvalidAnswer(openai.APIError):
    """The LLM server's answer was not the JSON it should be (raised by the engine's generator)."""


def failure_event(error: BaseException, where: str) -> StreamError:
    """The StreamError for a run that raised `error`; logs it as its kind deserves, with the server's own words.

    `where` names the run for the log: its model and the wrapper method (`runner.run_name`).
    """
    upstream = _upstream_cause(error)
    if upstream is None:
        logger.error("The run of %s failed", where, exc_info=error)
        return StreamError(f"The pipeline failed ({type(error).__name__}); {see_the_server_log()}.")
    failure = _for_upstream(upstream)
    metrics.count_upstream_error(failure.code if failure.code in UPSTREAM_KINDS else "upstream_rejected")
    if failure.code == "upstream_authentication_failed":
        _log_refused_credentials(type(upstream).__name__)
    logger.warning(
        "The run of %s: the LLM server failed (%s, told the client %s %s): %s",
        where,
        type(upstream).__name__,
        failure.status,
        failure.code,
        _server_detail(upstream),
    )
    return failure


def _upstream_cause(error: BaseException) -> Exception | None:
    """The SDK (or HTTP library) error behind `error`, following the chain of causes (Haystack wraps component errors).

    The HTTP library's own errors count too: the SDK raises them as they are while a stream is read (a read timeout, a
    connection cut in the middle of the body).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (openai.APIError, *TRANSPORT_ERRORS)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _server_failed(kind: str) -> str:
    return f"The LLM server failed ({kind}); {see_the_server_log()}."


def _for_upstream(error: Exception) -> StreamError:
    """The one answer for each fault (the table in docs/api.md)."""
    if isinstance(error, (openai.APITimeoutError, *TIMEOUT_ERRORS)):
        message = f"The LLM server did not answer in time; {see_the_server_log()}."
        return StreamError(message, code="upstream_timeout", status=504)
    if isinstance(error, (openai.APIConnectionError, *TRANSPORT_ERRORS)):
        connect = isinstance(error, CONNECT_ERRORS) or isinstance(error.__cause__, CONNECT_ERRORS)
        kind = "could not be reached" if connect else "dropped the connection"
        return StreamError(f"The LLM server {kind}; {see_the_server_log()}.", code="upstream_unavailable", status=502)
    if isinstance(error, UpstreamErrorEvent):
        return StreamError(_server_failed("error event mid-stream"), code="upstream_error", status=502)
    if isinstance(error, UpstreamInvalidAnswer | openai.APIResponseValidationError):
        return StreamError(_server_failed("invalid answer"), code="upstream_error", status=502)
    if not isinstance(error, openai.APIStatusError):  # e.g. the SDK's own stream met an error event
        return StreamError(_server_failed("error reported mid-stream"), code="upstream_error", status=502)
    status = error.status_code
    if status == 429:
        retry_after = error.response.headers.get("retry-after")
        headers = {"x-should-retry": "true"} | ({"Retry-After": retry_after} if retry_after else {})
        message = "The LLM server is rate-limiting this service; retry later."
        return StreamError(message, type="rate_limit_error", code="rate_limit_exceeded", status=429, headers=headers)
    if status in (401, 403):
        message = "The LLM server refused this service's credentials; the operator must check OPENAI_API_KEY"
        message += f" ({see_the_server_log()})."
        return StreamError(message, code="upstream_authentication_failed", status=502)
    if 400 <= status < 500:
        message = f"The LLM server refused the request: {_reason(error)}"
        return StreamError(message, type="invalid_request_error", code=_refusal_code(error), status=400)
    return StreamError(_server_failed(f"HTTP {status}"), code="upstream_error", status=502)


# How servers say a prompt is too long for their context (OpenAI's code, llama.cpp's error type).
CONTEXT_OVERFLOW = {"context_length_exceeded", "exceed_context_size_error"}
# A code the client gets as it is: a short identifier, never free text.
PLAIN_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _refusal_code(error: openai.APIStatusError) -> str:
    """OpenAI's code for a context overflow, else the server's own string code (some send the HTTP status)."""
    body = _error_body(error)
    if {body.get("code"), body.get("type")} & CONTEXT_OVERFLOW:
        return "context_length_exceeded"
    code = body.get("code")
    return code if isinstance(code, str) and PLAIN_CODE.fullmatch(code) else "upstream_rejected"


def _error_body(error: openai.APIError) -> dict:
    """The error object of the server's body: `{"error": {...}}` or the SDK's already unwrapped `{...}`."""
    body = error.body if isinstance(error.body, dict) else {}
    nested = body.get("error")
    return nested if isinstance(nested, dict) else body


# What an LLM server's words may carry that no client should see, each replaced by REDACTED.
UNSAFE = re.compile(
    "|".join(
        (
            r"\b[a-z][a-z0-9+.-]*://[^\s,;'\"()<>]+",  # a URL
            r"\bbearer\s+[^\s,;'\"()<>]+",  # an Authorization header
            r"\b(?:sk|pk|rk|ak)[-_][\w\-*.]{3,}",  # a key (sk-..., also masked: sk-ab***yz)
            r"\b(?:api[-_]?key|key|token|secret|password|api)[-_:=]+(?=[\w\-*.]*\d)[\w\-*.]{4,}",  # key=..., token_...
            r"(?<![a-z0-9])(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{16,}",  # a long random-looking token
            r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b",  # an IPv4 address
            r"(?<![\w:])(?=[0-9a-f:]*[0-9a-f])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])",  # an IPv6 address
            r"[\w.+-]+@[\w.-]+",  # an e-mail address
            r"(?<![\w.@-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]\b(?::\d+)?",  # a dotted name
            r"(?<![\w.~/-])(?:~|[a-z]:)?[/\\](?=[\w.~-])[^\s\"'()<>,;]*",  # an absolute file path
        )
    ),
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def clean_reason(text: str) -> str:
    """`text` without the service's key or anything key-, URL-, host-, IP- or path-shaped, at most REASON_LIMIT long."""
    text = " ".join(text[: LOG_DETAIL_LIMIT * 2].split())  # one line; a huge message is not worth scanning whole
    key = os.environ.get("OPENAI_API_KEY", "")
    if len(key) >= 8:  # a dummy key for a local server ("x") is no secret, and replacing it would mangle the text
        text = text.replace(key, REDACTED)
    text = UNSAFE.sub(REDACTED, text)
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1].rstrip() + "…"


def _reason(error: openai.APIError) -> str:
    """The LLM server's own reason for a refusal (from its error body when it sent one), cleaned and bounded."""
    found = _error_body(error).get("message")
    return clean_reason(found if isinstance(found, str) and found else error.message)


def _server_detail(error: Exception) -> str:
    """The server's own words for the log: its error body, else the exception's text; the key itself left out."""
    detail = str(error)
    if isinstance(error, openai.APIError) and error.body is not None:
        detail = f"{detail} {error.body!r}"
    if isinstance(error, openai.APIConnectionError | openai.APIResponseValidationError) and error.__cause__:
        detail = f"{detail} ({type(error.__cause__).__name__}: {error.__cause__})"
    key = os.environ.get("OPENAI_API_KEY", "")
    if len(key) >= 8:
        detail = detail.replace(key, "[OPENAI_API_KEY]")
    return detail[:LOG_DETAIL_LIMIT]


@cache
def _log_refused_credentials(kind: str) -> None:
    """Once per process: every request fails the same way until the operator fixes the key."""
    logger.error(
        "The LLM server refused the service's credentials (%s): check OPENAI_API_KEY (and OPENAI_BASE_URL). "
        "Every request that calls the LLM fails until it is fixed.",
        kind,
    )

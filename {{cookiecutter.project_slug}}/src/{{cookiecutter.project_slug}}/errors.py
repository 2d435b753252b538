"""Every error leaves as OpenAI's envelope: `{"error": {message, type, param, code}}`.

Clients (the openai SDK, Open WebUI, Codex) parse this shape; an HTML error page or a traceback
would reach users as garbage, so the handlers below cover everything Quart can raise.
"""

import logging
import os
import re

import openai
from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

# The SDK retries 408/409/429/5xx unless told not to: a deterministic failure would run the pipeline thrice.
NO_RETRY = {"x-should-retry": "false"}

_TYPE_FOR_STATUS = {401: "authentication_error", 501: "invalid_request_error"}


class OpenAIError(Exception):
    """Raise anywhere in a request to answer with this status and envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        default_type = "server_error" if status >= 500 else "invalid_request_error"
        self.type = type or _TYPE_FOR_STATUS.get(status, default_type)
        self.param = param
        self.code = code

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_response(self) -> Response:
        response = jsonify(self.envelope())
        response.status_code = self.status
        response.headers.update(NO_RETRY)
        return response


# An LLM server's refusal (HTTP 400, or 422 from servers that validate with FastAPI) is for the client to fix:
# a conversation too long for the model's context, a sampling value the model does not take.
REFUSAL_STATUSES = (400, 422)
# How servers say a prompt is too long for the context (OpenAI's code, llama.cpp's type): clients act on
# OpenAI's code, e.g. by compacting the conversation.
CONTEXT_OVERFLOW = {"context_length_exceeded", "exceed_context_size_error"}
# What an API key looks like in a server's words (OpenAI's `sk-...`): never passed on to a client.
API_KEY_LIKE = re.compile(r"\bsk-[\w-]{6,}")


def refusal_by_llm_server(error: BaseException) -> OpenAIError | None:
    """The client's error when an LLM server refused the request: a 400 with the server's own reason, else None.

    `error` is what a run raised: the openai SDK's error, or Haystack's wrapping of it (a pipeline raises
    `PipelineRuntimeError` from it).
    """
    cause: BaseException | None = error
    for _ in range(10):  # a chain of causes is short; never loop on a cycle
        if cause is None:
            return None
        if isinstance(cause, openai.APIStatusError) and cause.status_code in REFUSAL_STATUSES:
            return _refusal(cause)
        cause = cause.__cause__
    return None


def _refusal(error: openai.APIStatusError) -> OpenAIError:
    body = error.body if isinstance(error.body, dict) else {}
    reason = body.get("message") if isinstance(body.get("message"), str) else error.message
    if {body.get("code"), body.get("type")} & CONTEXT_OVERFLOW:
        code = "context_length_exceeded"
    else:  # some servers send the HTTP status as the code; OpenAI's codes are strings
        code = body.get("code") if isinstance(body.get("code"), str) else None
    return OpenAIError(400, f"The LLM server refused the request: {_without_keys(reason)}", code=code)


def _without_keys(text: str) -> str:
    """The server's words without the service's own key or anything that looks like one."""
    key = os.environ.get("OPENAI_API_KEY", "")
    if len(key) >= 8:  # a dummy key for a local server ("x") is no secret, and replacing it would mangle the text
        text = text.replace(key, "[key]")
    return API_KEY_LIKE.sub("[key]", text)


def register_error_handlers(app: Quart) -> None:
    """Turn OpenAIError, Quart's HTTP errors and anything unexpected into the envelope."""

    @app.errorhandler(OpenAIError)
    async def handle_openai_error(error: OpenAIError) -> Response:
        return error.to_response()

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        messages = {
            404: "Unknown route.",
            405: "Method not allowed on this route.",
            408: f"The request body stopped arriving for {app.config['BODY_TIMEOUT']} s.",
            413: f"Request body is larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes.",
        }
        message = messages.get(status, error.description or error.name)
        codes = {404: "unknown_url", 405: "method_not_allowed", 408: "request_timeout", 413: "request_too_large"}
        code = codes.get(status)
        return OpenAIError(status, message, code=code).to_response()

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception) -> Response:
        logger.exception("Unhandled error while serving a request")
        return OpenAIError(500, "The server failed to process the request; see its log.").to_response()

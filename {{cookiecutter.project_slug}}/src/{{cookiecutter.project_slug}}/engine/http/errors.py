"""Every error leaves as OpenAI's envelope: `{"error": {message, type, param, code}}`.

Clients (the openai SDK, Open WebUI, Codex) parse this shape; an HTML error page or a traceback
would reach users as garbage, so the handlers below cover everything Quart can raise.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import logging

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..observability import metrics
from ..observability.request_tracking import current_request_info, see_the_server_log

logger = logging.getLogger(__name__)

# The SDK retries 408/409/429/5xx unless told not to: a deterministic failure would run the pipeline thrice.
NO_RETRY = {"x-should-retry": "false"}

_TYPE_FOR_STATUS = {401: "authentication_error", 501: "invalid_request_error"}

# A request refused before its body was read (a missing key, an unknown route) leaves the body on the connection,
# and hypercorn can carry the client's next request there only once it has all arrived: else the client finds the
# connection closed under its next request. A body up to this size is read first; a larger one closes it.
UNREAD_BODY_READ_BYTES = 64 * 1024
UNREAD_BODY_WAIT_SECONDS = 5.0


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
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        default_type = "server_error" if status >= 500 else "invalid_request_error"
        self.type = type or _TYPE_FOR_STATUS.get(status, default_type)
        self.param = param
        self.code = code
        self.headers = NO_RETRY | (headers or {})

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_response(self) -> Response:
        response = jsonify(self.envelope())
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


async def settle_unread_body() -> dict[str, str]:
    """Before refusing a request unread: read its body if small, else the headers that tell the client to close."""
    length = request.content_length
    if not length and "chunked" not in request.headers.get("Transfer-Encoding", ""):
        return {}
    if length is not None and length <= UNREAD_BODY_READ_BYTES:
        try:
            async with asyncio.timeout(UNREAD_BODY_WAIT_SECONDS):
                await request.get_data(cache=False)
            return {}
        except (TimeoutError, HTTPException):
            pass
    return {"Connection": "close"}


def register_error_handlers(app: Quart) -> None:
    """Turn OpenAIError, Quart's HTTP errors and anything unexpected into the envelope."""

    @app.errorhandler(OpenAIError)
    async def handle_openai_error(error: OpenAIError) -> Response:
        if error.code == "store_unavailable":
            metrics.count_store_error()
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
        headers = await settle_unread_body() if status in (404, 405, 413) else None
        return OpenAIError(status, message, code=code, headers=headers).to_response()

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception) -> Response:
        info = current_request_info()
        model = f" for model {info.model!r}" if info is not None and info.model else ""
        logger.exception("Unhandled error while serving a request%s", model)
        if isinstance(error, OSError):  # outside a run (runs report their own failures): reading or writing a store
            metrics.count_store_error()
        return OpenAIError(500, f"The server failed to process the request; {see_the_server_log()}.").to_response()

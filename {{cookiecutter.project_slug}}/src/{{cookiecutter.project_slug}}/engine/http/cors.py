"""Optional CORS, for browser apps that call the service directly: CORS_ALLOW_ORIGINS lists who may.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from quart import Quart, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, X-Stainless-*"
ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"


def allow_origins(app: Quart, origins: set[str]) -> None:
    """Answer preflight requests and add the CORS headers for `origins` (`*` allows any)."""

    @app.after_request
    async def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is None or ("*" not in origins and origin not in origins):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            requested = request.headers.get("Access-Control-Request-Headers")
            response.headers["Access-Control-Allow-Headers"] = requested or ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

"""The OpenAI routes the service serves, as OpenAPI operations: what `GET /openapi.json?include=openai` adds.

They stay out of the plain `/openapi.json` on purpose: an OpenAPI tool client (Open WebUI's tool servers) turns every
operation of the document it registers into a tool, and "create a chat completion" or "delete a file" is no tool
for an LLM. The whole document is for the rest: client generators, API explorers, gateways.

Each operation is read from the app's routes under `/v1` (so a route the app does not serve is never described),
named by the `operationId` OpenAI's published description gives it, so a client can look its request and response
schemas up there (https://github.com/openai/openai-openapi); the bodies here are generic JSON objects, since that
description is too large to ship in the engine. Every route is served without the `/v1` prefix too.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import re
from typing import Any

from werkzeug.routing import Map

OPENAI_TAG = "OpenAI API"
OPENAI_PREFIX = "/v1"
OPENAI_DOCS = "https://platform.openai.com/docs/api-reference"
_PATH_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # Quart's `<path:model>` / `<file_id>`

# (method, path without /v1) -> OpenAI's operationId and a summary of what the service does.
OPERATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("get", "/models"): ("listModels", "List the served models: each pipeline or agent is one"),
    ("get", "/models/{model}"): ("retrieveModel", "One served model"),
    ("post", "/chat/completions"): ("createChatCompletion", "Chat with a model (Chat Completions), streamed or not"),
    ("post", "/responses"): ("createResponse", "Ask a model (Responses API), streamed, stored or in the background"),
    ("get", "/responses/{response_id}"): ("getResponse", "A stored response; a background one as it stands"),
    ("delete", "/responses/{response_id}"): ("deleteResponse", "Delete a stored response"),
    ("post", "/responses/{response_id}/cancel"): ("cancelResponse", "Cancel a background response"),
    ("get", "/responses/{response_id}/input_items"): ("listInputItems", "The input items of a stored response"),
    ("post", "/responses/compact"): ("Compactconversation", "Compact a conversation with the model's own summary"),
    ("post", "/conversations"): ("createConversation", "Create a conversation"),
    ("get", "/conversations/{conversation_id}"): ("getConversation", "A conversation"),
    ("post", "/conversations/{conversation_id}"): ("updateConversation", "Replace a conversation's metadata"),
    ("delete", "/conversations/{conversation_id}"): ("deleteConversation", "Delete a conversation"),
    ("post", "/conversations/{conversation_id}/items"): ("createConversationItems", "Add items to a conversation"),
    ("get", "/conversations/{conversation_id}/items"): ("listConversationItems", "A conversation's items"),
    ("get", "/conversations/{conversation_id}/items/{item_id}"): ("getConversationItem", "One item"),
    ("delete", "/conversations/{conversation_id}/items/{item_id}"): ("deleteConversationItem", "Delete one item"),
    ("post", "/files"): ("createFile", "Upload a file (multipart/form-data)"),
    ("get", "/files"): ("listFiles", "The uploaded files"),
    ("get", "/files/{file_id}"): ("retrieveFile", "One uploaded file"),
    ("get", "/files/{file_id}/content"): ("downloadFile", "An uploaded file's bytes"),
    ("delete", "/files/{file_id}"): ("deleteFile", "Delete an uploaded file"),
}
STREAMED = {"createChatCompletion", "createResponse", "getResponse"}  # answer SSE when asked to stream
ANY_OBJECT = {"type": "object"}
OCTET_STREAM = "application/octet-stream"


def openai_paths(url_map: Map) -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of the app's `/v1` routes (the unprefixed copies are mentioned, not repeated)."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in url_map.iter_rules():
        if not rule.rule.startswith(f"{OPENAI_PREFIX}/"):
            continue
        path = _PATH_PARAMETER.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = operation(method.lower(), path, rule.endpoint)
    return paths


def operation(method: str, path: str, endpoint: str) -> dict[str, Any]:
    """One route as an operation, with generic JSON bodies; a route missing from OPERATIONS is named after its view."""
    operation_id, summary = OPERATIONS.get((method, path.removeprefix(OPENAI_PREFIX)), (endpoint, endpoint))
    answer: dict[str, Any] = {"application/json": {"schema": ANY_OBJECT}}
    if operation_id in STREAMED:
        answer["text/event-stream"] = {"schema": {"type": "string"}}
    if operation_id == "downloadFile":  # the bytes as uploaded
        answer = {OCTET_STREAM: {"schema": {"type": "string", "contentMediaType": OCTET_STREAM}}}
    described: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Also served at `{path.removeprefix(OPENAI_PREFIX)}`. Request and response schemas: "
        f"operation `{operation_id}` of OpenAI's OpenAPI description.",
        "tags": [OPENAI_TAG],
        "externalDocs": {"description": "OpenAI's API reference", "url": OPENAI_DOCS},
        "responses": {
            "200": {"description": "As OpenAI answers", "content": answer},
            "default": {"description": "OpenAI's error envelope: an `error` object (message, type, param, code)"},
        },
    }
    if names := re.findall(r"{([^{}]+)}", path):
        described["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names
        ]
    if method == "post":
        media_type = "multipart/form-data" if operation_id == "createFile" else "application/json"
        described["requestBody"] = {
            "required": operation_id != "cancelResponse",
            "content": {media_type: {"schema": ANY_OBJECT}},
        }
    return described

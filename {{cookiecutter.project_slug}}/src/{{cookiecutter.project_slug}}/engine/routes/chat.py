"""`POST /v1/chat/completions` (and `/chat/completions`, `/<model>/chat`): the Chat Completions API.

Before a run, the client adapters (`clients/adapter.py`; Open WebUI's) may answer the request themselves (Open WebUI's
background tasks); for a stream, the adapter that recognises the client is remembered for the run.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from quart import Blueprint, Response, g, request

from ..clients.adapter import recognised_client, remember_client
from ..http.errors import OpenAIError
from ..observability.request_tracking import note_model
from ..parsing.model_options import check_output_format, check_tool_choice, check_tools
from ..parsing.request_body import (
    check_item_count,
    check_sampling,
    optional_bool,
    optional_number,
    read_json_object,
    require_string,
)
from ..parsing.who_is_asking import remember_request
from ..runs.events import TextDelta
from ..services import services
from ..wire import json_response
from ..wire.chat import ChatCompletionBuilder, ChatStreamEncoder
from ..wire.sse import error_response, stream_response

blueprint = Blueprint("chat", __name__)
# hayhooks' route with the model in the path: served without the /v1 prefix only.
model_in_path = Blueprint("chat_model_in_path", __name__)


@blueprint.post("/chat/completions")
async def chat_completions() -> Response:
    body = await read_json_object()
    return await run_chat(require_string(body, "model"), body)


@model_in_path.post("/<model>/chat")
async def chat_with_model_in_path(model: str) -> Response:
    """The same contract, for clients that pick the pipeline by URL."""
    return await run_chat(model, await read_json_object())


# The roles OpenAI's Chat Completions API takes, and those whose `content` may be null or absent (an assistant's
# tool calls; the legacy function message).
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
CONTENT_OPTIONAL = frozenset({"assistant", "function"})


def validate_messages(body: dict[str, Any], max_items: int) -> list[dict[str, Any]]:
    """The request's messages, each with a role OpenAI knows and a usable content; a 400 naming the field otherwise.

    A message the service cannot read would otherwise reach the wrapper as an empty question, and be answered.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, "'messages' is required and must be a non-empty array.", param="messages")
    parts = 0
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise OpenAIError(400, f"'{where}' must be an object.", param=where, code="invalid_type")
        role = message.get("role")
        if role not in ROLES:
            if role is None:
                raise OpenAIError(400, f"Missing required parameter: '{where}.role'.", param=f"{where}.role")
            supported = ", ".join(f"'{name}'" for name in ROLES)
            message_text = f"Invalid value for '{where}.role': {role!r}. Supported values are: {supported}."
            raise OpenAIError(400, message_text, param=f"{where}.role", code="invalid_value")
        content = message.get("content")
        if isinstance(content, list):
            for index, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    part_where = f"{where}.content[{index}]"
                    text = f"'{part_where}' must be an object with a 'type'."
                    raise OpenAIError(400, text, param=part_where, code="invalid_type")
            parts += len(content)
        elif content is None:
            if role not in CONTENT_OPTIONAL:
                raise OpenAIError(400, f"Missing required parameter: '{where}.content'.", param=f"{where}.content")
        elif not isinstance(content, str):
            text = f"Invalid type for '{where}.content': expected a string or an array of content parts."
            raise OpenAIError(400, text, param=f"{where}.content", code="invalid_type")
    check_item_count(len(messages) + parts, "messages", max_items)
    return messages


def validate_fields(body: dict[str, Any]) -> None:
    """The fields besides `messages` that the service or the wrappers use."""
    check_sampling(body)
    optional_number(body, "max_tokens", low=1, integer=True)
    optional_number(body, "max_completion_tokens", low=1, integer=True)
    if optional_number(body, "n", low=1, integer=True) not in (None, 1):
        raise OpenAIError(400, "This service answers with one choice: 'n' must be 1.", param="n", code="invalid_value")
    optional_bool(body, "logprobs")
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise OpenAIError(400, "'stream_options' must be an object.", param="stream_options")
    optional_bool(body, "parallel_tool_calls")
    check_tools(body, nested=True)
    check_tool_choice(body, nested=True)
    check_output_format(body.get("response_format"), "response_format", nested=True)


async def run_chat(model: str, body: dict[str, Any]) -> Response:
    app_services = services()
    settings = app_services.settings
    messages = validate_messages(body, settings.max_input_items)
    validate_fields(body)
    wants_stream = optional_bool(body, "stream")
    registry = app_services.registry
    wrapper, method_name = registry.find(model, "chat")
    note_model(wrapper.model_id)

    adapters = app_services.client_adapters
    for adapter in adapters:
        if (answer := await adapter.answer_itself(body, wrapper.instance)) is not None:
            builder = ChatCompletionBuilder(model)
            builder.add([TextDelta(answer)])
            return json_response(builder.build())

    client = recognised_client(adapters, request.headers) if wants_stream else None
    remember_client(client)  # before the run starts: it runs in a copy of this context
    remember_request("chat", request.headers, body, g.get("api_key_name"))
    runner = app_services.runner
    method = getattr(wrapper.instance, method_name)

    if not wants_stream:
        builder = ChatCompletionBuilder(model)
        builder.add(await runner.collect(method, model, messages, body))
        if builder.error is not None:
            raise error_response(builder.error)
        return json_response(builder.build())

    stream = runner.start(method, model, messages, body)
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    encoder = ChatStreamEncoder(model, include_usage=include_usage, client=client)
    return await stream_response(stream, encoder, settings.keepalive_seconds)

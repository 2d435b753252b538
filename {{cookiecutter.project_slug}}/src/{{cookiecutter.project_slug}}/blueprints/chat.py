"""`POST /v1/chat/completions` (and `/chat/completions`, `/<model>/chat`): the Chat Completions API."""

from typing import Any

from quart import Blueprint, Response, current_app, jsonify

from ..errors import OpenAIError
from ..registry import Registry
from ..runner import Runner
from ..settings import Settings
from ..wire.chat import ChatCompletionBuilder, ChatStreamEncoder
from ..wire.sse import error_response, stream_response
from .request_body import optional_bool, read_json_object, require_string

blueprint = Blueprint("chat", __name__)


@blueprint.post("/v1/chat/completions")
@blueprint.post("/chat/completions")
async def chat_completions() -> Response:
    body = await read_json_object()
    return await run_chat(require_string(body, "model"), body)


@blueprint.post("/<model>/chat")
async def chat_with_model_in_path(model: str) -> Response:
    """The same contract, for clients that pick the pipeline by URL."""
    return await run_chat(model, await read_json_object())


def validate_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, "'messages' is required and must be a non-empty array.", param="messages")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise OpenAIError(400, "Each message must be an object with a 'role'.", param=f"messages[{position}]")
    return messages


async def run_chat(model: str, body: dict[str, Any]) -> Response:
    messages = validate_messages(body)
    wants_stream = optional_bool(body, "stream")
    registry: Registry = current_app.extensions["registry"]
    wrapper, method_name = registry.find(model, "chat")

    runner: Runner = current_app.extensions["runner"]
    settings: Settings = current_app.config["SETTINGS"]
    stream = runner.start(getattr(wrapper.instance, method_name), model, messages, body)

    if not wants_stream:
        builder = ChatCompletionBuilder(model)
        await stream.drain(builder.add)
        if builder.error is not None:
            raise error_response(builder.error)
        return jsonify(builder.build())

    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    encoder = ChatStreamEncoder(model, include_usage=include_usage)
    return await stream_response(stream, encoder, settings.keepalive_seconds)

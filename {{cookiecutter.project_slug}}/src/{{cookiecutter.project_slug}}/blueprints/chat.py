"""`POST /v1/chat/completions` (and `/chat/completions`, `/<model>/chat`): the Chat Completions API."""

from typing import Any

from quart import Blueprint, Response, current_app, jsonify

from ..errors import OpenAIError
from ..events import StreamError
from ..registry import LoadedWrapper, Registry
from ..runner import Runner
from ..settings import Settings
from ..wire.chat import ChatCompletionBuilder, ChatStreamEncoder
from ..wire.sse import sse_body, sse_response
from .request_body import read_json_object, require_string

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


def find_wrapper(model: str, api: str) -> tuple[LoadedWrapper, str]:
    """The wrapper serving `model` and the name of its method for `api`, or the matching OpenAI error."""
    registry: Registry = current_app.extensions["registry"]
    wrapper = registry.get(model)
    if wrapper is None:
        raise OpenAIError(404, f"The model '{model}' does not exist.", param="model", code="model_not_found")
    method_name = wrapper.method_for(api)
    if method_name is None:
        message = f"The model '{model}' does not implement the {api} API."
        raise OpenAIError(501, message, param="model", code="unsupported_api")
    return wrapper, method_name


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
    wants_stream = body.get("stream") or False
    if not isinstance(wants_stream, bool):
        raise OpenAIError(400, "'stream' must be a boolean.", param="stream")
    wrapper, method_name = find_wrapper(model, "chat")

    runner: Runner = current_app.extensions["runner"]
    settings: Settings = current_app.config["SETTINGS"]
    stream = runner.start(getattr(wrapper.instance, method_name), model, messages, body)

    if not wants_stream:
        builder = ChatCompletionBuilder(model)
        try:
            while (batch := await stream.next_batch()) is not None:
                builder.add(batch)
        finally:
            stream.close()
        if builder.error is not None:
            raise OpenAIError(500, builder.error.message, code=builder.error.code)
        return jsonify(builder.build())

    # Wait briefly for the first events: a run that fails at once still gets a proper JSON error status.
    try:
        first_batch = await stream.next_batch(settings.keepalive_seconds)
    except BaseException:
        stream.close()
        raise
    if first_batch and isinstance(first_batch[0], StreamError):
        stream.close()
        raise OpenAIError(500, first_batch[0].message, code=first_batch[0].code)
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    encoder = ChatStreamEncoder(model, include_usage=include_usage)
    return sse_response(sse_body(stream, encoder, first_batch, settings.keepalive_seconds))

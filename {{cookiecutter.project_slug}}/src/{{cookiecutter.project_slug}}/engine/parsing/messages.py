"""Turning a request's OpenAI messages (Chat Completions) or input items (Responses) into what Haystack takes.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

from haystack.dataclasses import ChatMessage, FileContent, ImageContent, TextContent, ToolCall

from ..files.uploaded_files import file_content
from ..http.errors import OpenAIError
from .declared_tools import NAMESPACE_SEPARATOR
from .images import image_from_input_part, image_from_url
from .mcp_items import MCP_ITEM_TYPES, as_llm_sees_it

logger = logging.getLogger(__name__)


def message_text(message: dict[str, Any]) -> str:
    """The text of one OpenAI message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def get_last_user_message(messages: list[dict[str, Any]]) -> str | None:
    """The text of the latest user message, or None when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return None


def chat_messages_from_openai(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    """Convert the whole conversation; a user message's images become `ImageContent` (see `images.py`).

    Parts Haystack cannot take (files by id, audio) are dropped, not fatal; an image that cannot be used is
    a 400 for the client.
    """
    converted: list[ChatMessage] = []
    tool_names: dict[str, str] = {}
    for message in messages:
        chat_message = _convert(message)
        if chat_message is None:
            continue
        for call in chat_message.tool_calls:
            if call.id:
                tool_names[call.id] = call.tool_name
        result = chat_message.tool_call_result
        if result is not None and result.origin.id in tool_names:
            # OpenAI tool messages carry only the call id; Haystack also wants the tool's name.
            origin = replace(result.origin, tool_name=tool_names[result.origin.id])
            chat_message = ChatMessage.from_tool(tool_result=result.result, origin=origin, error=result.error)
        converted.append(chat_message)
    return converted


def _convert(message: dict[str, Any]) -> ChatMessage | None:
    content = message.get("content")
    if message.get("role") == "user" and isinstance(content, list) and _has_part(content, "image_url"):
        return _user_message_with_images(message, content)
    try:
        return ChatMessage.from_openai_dict_format(message)
    except (ValueError, KeyError, TypeError) as error:
        text = message_text(message)
        role = message.get("role")
        logger.debug("Keeping only the text of a %s message Haystack cannot convert: %s", role, error)
        return text_message(role, text)


def _has_part(content: list[Any], kind: str) -> bool:
    return any(isinstance(part, dict) and part.get("type") == kind for part in content)


def _user_message_with_images(message: dict[str, Any], content: list[Any]) -> ChatMessage | None:
    """A chat user message's parts in order: images here, the others (text, inline files) as Haystack converts
    them; a part Haystack cannot convert (a file by id) is dropped with a debug log."""
    parts: list[TextContent | ImageContent | FileContent] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            image_url = part.get("image_url")
            image_url = image_url if isinstance(image_url, dict) else {}
            parts.append(image_from_url(image_url.get("url"), image_url.get("detail")))
            continue
        try:
            single = ChatMessage.from_openai_dict_format({"role": "user", "content": [part]})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            logger.debug("Dropping a %s part of a user message that also holds images: %s", kind, error)
            continue
        parts.extend([*(TextContent(text) for text in single.texts), *single.files])
    name = message.get("name") if isinstance(message.get("name"), str) else None
    return ChatMessage.from_user(content_parts=parts, name=name) if parts else None


def text_message(role: object, text: str) -> ChatMessage | None:
    """A ChatMessage holding only `text`: system and developer become system, anything unknown a user message."""
    if not text:
        return None
    if role in ("system", "developer"):
        return ChatMessage.from_system(text)
    if role == "assistant":
        return ChatMessage.from_assistant(text)
    return ChatMessage.from_user(text)


# --- Responses API input items ---

TEXT_PART_TYPES = ("input_text", "output_text", "text")


def item_text(item: dict[str, Any]) -> str:
    """The text of one message item: its string content, or its text parts joined."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") in TEXT_PART_TYPES]
    return "\n".join(text for text in texts if isinstance(text, str))


def get_last_user_input_text(input_items: list[dict[str, Any]]) -> str | None:
    """The text of the latest user message item, or None when there is none."""
    for item in reversed(input_items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return item_text(item)
    return None


def chat_messages_from_openai_response(
    input_items: list[dict[str, Any]], instructions: str | None = None
) -> list[ChatMessage]:
    """The whole conversation as ChatMessages: `instructions` first, then messages, tool calls and their results.

    Every item is converted or refused, never dropped unseen (the table in docs/responses.md):
    - messages of every role: text; an assistant's `refusal`; a user's `input_image` and `input_file` parts
      (`ImageContent` and `FileContent`: a URL, inline data, or an uploaded file read from the file store);
    - `function_call` and `custom_tool_call` items as assistant tool calls (parallel ones in one message),
      their `*_output` items as the tool results (text);
    - `reasoning` items are left out: the Chat Completions LLMs here take no earlier reasoning back;
    - MCP items (a remote server's or an Agent's own tools, `mcp_items.py`) as the calls and results they stand for.
    Anything else (a built-in tool's item such as `web_search_call`, an image in a system message, an image in
    a tool result, a part of unknown type) raises `UnsupportedInput`, a 400 naming it. A wrapper that can use
    those reads `input_items` itself; `get_input_files` gives the files alone.
    """
    messages = [ChatMessage.from_system(instructions)] if instructions else []
    calls_by_id: dict[str, ToolCall] = {}
    if any(item.get("type") in MCP_ITEM_TYPES for item in input_items):
        input_items = as_llm_sees_it(input_items)
    for item in input_items:
        kind = item.get("type", "message")
        if kind == "message":
            message = _message_from_item(item)
            if message is not None:
                messages.append(message)
        elif kind in ("function_call", "custom_tool_call"):
            call = _tool_call(item)
            calls_by_id[call.id or ""] = call
            previous = messages[-1] if messages else None
            if previous is not None and previous.is_from("assistant") and previous.tool_calls and not previous.text:
                # Parallel calls arrive as consecutive items: one assistant message holds them all.
                messages[-1] = ChatMessage.from_assistant(tool_calls=[*previous.tool_calls, call])
            else:
                messages.append(ChatMessage.from_assistant(tool_calls=[call]))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id", "")
            origin = calls_by_id.get(call_id) or ToolCall(tool_name="", arguments={}, id=call_id)
            messages.append(ChatMessage.from_tool(tool_result=_tool_output(item), origin=origin))
        elif kind != "reasoning":
            raise UnsupportedInput(
                f"Input items of type '{kind}'",
                "a conversation here holds messages, reasoning, function and custom tool calls and their outputs "
                "(no model here has OpenAI's built-in tools); leave such items out.",
            )
    return messages


class UnsupportedInput(OpenAIError):
    """An input item or part that no ChatMessage here can carry: a 400 that names it, not a silent drop."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(400, f"{what} are not supported here: {why}", param="input", code="unsupported_value")


async def chat_messages_from_openai_response_async(
    input_items: list[dict[str, Any]], instructions: str | None = None
) -> list[ChatMessage]:
    """`chat_messages_from_openai_response` for `async` wrappers: when the input holds a file, or names an uploaded
    image by `file_id`, it is read (from a disk or an S3 bucket) and encoded in a worker thread, not on the event loop.
    """
    if any(_reads_files(item) for item in input_items):
        return await asyncio.to_thread(chat_messages_from_openai_response, input_items, instructions)
    return chat_messages_from_openai_response(input_items, instructions)


def _reads_files(item: dict[str, Any]) -> bool:
    content = item.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict)
        and (part.get("type") == "input_file" or (part.get("type") == "input_image" and part.get("file_id")))
        for part in content
    )


def _message_from_item(item: dict[str, Any]) -> ChatMessage | None:
    """Text-only messages as plain text; a user's images and files as content parts; an assistant's refusal kept."""
    role = item.get("role")
    content = item.get("content")
    if not isinstance(content, list):
        return text_message(role, item_text(item))
    parts: list[TextContent | ImageContent | FileContent] = []
    refusals: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind in TEXT_PART_TYPES:
            if isinstance(part.get("text"), str):
                parts.append(TextContent(part["text"]))
        elif kind == "refusal" and role == "assistant":
            refusals.append(str(part.get("refusal") or ""))
        elif kind == "input_image" and role == "user":
            parts.append(image_from_input_part(part))
        elif kind == "input_file" and role == "user":
            parts.append(file_from_input_part(part))
        else:
            why = "a message holds text parts, a user's input_image and input_file parts, an assistant's refusal."
            raise UnsupportedInput(f"'{kind}' parts in a {role} message", why)
    if refusals:
        text = "\n".join(part.text for part in parts if isinstance(part, TextContent)) or None
        return ChatMessage.from_assistant(text, meta={"refusal": "\n".join(refusals)})
    if any(not isinstance(part, TextContent) for part in parts):
        return ChatMessage.from_user(content_parts=parts)
    return text_message(role, item_text(item))


def file_from_input_part(part: dict[str, Any]) -> FileContent:
    """A Responses `input_file` part: inline `file_data` with its `filename`, or an uploaded file read now."""
    return file_content(part)


def _tool_call(item: dict[str, Any]) -> ToolCall:
    """A function call, or a custom tool's call with its free-form `input` as the one argument `input`."""
    arguments = {"input": item.get("input", "")} if item["type"] == "custom_tool_call" else _parse_arguments(item)
    name = item.get("name", "")
    if isinstance(namespace := item.get("namespace"), str) and namespace:
        name = f"{namespace}{NAMESPACE_SEPARATOR}{name}"  # as the LLM was offered it (declared_tools.py)
    return ToolCall(tool_name=name, arguments=arguments, id=item.get("call_id"))


def _tool_output(item: dict[str, Any]) -> str:
    """A tool's output, a string or text parts: a Chat Completions tool result holds text only."""
    output = item.get("output")
    if isinstance(output, str):
        return output
    for part in output if isinstance(output, list) else []:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind not in TEXT_PART_TYPES:
            why = "a tool result holds text only for the LLMs here (Chat Completions); send it in a user message."
            raise UnsupportedInput(f"'{kind}' parts in a {item['type']}", why)
    return item_text({"content": output})


def _parse_arguments(item: dict[str, Any]) -> dict[str, Any]:
    try:
        arguments = json.loads(item.get("arguments") or "{}")
    except ValueError:
        logger.debug("Tool call %s has arguments that are not JSON; passing none", item.get("call_id"))
        return {}
    return arguments if isinstance(arguments, dict) else {}

"""Turning a request's OpenAI chat messages into what Haystack pipelines take."""

import logging
from dataclasses import replace
from typing import Any

from haystack.dataclasses import ChatMessage

logger = logging.getLogger(__name__)


def message_text(message: dict[str, Any]) -> str:
    """The text of one OpenAI message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def get_last_user_message(messages: list[dict[str, Any]]) -> str | None:
    """The text of the latest user message, or None when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return None


def chat_messages_from_openai(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    """Convert the whole conversation; parts Haystack cannot take (e.g. image URLs) are dropped, not fatal."""
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
    try:
        return ChatMessage.from_openai_dict_format(message)
    except (ValueError, KeyError, TypeError) as error:
        text = message_text(message)
        role = message.get("role")
        logger.debug("Keeping only the text of a %s message Haystack cannot convert: %s", role, error)
        if not text:
            return None
        if role in ("system", "developer"):
            return ChatMessage.from_system(text)
        if role == "assistant":
            return ChatMessage.from_assistant(text)
        return ChatMessage.from_user(text)

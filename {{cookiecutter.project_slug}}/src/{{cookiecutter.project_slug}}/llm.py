"""The chat generator the example wrappers use. Edit freely: this file is yours.

With `OPENAI_API_KEY` set it is `OpenAIChatGenerator` against `OPENAI_BASE_URL` (OpenAI, or any
compatible server: Ollama, vLLM, llama.cpp) and `OPENAI_MODEL`. Without a key it is Haystack's
`MockChatGenerator`, so a fresh checkout serves answers offline.
"""

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import Any

from haystack import component
from haystack.components.generators.chat import MockChatGenerator, OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, ComponentInfo, ReasoningContent, StreamingChunk

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
OFFLINE_NOTE = "[offline: set OPENAI_API_KEY for a real model]"


def offline_echo(messages: list[ChatMessage]) -> str:
    """The offline stand-in's answer: say so, and echo the question."""
    question = next((m.text for m in reversed(messages) if m.is_from("user") and m.text), "")
    return f"{OFFLINE_NOTE} You said: {question}"


def make_chat_generator(
    *, offline_reply: Callable[..., str | ChatMessage] = offline_echo
) -> OpenAIChatGenerator | MockChatGenerator:
    """The chat generator for a wrapper: the configured OpenAI-compatible server, or the offline stand-in."""
    if not os.environ.get("OPENAI_API_KEY"):
        _warn_offline()
        return MockChatGenerator(response_fn=offline_reply)
    return ReasoningOpenAIChatGenerator(model=os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)


@cache
def _warn_offline() -> None:
    logger.warning("OPENAI_API_KEY is not set: the examples answer offline with MockChatGenerator")


@component
class ReasoningOpenAIChatGenerator(OpenAIChatGenerator):
    """OpenAIChatGenerator that passes `reasoning_content` deltas on as `StreamingChunk.reasoning`,
    and asks for token usage when streaming.

    DeepSeek-style reasoning models (on vLLM, Ollama, llama.cpp) stream their thinking in
    `delta.reasoning_content` (or `delta.reasoning`); Haystack 3.4 drops it. Only the streamed
    reasoning is kept: the final reply message still has none. The base class is named
    explicitly below because Haystack's `@component` rebuilds the class, which breaks a bare `super()`.
    """

    def _prepare_api_call(self, **kwargs: Any) -> dict[str, Any]:
        """Ask for token usage when streaming (servers send none otherwise); never when not, where it is refused."""
        api_args = OpenAIChatGenerator._prepare_api_call(self, **kwargs)
        if api_args.get("stream"):
            api_args.setdefault("stream_options", {"include_usage": True})
        return api_args

    def _handle_stream_response(self, chat_completion: Any, callback: Callable[[StreamingChunk], None]) -> Any:
        info = ComponentInfo.from_component(self)

        def with_reasoning() -> Iterator[Any]:
            for chunk in chat_completion:
                if reasoning := _reasoning_chunk(chunk, info):
                    callback(reasoning)
                yield chunk

        try:
            return OpenAIChatGenerator._handle_stream_response(self, with_reasoning(), callback)
        finally:
            # When the callback raises (the client went away), stop reading the upstream now, not at garbage collection.
            chat_completion.close()

    async def _handle_async_stream_response(self, chat_completion: Any, callback: Any) -> Any:
        wrapped = _AsyncStreamWithReasoning(chat_completion, callback, ComponentInfo.from_component(self))
        return await OpenAIChatGenerator._handle_async_stream_response(self, wrapped, callback)


class _AsyncStreamWithReasoning:
    """Wraps the SDK's async stream; `close()` is kept because Haystack calls it on cancellation."""

    def __init__(self, stream: Any, callback: Any, info: ComponentInfo) -> None:
        self._stream, self._callback, self._info = stream, callback, info

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for chunk in self._stream:
            if reasoning := _reasoning_chunk(chunk, self._info):
                await self._callback(reasoning)
            yield chunk

    async def close(self) -> None:
        await self._stream.close()


def _reasoning_chunk(chunk: Any, info: ComponentInfo) -> StreamingChunk | None:
    if not chunk.choices:
        return None
    extra = chunk.choices[0].delta.model_extra or {}
    text = extra.get("reasoning_content") or extra.get("reasoning")
    if not isinstance(text, str) or not text:
        return None
    return StreamingChunk(content="", reasoning=ReasoningContent(reasoning_text=text), index=0, component_info=info)

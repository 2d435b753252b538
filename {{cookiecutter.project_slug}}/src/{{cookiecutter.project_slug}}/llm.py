"""Which chat generator the example wrappers use, and from which settings. Edit freely: this file is yours.

- `OPENAI_API_KEY` set: `ReasoningOpenAIChatGenerator` (Haystack's `OpenAIChatGenerator`, faster when streaming
  and keeping the model's reasoning: `engine/generators/openai_generator.py`) against `OPENAI_BASE_URL` (OpenAI, or any
  compatible server: Ollama, vLLM, llama.cpp) and `OPENAI_MODEL`, retrying a failed call OPENAI_MAX_RETRIES times.
- No key: `OfflineChatGenerator` (Haystack's `MockChatGenerator`, its work bounded however long the prompt) with
  `offline_reply`, by default `answer_from_prompt` (`engine/generators/offline_llm.py`: it repeats the question and
  quotes the prompt's lines that match it), so a fresh checkout answers offline, RAG pipelines included.

To use another LLM, return another Haystack chat generator here, or build one in the wrapper.
"""

import logging
import os
from collections.abc import Callable
from functools import cache

from haystack.dataclasses import ChatMessage

from .engine import OfflineChatGenerator, ReasoningOpenAIChatGenerator, answer_from_prompt

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_RETRIES = 1  # Haystack's default is 5: a client waiting for its answer is better told soon


def make_chat_generator(
    *, offline_reply: Callable[..., str | ChatMessage] = answer_from_prompt
) -> ReasoningOpenAIChatGenerator | OfflineChatGenerator:
    """The chat generator for a wrapper: the configured OpenAI-compatible server, or the offline stand-in."""
    if not os.environ.get("OPENAI_API_KEY"):
        _warn_offline()
        return OfflineChatGenerator(response_fn=offline_reply)
    return ReasoningOpenAIChatGenerator(
        model=os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL,
        max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", DEFAULT_RETRIES)),
    )


@cache
def _warn_offline() -> None:
    logger.warning("OPENAI_API_KEY is not set: the examples answer offline with MockChatGenerator")

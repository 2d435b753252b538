"""The generator our wrappers use: the template's own (`llm.make_chat_generator`), or plain Haystack on request.

BENCH_PLAIN_GENERATOR=1 swaps in the plain `OpenAIChatGenerator` the other targets use, to see what
the template's subclass changes. Modules starting with `_` are not models.
"""

import inspect
import os

from bench_config import UPSTREAM_MODEL
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack_service.llm import make_chat_generator


def plain_generator() -> OpenAIChatGenerator:
    return OpenAIChatGenerator(model=UPSTREAM_MODEL)


def chat_generator(*, streaming: bool) -> OpenAIChatGenerator:
    if os.environ.get("BENCH_PLAIN_GENERATOR") == "1":
        return plain_generator()
    # The template's signature has changed before; pass `streaming` only where it is still taken.
    takes_streaming = "streaming" in inspect.signature(make_chat_generator).parameters
    generator = make_chat_generator(streaming=streaming) if takes_streaming else make_chat_generator()
    assert isinstance(generator, OpenAIChatGenerator), "OPENAI_API_KEY must be set for the benchmark"
    return generator

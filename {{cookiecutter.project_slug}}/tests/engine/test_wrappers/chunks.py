"""Haystack StreamingChunks: reasoning, content, then an Agent-style `tool_call_results` finish.

`tool_call_results` is Haystack's own finish reason, not an OpenAI one: it must never reach a client.
"""

from collections.abc import Iterator

from haystack.dataclasses import ReasoningContent, StreamingChunk

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

REASONING = "chunk reasoning"
CONTENT = ["chunk ", "answer"]


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[StreamingChunk]:
        yield StreamingChunk(content="", reasoning=ReasoningContent(reasoning_text=REASONING), index=0)
        for piece in CONTENT:
            yield StreamingChunk(content=piece, index=1)
        yield StreamingChunk(content="", finish_reason="tool_call_results")

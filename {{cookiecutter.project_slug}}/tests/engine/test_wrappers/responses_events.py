"""Answers on the Responses API only, with every output item kind: reasoning, text, a client tool call."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, ReasoningDelta, ToolCallDelta, Usage

REASONING = ["Let me ", "think."]
TEXT = ["I will ", "ask your ", "tool."]
CALL = {"id": "call_client_1", "name": "lookup", "arguments": ['{"query": ', '"weather"}']}
USAGE = (7, 11)


class PipelineWrapper(BasePipelineWrapper):
    def run_response(self, model: str, input_items: list[dict], body: dict) -> Iterator[object]:
        """A wrapper that wants the *client* to run a tool it declared yields a ToolCallDelta on purpose."""
        for piece in REASONING:
            yield ReasoningDelta(piece)
        yield from TEXT
        yield ToolCallDelta(index=0, id=CALL["id"], name=CALL["name"])
        for piece in CALL["arguments"]:
            yield ToolCallDelta(index=0, arguments=piece)
        yield Usage(prompt_tokens=USAGE[0], completion_tokens=USAGE[1])

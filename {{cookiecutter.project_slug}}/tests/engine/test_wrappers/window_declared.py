"""Declares a small `context_window` and records, under the request's `metadata.probe`, the input it ran on.

It answers "ok", or, when the newest user message asks for TOOLS, calls the client's tool `lookup` (a reasoning
item first): `call_0` with long arguments, then, once an output came back, `call_1` with short ones; once
`call_1`'s output is there, "ok".
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, ReasoningDelta, ToolCallDelta

WINDOW = 300
HEAVY_ARGUMENTS = json.dumps({"query": "x" * 200})
LIGHT_ARGUMENTS = json.dumps({"q": 1})


class PipelineWrapper(BasePipelineWrapper):
    context_window = WINDOW

    def run_response(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> Iterator[Any]:
        record(body, input_items)
        newest_user = max(i for i, item in enumerate(input_items) if item.get("role") == "user")
        answered = {item.get("call_id") for item in input_items if item.get("type") == "function_call_output"}
        if "TOOLS" not in text_of(input_items[newest_user]) or "call_1" in answered:
            yield "ok"
            return
        first = not answered
        yield ReasoningDelta("think")
        yield ToolCallDelta(index=0, id="call_0" if first else "call_1", name="lookup")
        yield ToolCallDelta(index=0, arguments=HEAVY_ARGUMENTS if first else LIGHT_ARGUMENTS)


def record(body: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
    """The items as the wrapper got them, in TEST_WRAPPERS_DIR/<probe>.items, for the test to read."""
    probe = (body.get("metadata") or {}).get("probe")
    directory = os.environ.get("TEST_WRAPPERS_DIR")
    if probe and directory:
        (Path(directory) / f"{probe}.items").write_text(json.dumps(input_items))


def text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))

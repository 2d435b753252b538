"""Writes its own compaction summary (`run_compaction`), and answers by saying what its input held.

The summary names how many items it was written from; the answer gives each input item's role and text, a line
each, so a test sees whether the summary stood in for the older turns.
"""

from collections.abc import Iterator
from typing import Any

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, item_text


class PipelineWrapper(BasePipelineWrapper):
    def run_compaction(self, model: str, input_items: list[dict], body: dict) -> Iterator[str]:
        yield "Custom summary "
        yield f"of {len(input_items)} items."

    def run_response(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> str:
        lines = [f"{item.get('role', item['type'])}: {item_text(item)}".replace("\n", " ") for item in input_items]
        return "\n".join(lines)

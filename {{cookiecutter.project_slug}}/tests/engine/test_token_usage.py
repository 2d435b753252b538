"""token_usage.usage_from: every form a run reports its token counts in gives the same Usage, or None.

A pure function of the service, called directly (no service needed): the forms come from Haystack and the
LLM servers, as they send them.
"""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.engine.runs.events import Usage
from {{ cookiecutter.project_slug }}.engine.runs.token_usage import total_usage, usage_from

OPENAI_USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "prompt_tokens_details": None}


@pytest.mark.parametrize(
    "reported",
    [OPENAI_USAGE, {"model": "m", "usage": OPENAI_USAGE}, Usage(prompt_tokens=12, completion_tokens=5)],
    ids=["openai", "haystack-meta", "usage"],
)
def test_every_form_gives_the_same_usage(reported: object) -> None:
    assert usage_from(reported) == Usage(prompt_tokens=12, completion_tokens=5)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({"completion_tokens": 7}, Usage(prompt_tokens=0, completion_tokens=7)),
        ({"prompt_tokens": 9, "completion_tokens": None}, Usage(prompt_tokens=9, completion_tokens=0)),
        ({"usage": {"completion_tokens": 3}}, Usage(prompt_tokens=0, completion_tokens=3)),
    ],
    ids=["completion-only", "prompt-only", "meta-completion-only"],
)
def test_a_partial_count_is_kept(reported: object, expected: Usage) -> None:
    """A server that counts only one side still counted: it is not lost as "no usage"."""
    assert usage_from(reported) == expected


@pytest.mark.parametrize(
    "reported", [None, {}, {"usage": None}, {"usage": {}}, {"model": "m"}, {"total_tokens": 4}, "12 tokens"]
)
def test_nothing_counted_is_none_not_zero(reported: object) -> None:
    assert usage_from(reported) is None


def test_total_usage_adds_what_was_counted() -> None:
    reports = [{"usage": OPENAI_USAGE}, {"usage": None}, {"completion_tokens": 2}]
    assert total_usage(reports) == Usage(prompt_tokens=12, completion_tokens=7)
    assert total_usage([{"usage": None}, {}]) is None

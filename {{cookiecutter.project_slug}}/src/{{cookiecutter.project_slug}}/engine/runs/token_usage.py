"""Token counts read from whatever form a run reports them in, in one place.

OpenAI's `usage` object, a Haystack reply's or chunk's `meta` (which holds it under `usage`), an Agent's
`token_usage`, or a `Usage` event: each becomes a `Usage`, or None when nothing was counted (an LLM server
that does not count a stream sends no usage, or an empty one). A count that is missing is 0 when the other one
is there: `{"completion_tokens": 12}` is 12 completion tokens, not "no usage".

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from .events import Usage


def usage_from(reported: Any) -> Usage | None:
    """The `Usage` in `reported` (an OpenAI usage dict, a Haystack `meta`, or a `Usage`), or None when uncounted."""
    if isinstance(reported, Usage):
        return reported
    if not isinstance(reported, dict):
        return None
    if "usage" in reported:  # a Haystack meta
        return usage_from(reported["usage"])
    prompt, completion = reported.get("prompt_tokens"), reported.get("completion_tokens")
    if prompt is None and completion is None:
        return None
    return Usage(prompt_tokens=prompt or 0, completion_tokens=completion or 0)


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    """`total` and `more` added up; None stands for nothing counted (so far), which adds nothing."""
    if more is None or total is None:
        return total or more
    return Usage(total.prompt_tokens + more.prompt_tokens, total.completion_tokens + more.completion_tokens)


def total_usage(reports: list[Any]) -> Usage | None:
    """The sum of the reports that counted something, or None when none did."""
    total = None
    for reported in reports:
        total = add_usage(total, usage_from(reported))
    return total

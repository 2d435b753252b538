"""What fits a wrapper's LLM: a chain too long for it is truncated (`truncation: "auto"`) or refused.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from .registry import LoadedWrapper


def fit_context(wrapper: LoadedWrapper, items: list[dict[str, Any]], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The input the wrapper runs on (not served yet: items pass unchanged)."""
    return items

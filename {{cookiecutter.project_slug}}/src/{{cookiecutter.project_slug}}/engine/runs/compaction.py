"""Compaction: `compaction` items a client sends back, expanded into the summary the store keeps.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any


async def expand_compactions(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each `compaction` item replaced by the summary it stands for (not served yet: items pass unchanged)."""
    return items

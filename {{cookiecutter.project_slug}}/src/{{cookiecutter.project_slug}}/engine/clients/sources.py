"""The documents an answer drew on, shown after it: in the client's own way when its adapter has one (Open WebUI:
its sources), else as a list.

Return `show_sources(documents)` from a streaming helper's `on_pipeline_end` (see `wrappers/rag.py`):

- a client whose adapter shows sources (`adapter.py`; Open WebUI's streamed chat requests) gets what the adapter
  makes of them: for Open WebUI, one `source` event per document, listed under the answer with its text;
- every other client (the OpenAI SDK, Codex, a `stream: false` answer, the Responses API) gets the text
  `Sources:` and one `- <title>` line per document, after the answer.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from haystack import Document

from ..runs.events import Event
from .adapter import current_client


def show_sources(documents: list[Document], *, title_key: str = "title") -> list[str | Event]:
    """What to add after an answer for `documents`, each named by its `meta[title_key]` (else its id)."""
    if not documents:
        return []
    titles = [str(document.meta.get(title_key) or document.id) for document in documents]
    client = current_client()
    shown = (
        client.show_sources([(t, d.content or "") for t, d in zip(titles, documents, strict=True)]) if client else None
    )
    if shown is not None:
        return shown if isinstance(shown, list) else [shown]
    listed = "".join(f"\n- {title}" for title in dict.fromkeys(titles))  # each title once, in the order found
    return [f"\n\nSources:{listed}"]

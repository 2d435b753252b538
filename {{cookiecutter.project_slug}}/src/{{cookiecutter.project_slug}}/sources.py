"""The documents an answer drew on, shown after it: as Open WebUI's sources to Open WebUI, as a list to others.

Return `show_sources(documents)` from a streaming helper's `on_pipeline_end` (see `wrappers/rag.py`):

- a client that takes Open WebUI's events (see `openwebui.py`) gets one `source` event per document, listed
  under the answer with the document's text;
- every other client (the OpenAI SDK, Codex, a `stream: false` answer, the Responses API) gets the text
  `Sources:` and one `- <title>` line per document, after the answer.
"""

from haystack import Document

from .events import ClientEvent
from .openwebui import client_takes_events, source


def show_sources(documents: list[Document], *, title_key: str = "title") -> list[str | ClientEvent]:
    """What to add after an answer for `documents`, each named by its `meta[title_key]` (else its id)."""
    if not documents:
        return []
    titles = [str(document.meta.get(title_key) or document.id) for document in documents]
    if client_takes_events():
        return [source(title, document.content or "") for title, document in zip(titles, documents, strict=True)]
    listed = "".join(f"\n- {title}" for title in dict.fromkeys(titles))  # each title once, in the order found
    return [f"\n\nSources:{listed}"]

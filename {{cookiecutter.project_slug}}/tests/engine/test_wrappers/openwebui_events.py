"""Every Open WebUI event helper between two pieces of text, and what `client_takes_events()` said."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, openwebui

BEFORE = "Before. "
AFTER = "After."
ONLY_FOR_OPENWEBUI = "Only Open WebUI sees this. "


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        yield BEFORE
        yield openwebui.status("Looking things up")
        yield openwebui.notification("success", "Found it")
        yield openwebui.source("manual.pdf", "Page 3 says so.")
        yield openwebui.source("Docs", "The docs say so.", url="https://example.com/docs")
        yield openwebui.details("Search", "**3** hits")
        yield openwebui.message(ONLY_FOR_OPENWEBUI)
        yield openwebui.replace("Replaced.")
        yield openwebui.status("Looked things up", done=True, hidden=True)
        yield AFTER
        yield f" [takes events: {openwebui.client_takes_events()}]"

    def run_response(self, model: str, input_items: list[dict], body: dict) -> Iterator[object]:
        return self.run_chat_completion(model, [], body)

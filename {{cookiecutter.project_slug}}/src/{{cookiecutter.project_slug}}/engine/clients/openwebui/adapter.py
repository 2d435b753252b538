"""Open WebUI as a client adapter (see `clients/adapter.py`): which requests are Open WebUI's, its background tasks
answered without running the wrapper, and how an agent's tool calls show in it.

Which streamed chat requests get Open WebUI's events is the OPENWEBUI_EVENTS setting:

- `auto` (the default): requests that carry Open WebUI's `X-OpenWebUI-*` headers, which it sends
  to its connections when started with `ENABLE_FORWARD_USER_INFO_HEADERS=true`;
- `always`: every streamed chat request (only when nothing but Open WebUI calls the service);
- `never`: none.

A wrapper whose class sets `handles_openwebui_tasks = True` gets Open WebUI's background tasks as ordinary
chat requests (and can call `background_task(body)` to tell them apart).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...runs.events import ClientSpecificEvent
from ..adapter import current_client
from .events import source, status, tool_call_details
from .tasks import answer_task, background_task

if TYPE_CHECKING:
    from ...settings import Settings

# Open WebUI's forwarded headers (X-OpenWebUI-User-Id, -User-Name, -Chat-Id, -User-Jwt, ...) share this prefix.
HEADER_PREFIX = "x-openwebui-"


class OpenWebUI:
    """The Open WebUI adapter, configured from the OPENWEBUI_EVENTS and TASK_* settings."""

    def __init__(self, settings: "Settings") -> None:
        self.events_mode = settings.openwebui_events
        self.task_model, self.task_base_url, self.task_api_key = (
            settings.task_model,
            settings.task_base_url,
            settings.task_api_key,
        )

    def recognises(self, headers: Mapping[str, str]) -> bool:
        if self.events_mode == "always":
            return True
        if self.events_mode == "never":
            return False
        return any(name.lower().startswith(HEADER_PREFIX) for name, _ in headers.items())

    async def answer_itself(self, body: dict[str, Any], wrapper: object) -> str | None:
        """A background task's answer (titles, tags...), unless the wrapper handles them itself."""
        task = background_task(body)
        if task is None or getattr(wrapper, "handles_openwebui_tasks", False):
            return None
        return await answer_task(task, self.task_model, self.task_base_url, self.task_api_key)

    def show_tool_call_start(self, name: str, arguments: str, call_id: str | None) -> ClientSpecificEvent:
        """A running status while the tool works."""
        return status(f"Running {name}…")

    def show_tool_call_end(self, name: str, arguments: str, result: str, error: bool) -> list[ClientSpecificEvent]:
        """The status marked done, and a block with the call's arguments and result."""
        outcome = status(f"{name} failed" if error else f"Used {name}", done=True)
        return [outcome, tool_call_details(name, arguments, result, error=error)]

    def stream_form(self, event: ClientSpecificEvent) -> str | dict[str, Any]:
        """Text events as content (Open WebUI 0.12 draws a streamed answer from its content); others under `event`."""
        if event.data.get("type") in ("message", "chat:message:delta"):
            return str(event.data.get("data", {}).get("content", ""))
        return {"event": event.data}

    def show_sources(self, sources: list[tuple[str, str]]) -> list[ClientSpecificEvent]:
        """One `source` event each: Open WebUI lists them under the answer, with the document's text."""
        return [source(title, text) for title, text in sources]


def client_takes_events() -> bool:
    """True inside a run whose client renders Open WebUI events (a streamed chat request from Open WebUI)."""
    return isinstance(current_client(), OpenWebUI)

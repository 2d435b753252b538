"""Open WebUI, the one client adaptation built in: its events, its background tasks, how tool calls show in it.

Open WebUI renders more than text. A wrapper (or a streaming callback) yields these events like text:

    from ..engine import openwebui

    yield openwebui.status("Searching the manual")
    yield openwebui.details("What I searched", "`reset password` in *admin-guide.pdf*")
    yield openwebui.status("Searched the manual", done=True)

They reach only Open WebUI's streamed chat requests (OPENWEBUI_EVENTS decides which those are: see
`adapter.py`); every other client, every `stream: false` answer and the Responses API drop them. Inside a run,
`client_takes_events()` says which case the current request is.

- `events.py`: the events (status, notification, source, message, replace, details, tool_call_details);
- `adapter.py`: the adapter `create_app` registers (see `clients/adapter.py`): which requests are Open WebUI's, its
  tasks answered without running the wrapper, the default display of an agent's tool calls;
- `tasks.py`: Open WebUI's background tasks (chat title, tags, follow-ups) and their cheap answers.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from .adapter import HEADER_PREFIX, OpenWebUI, client_takes_events
from .events import details, message, notification, replace, source, status, tool_call_details
from .tasks import BackgroundTask, background_task

__all__ = [
    "HEADER_PREFIX",
    "BackgroundTask",
    "OpenWebUI",
    "background_task",
    "client_takes_events",
    "details",
    "message",
    "notification",
    "replace",
    "source",
    "status",
    "tool_call_details",
]

"""Open WebUI's events: what they look like, which clients get them, and how tool calls show in Open WebUI.

Open WebUI renders more than text: a status line above the answer, toast notifications, sources
under it, and collapsible `<details>` blocks inside it. The helpers below build these as
`ClientEvent`s, which a wrapper (or a streaming callback) yields like text:

    yield openwebui.status("Searching the manual")
    yield openwebui.details("What I searched", "`reset password` in *admin-guide.pdf*")
    yield openwebui.status("Searched the manual", done=True)

They reach only clients that can take them. The chat stream sends them to Open WebUI; every other
client (the OpenAI SDK, Codex), every `stream: false` answer and the Responses API drop them. Which
clients take them is decided per request by the OPENWEBUI_EVENTS setting:

- `auto` (the default): requests that carry Open WebUI's `X-OpenWebUI-*` headers, which it sends
  to its connections when started with `ENABLE_FORWARD_USER_INFO_HEADERS=true`;
- `always`: every streamed chat request (only when nothing but Open WebUI calls the service);
- `never`: none.

Inside a run, `client_takes_events()` says which case the current request is.
"""

import html
import secrets
from collections.abc import Iterable
from contextvars import ContextVar

from .events import ClientEvent

# Open WebUI's forwarded headers (X-OpenWebUI-User-Id, -User-Name, -Chat-Id, -User-Jwt, ...) share this prefix.
HEADER_PREFIX = "x-openwebui-"
NOTIFICATION_KINDS = ("info", "success", "warning", "error")

_client_takes_events: ContextVar[bool] = ContextVar("client_takes_events", default=False)


# --- which clients get events ---


def takes_events(header_names: Iterable[str], mode: str) -> bool:
    """Whether a request with these headers gets events under OPENWEBUI_EVENTS=`mode`."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return any(name.lower().startswith(HEADER_PREFIX) for name in header_names)


def remember_client(takes: bool) -> None:
    """Called by the chat route before the run starts, so the run (and `client_takes_events`) knows."""
    _client_takes_events.set(takes)


def client_takes_events() -> bool:
    """True inside a run whose client renders Open WebUI events (a streamed chat request from Open WebUI)."""
    return _client_takes_events.get()


# --- the events ---


def status(description: str, *, done: bool = False, hidden: bool = False) -> ClientEvent:
    """The status line above the answer; `done=False` shows it as still running, `hidden=True` removes the line."""
    return ClientEvent({"type": "status", "data": {"description": description, "done": done, "hidden": hidden}})


def notification(kind: str, content: str) -> ClientEvent:
    """A toast in the corner of Open WebUI; `kind` is info, success, warning or error."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"notification kind must be one of {', '.join(NOTIFICATION_KINDS)}, not {kind!r}")
    return ClientEvent({"type": "notification", "data": {"type": kind, "content": content}})


def source(name: str, document: str, *, url: str | None = None) -> ClientEvent:
    """A source listed under the answer (Open WebUI's citations): `name` labels it, `document` is the quoted text."""
    reference = {"source": url or name, "name": name, "external": url is not None}
    data = {"source": {"name": name, **({"url": url} if url else {})}, "document": [document], "metadata": [reference]}
    return ClientEvent({"type": "source", "data": data})


def message(content: str) -> ClientEvent:
    """Text added to the answer for Open WebUI only (other clients never see it)."""
    return ClientEvent({"type": "message", "data": {"content": content}})


def replace(content: str) -> ClientEvent:
    """Open WebUI's event for replacing the answer shown. Open WebUI 0.12.4 draws a streamed answer from what
    streamed and does not keep the replacement: prefer `message` and `details`."""
    return ClientEvent({"type": "replace", "data": {"content": content}})


def details(summary: str, body: str) -> ClientEvent:
    """A collapsible block in the answer: `summary` is its one-line title, `body` the Markdown shown when opened."""
    title = " ".join(summary.split())
    return message(f"\n\n<details>\n<summary>{title}</summary>\n{body}\n</details>\n\n")


def tool_call_details(
    name: str, arguments: str, result: str, *, error: bool = False, call_id: str | None = None
) -> ClientEvent:
    """A tool call and its result, drawn like Open WebUI's own tool calls (the arguments as a table, then the
    result); `arguments` is JSON text, `result` the tool's output."""
    attributes = {
        "type": "tool_calls",
        "done": "true",
        "id": call_id or f"call_{secrets.token_hex(8)}",
        "name": name,
        "arguments": arguments,
    }
    if error:
        attributes["status"] = "failed"
    tag = " ".join(f'{key}="{html.escape(value)}"' for key, value in attributes.items())
    return message(f"\n\n<details {tag}>\n<summary>Tool Executed</summary>\n{html.escape(result)}\n</details>\n\n")


# --- the default display of an agent's tool calls (the defaults of the streaming helpers' callbacks) ---


def show_tool_call_start(name: str, arguments: str, call_id: str | None) -> ClientEvent | None:
    """A running status while the tool works, for clients that take events."""
    return status(f"Running {name}…") if client_takes_events() else None


def show_tool_call_end(name: str, arguments: str, result: str, error: bool) -> list[ClientEvent] | None:
    """The status marked done, and a block with the call's arguments and result, for clients that take events."""
    if not client_takes_events():
        return None
    outcome = status(f"{name} failed" if error else f"Used {name}", done=True)
    return [outcome, tool_call_details(name, arguments, result, error=error)]

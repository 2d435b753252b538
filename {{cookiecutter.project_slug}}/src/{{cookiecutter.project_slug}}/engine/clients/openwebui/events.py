"""Open WebUI's events: a status line above the answer, toast notifications, sources under it, and
collapsible `<details>` blocks inside it, built as `ClientSpecificEvent`s that a wrapper (or a streaming
callback) yields like text. Only a chat stream to Open WebUI carries them (see `client.py`).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import html

from ...runs.events import ClientSpecificEvent
from ...wire.ids import new_id

NOTIFICATION_KINDS = ("info", "success", "warning", "error")


def status(description: str, *, done: bool = False, hidden: bool = False) -> ClientSpecificEvent:
    """The status line above the answer; `done=False` shows it as still running, `hidden=True` removes the line."""
    return ClientSpecificEvent({"type": "status", "data": {"description": description, "done": done, "hidden": hidden}})


def notification(kind: str, content: str) -> ClientSpecificEvent:
    """A toast in the corner of Open WebUI; `kind` is info, success, warning or error."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"notification kind must be one of {', '.join(NOTIFICATION_KINDS)}, not {kind!r}")
    return ClientSpecificEvent({"type": "notification", "data": {"type": kind, "content": content}})


def source(name: str, document: str, *, url: str | None = None) -> ClientSpecificEvent:
    """A source listed under the answer (Open WebUI's citations): `name` labels it, `document` is the quoted text."""
    reference = {"source": url or name, "name": name, "external": url is not None}
    data = {"source": {"name": name, **({"url": url} if url else {})}, "document": [document], "metadata": [reference]}
    return ClientSpecificEvent({"type": "source", "data": data})


def message(content: str) -> ClientSpecificEvent:
    """Text added to the answer for Open WebUI only (other clients never see it)."""
    return ClientSpecificEvent({"type": "message", "data": {"content": content}})


def replace(content: str) -> ClientSpecificEvent:
    """Open WebUI's event for replacing the answer shown. Open WebUI 0.12.4 draws a streamed answer from what
    streamed and does not keep the replacement: prefer `message` and `details`."""
    return ClientSpecificEvent({"type": "replace", "data": {"content": content}})


def details(summary: str, body: str) -> ClientSpecificEvent:
    """A collapsible block in the answer: `summary` is its one-line title, `body` the Markdown shown when opened."""
    title = " ".join(summary.split())
    return message(f"\n\n<details>\n<summary>{title}</summary>\n{body}\n</details>\n\n")


def tool_call_details(
    name: str, arguments: str, result: str, *, error: bool = False, call_id: str | None = None
) -> ClientSpecificEvent:
    """A tool call and its result, drawn like Open WebUI's own tool calls (the arguments as a table, then the
    result); `arguments` is JSON text, `result` the tool's output."""
    attributes = {
        "type": "tool_calls",
        "done": "true",
        "id": call_id or new_id("call_", 16),
        "name": name,
        "arguments": arguments,
    }
    if error:
        attributes["status"] = "failed"
    tag = " ".join(f'{key}="{html.escape(value)}"' for key, value in attributes.items())
    return message(f"\n\n<details {tag}>\n<summary>Tool Executed</summary>\n{html.escape(result)}\n</details>\n\n")

"""The few typed events every wrapper's output is turned into.

Chat completions (and later the Responses API) are encoded from this one stream, so a fix to
streaming lands once. Wrappers may yield these directly when plain text is not enough.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from dataclasses import dataclass
from typing import Any

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter"})


@dataclass(slots=True)
class TextDelta:
    """A piece of the assistant's answer."""

    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning, shown apart from the answer by clients that support it."""

    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A tool call for the *client* to run, streamed in pieces that share an `index`.

    The first piece of a call carries `id` and `name`; later pieces carry more `arguments` text.
    """

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Usage:
    """Token counts; several Usage events in one run add up (an agent calls its LLM more than once)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class Finish:
    """Why generation stopped, when the wrapper knows better than the default (`stop`, or `tool_calls`)."""

    reason: str


@dataclass(slots=True)
class StreamError:
    """The run failed; before any output it becomes a JSON error with `status`, after it an in-stream error.

    `headers` go on the JSON error (e.g. `Retry-After`); without `x-should-retry: true` among them, clients
    are told not to retry.
    """

    message: str
    type: str = "server_error"
    code: str | None = "server_error"
    status: int = 500
    param: str | None = None
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class ClientSpecificEvent:
    """An event in one client's own format (Open WebUI's `{"type": ..., "data": ...}`: see `openwebui/`).

    Only a chat stream to a client whose adapter recognised it carries it (see `clients/adapter.py`); every other
    client, `stream: false` answers and the Responses API drop it, so it never reaches them as garbage.
    """

    data: dict[str, Any]


@dataclass(slots=True)
class OutputItem:
    """An output item the service made itself, not the LLM: a remote MCP server's tool list or tool call, an
    approval request (`runs/remote_mcp.py`). `done=False` opens it (a call under way), the same item with `done=True`
    closes it; an item sent only with `done=True` opens and closes at once. Only the Responses API shows it.
    """

    item: dict[str, Any]
    done: bool = True


Event = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish | StreamError | ClientSpecificEvent | OutputItem


def merge_deltas(events: list[Event]) -> list[Event]:
    """Join runs of text (or of reasoning) deltas, so a burst of small chunks goes out as one."""
    merged: list[Event] = []
    pieces: list[str] = []
    for event in events:
        previous = merged[-1] if merged else None
        if isinstance(event, TextDelta | ReasoningDelta) and type(previous) is type(event):
            pieces.append(event.text)
            continue
        if pieces:
            merged[-1] = type(previous)(previous.text + "".join(pieces))
            pieces.clear()
        merged.append(event)
    if pieces:
        merged[-1] = type(merged[-1])(merged[-1].text + "".join(pieces))
    return merged

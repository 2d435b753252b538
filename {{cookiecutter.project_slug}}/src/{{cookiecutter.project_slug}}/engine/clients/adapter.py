"""Client adapters: what the service does differently for one kind of client (Open WebUI is the built-in one).

`create_app` registers the adapters (`services().client_adapters`). For each chat request, the chat
route asks each adapter in turn whether to answer the request itself, without running the wrapper (Open WebUI's
title and tag tasks), then which adapter recognises the client of a streamed request: that client gets the
`ClientSpecificEvent`s a run yields (everyone else has them dropped), and its adapter shows the run's tool calls
(the streaming helpers' default callbacks call `current_client()`). To adapt to another client, write a class
with these six methods and add an instance to the list in `create_app`.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from ..runs.events import ClientSpecificEvent, Event


class ClientAdapter(Protocol):
    def recognises(self, headers: Mapping[str, str]) -> bool:
        """Whether a streamed chat request with these headers comes from this client."""
        ...

    async def answer_itself(self, body: dict[str, Any], wrapper: object) -> str | None:
        """The text to answer a chat request with instead of running `wrapper`; None to run it as usual."""
        ...

    def show_tool_call_start(self, name: str, arguments: str, call_id: str | None) -> Event | list[Event] | None:
        """What this client is shown when a tool that runs here starts (arguments as JSON text)."""
        ...

    def show_tool_call_end(self, name: str, arguments: str, result: str, error: bool) -> Event | list[Event] | None:
        """What this client is shown when that tool has answered."""
        ...

    def stream_form(self, event: ClientSpecificEvent) -> str | dict[str, Any]:
        """How a chat stream carries one of this client's events: a `str` is text of the answer (a content delta),
        a `dict` holds the fields of a chunk of its own, beside `choices: []`."""
        ...

    def show_sources(self, sources: list[tuple[str, str]]) -> Event | list[Event] | None:
        """What this client is shown for the documents an answer drew on, (title, text) each (`sources.py`);
        None: the plain `Sources:` list other clients get."""
        ...


_current_client: ContextVar[ClientAdapter | None] = ContextVar("current_client", default=None)


def recognised_client(adapters: list[ClientAdapter], headers: Mapping[str, str]) -> ClientAdapter | None:
    """The first adapter that recognises the client of a streamed request, or None for a plain OpenAI client."""
    return next((adapter for adapter in adapters if adapter.recognises(headers)), None)


def remember_client(adapter: ClientAdapter | None) -> None:
    """Called by the chat route before the run starts (the run goes on in a copy of this context)."""
    _current_client.set(adapter)


def current_client() -> ClientAdapter | None:
    """Inside a run: the adapter of a client that takes its own events, or None (any other client or API)."""
    return _current_client.get()

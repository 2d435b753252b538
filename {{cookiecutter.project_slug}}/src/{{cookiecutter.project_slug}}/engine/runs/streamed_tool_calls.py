"""Tool calls that arrive in pieces, joined by their index: the one rule for every stream the service reads.

The first piece of a call names it (`id`, `name`); later pieces add `arguments` text. Servers that repeat the
id or the name on every piece, or never send an id, are read the same way: the first id and name count.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from dataclasses import dataclass, field


@dataclass(slots=True)
class StreamedToolCall:
    id: str | None = None
    name: str = ""
    argument_pieces: list[str] = field(default_factory=list)  # joined once, at the end

    @property
    def arguments(self) -> str:
        return "".join(self.argument_pieces)


class StreamedToolCalls:
    """The calls of one stream, in the order their first piece came."""

    def __init__(self) -> None:
        self._calls: dict[int, StreamedToolCall] = {}

    def add(self, index: int, id: str | None, name: str | None, arguments: str | None) -> StreamedToolCall:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = StreamedToolCall()
        call.id = call.id or id or None
        call.name = call.name or name or ""
        if arguments:
            call.argument_pieces.append(arguments)
        return call

    def calls(self) -> list[StreamedToolCall]:
        return list(self._calls.values())

    def take(self) -> list[StreamedToolCall]:
        """The calls so far, forgotten here: the next piece starts a new round of calls."""
        calls = self.calls()
        self._calls = {}
        return calls

    def __bool__(self) -> bool:
        return bool(self._calls)

"""Who is asking: the context of the request a run serves, for wrappers that filter per user or log per tenant.

    from .who_is_asking import current_request

    def run_response(self, model, input_items, body):
        asking = current_request()
        filters = {"field": "meta.owner", "operator": "==", "value": asking.end_user}
        ...

The chat and responses routes set it before the run starts (and the files route before `run_file_upload`);
every run sees the context of its own request: async methods on the event loop, sync ones in a worker
thread, and the threads the streaming helpers start, as each of them runs in a copy of the request's context.
Outside a request, `current_request()` returns an empty context (no headers, nobody).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from ..clients.openwebui.adapter import HEADER_PREFIX

# Not handed to wrappers: the API key is checked by the service, whose `API_KEYS` names it (`api_key_name`).
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class OpenWebUIUser:
    """The Open WebUI user on whose behalf it calls (it forwards them with ENABLE_FORWARD_USER_INFO_HEADERS=true)."""

    id: str | None
    name: str | None
    email: str | None
    role: str | None
    chat_id: str | None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the service knows of a request besides its body, read-only."""

    # "chat", "responses" or "files" (for `run_file_upload`); "" outside a request.
    api: str = ""
    # The request's headers, names in lower case (a repeated header's values joined by ", "), without
    # Authorization and cookies.
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The name of the key the client sent, when API_KEYS names its keys (`name:key`); None for an unnamed key.
    api_key_name: str | None = None
    # The request's `user` and `safety_identifier` fields (the end user as the client's application names them).
    user: str | None = None
    safety_identifier: str | None = None
    # The request's `metadata` (at most 16 string pairs, checked by the service).
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Open WebUI's forwarded user, when its X-OpenWebUI-* headers came with the request.
    openwebui_user: OpenWebUIUser | None = None

    @property
    def end_user(self) -> str | None:
        """The best-known id of the person asking: Open WebUI's user id, else `safety_identifier`, else `user`."""
        forwarded = self.openwebui_user.id if self.openwebui_user is not None else None
        return forwarded or self.safety_identifier or self.user


NO_REQUEST = RequestContext()


class _Asking:
    """What a route noted of its request; the `RequestContext` is made from it the first time a run asks.

    Most runs never ask, and making it (every header joined, two read-only views) was 2.5% of a plain request's
    CPU. Two threads that ask at once may both make it: the same context either way.
    """

    __slots__ = ("api", "api_key_name", "context", "headers", "metadata", "safety_identifier", "user")

    def __init__(
        self, api: str, headers: Iterable[tuple[str, str]], body: dict[str, Any], api_key_name: str | None
    ) -> None:
        self.api, self.headers, self.api_key_name = api, headers, api_key_name
        # Taken now: a wrapper may change its body before it asks.
        self.user, self.safety_identifier = body.get("user"), body.get("safety_identifier")
        self.metadata = dict(body.get("metadata") or {})
        self.context: RequestContext | None = None

    def request_context(self) -> RequestContext:
        if self.context is None:
            joined: dict[str, str] = {}
            for name, value in self.headers:
                name = name.lower()
                if name not in HIDDEN_HEADERS:
                    joined[name] = f"{joined[name]}, {value}" if name in joined else value
            self.context = RequestContext(
                api=self.api,
                headers=MappingProxyType(joined),
                api_key_name=self.api_key_name,
                user=self.user,
                safety_identifier=self.safety_identifier,
                metadata=MappingProxyType(self.metadata),
                openwebui_user=_openwebui_user(joined),
            )
        return self.context


_current: ContextVar[_Asking | None] = ContextVar("request_context", default=None)


def current_request() -> RequestContext:
    """The context of the request the current run serves (`NO_REQUEST` outside one)."""
    asking = _current.get()
    return asking.request_context() if asking is not None else NO_REQUEST


def remember_request(
    api: str, headers: Iterable[tuple[str, str]], body: dict[str, Any], api_key_name: str | None
) -> None:
    """Called by the routes before a run starts: the run, started from this context, inherits it.

    `headers` are read when a run first asks (the routes pass the request's own, which stay as they came).
    """
    _current.set(_Asking(api, headers, body, api_key_name))


# The user and chat headers Open WebUI forwards; another X-OpenWebUI-* header (one set on its connection to be
# recognised, docs/openwebui.md) names nobody.
USER_HEADERS = tuple(
    f"{HEADER_PREFIX}{name}" for name in ("user-id", "user-name", "user-email", "user-role", "chat-id")
)


def _openwebui_user(headers: Mapping[str, str]) -> OpenWebUIUser | None:
    if not any(name in headers for name in USER_HEADERS):
        return None
    name = headers.get(f"{HEADER_PREFIX}user-name")
    return OpenWebUIUser(
        id=headers.get(f"{HEADER_PREFIX}user-id"),
        name=unquote(name) if name is not None else None,  # Open WebUI URL-quotes the name
        email=headers.get(f"{HEADER_PREFIX}user-email"),
        role=headers.get(f"{HEADER_PREFIX}user-role"),
        chat_id=headers.get(f"{HEADER_PREFIX}chat-id"),
    )

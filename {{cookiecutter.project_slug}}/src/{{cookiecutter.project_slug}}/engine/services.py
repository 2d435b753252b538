"""The collaborators of the routes and helpers, built once by `create_app()` and reached one way: `services()`.

The template's file, updated by `cruft update`. The settings, the registry, the client adapters and the readiness
checks exist as soon as the app does; the runner, the state store, the file store and the background runs once
it starts serving, since their clients belong to the loop that serves. Wrappers' file helpers run in worker
threads, outside any app context, so the services of the app this process serves are also kept here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quart import current_app, has_app_context

if TYPE_CHECKING:  # types only: each of these modules is built on the others, and none needs this one to import
    from .clients.adapter import ClientAdapter
    from .files.file_store import FileStore
    from .runs.background import BackgroundRuns
    from .runs.registry import Registry
    from .runs.runner import Runner
    from .settings import Settings
    from .state import StateStore
    from .state.recent import RecentResponses

# What /health/ready asks each part: None when it is ready, else a word for what it is doing ("loading").
ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass
class Services:
    """Everything a route reaches beyond its request."""

    settings: Settings
    registry: Registry
    client_adapters: list[ClientAdapter]
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    api_keys: list[tuple[bytes, str | None]] = field(default_factory=list)  # (key, its name), from API_KEYS
    # Set when serving starts (see `create_app`):
    runner: Runner = field(init=False)
    state: StateStore = field(init=False)
    recent: RecentResponses = field(init=False)  # the responses this process stored last (a cache)
    files: FileStore = field(init=False)
    background: BackgroundRuns = field(init=False)


_serving: Services | None = None


def serve_with(app_services: Services) -> None:
    """Called by `create_app()` when serving starts: these are the services of this process."""
    global _serving
    _serving = app_services


def services() -> Services:
    """The services of the current app (inside a request or the app's context), else of the app this process serves."""
    found = current_services()
    if found is None:
        raise RuntimeError("The service has not started serving: create_app() sets its services when it does")
    return found


def current_services() -> Services | None:
    """As `services()`, or None outside a serving app (a notebook that runs a streaming helper itself)."""
    return current_app.extensions["services"] if has_app_context() else _serving

"""The app factory: `create_app()` builds the Quart app that serves the wrappers over the OpenAI API.

The template's file, updated by `cruft update`. The entry points (`asgi.py`, `__main__.py`) call
`startup.prepare_process()` before they import this module: it imports Haystack and prometheus-client, which read
some settings once, at import.
"""

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from quart import Quart

from .clients.adapter import ClientAdapter
from .clients.openwebui import OpenWebUI
from .files.blobs import open_blob_store
from .files.file_store import FileStore
from .http.auth import HEALTH_PATHS, parse_api_keys, require_api_keys
from .http.cors import allow_origins
from .http.errors import register_error_handlers
from .http.idle_clients import IdleClientLimit
from .http.unsent_bytes import limit_unsent_bytes_of_listeners
from .observability import metrics
from .observability.access_log import write_access_line
from .observability.log_format import configure_logging
from .observability.loop_watch import LoopWatch
from .observability.request_tracking import TrackRequests
from .observability.tracing import start_tracing
from .routes import chat, compaction, conversations, files, health, mcp, models, responses, status, typed_runs
from .routes import metrics as metrics_route
from .runs.background import BackgroundRuns, BackgroundSettings
from .runs.conversation_turns import end_background_turn
from .runs.registry import Registry, load_wrappers, wrapper_names
from .runs.remote_mcp import with_remote_mcp
from .runs.runner import Deadlines, Runner
from .runs.shutdown import on_stop_signal
from .services import ReadinessCheck, Services, serve_with
from .settings import Settings, split_list
from .state import StateStore, StoreUnavailable, open_state_store, store_limits
from .state.recent import RecentResponses

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    client_adapters: Sequence[ClientAdapter] = (),
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
) -> Quart:
    """Build the app; once it serves, the wrappers load (and their setup() runs) in the background.

    `client_adapters` (see clients/adapter.py) are tried before the built-in Open WebUI one; `readiness_checks`
    join the built-in `wrappers` and `store` checks of /health/ready. Both are for an entry point of your own
    (docs/openwebui.md, docs/operations.md), so that extending the service needs no edit of the engine.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)

    # What the service does differently for one kind of client: the first adapter that recognises a request wins.
    adapters = [*client_adapters, OpenWebUI(settings)]
    api_keys = [(key.encode(), name) for key, name in parse_api_keys(settings.api_keys or "").items()]
    app_services = Services(settings, Registry(), adapters, api_keys=api_keys)

    app = Quart(__name__)
    app.extensions["services"] = app_services
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep the OpenAI field order
    app.request_class = files.UploadRequest  # file uploads are limited by MAX_FILE_BYTES instead
    register_routes(app, settings)
    register_error_handlers(app)
    if app_services.api_keys:
        require_api_keys(app, HEALTH_PATHS | ({"/metrics"} if settings.metrics == "open" else set()))
    if settings.cors_allow_origins:
        allow_origins(app, split_list(settings.cors_allow_origins))
    tracer = start_tracing()
    mcp_server = mcp.McpServer(app_services)
    app.asgi_app = mcp.McpEndpoint(app.asgi_app, mcp_server)  # type: ignore[method-assign]
    app.asgi_app = IdleClientLimit(app.asgi_app, settings.idle_client_seconds)  # type: ignore[method-assign]
    app.asgi_app = TrackRequests(  # type: ignore[method-assign]
        app.asgi_app,
        finished=metrics.count_request if settings.metrics != "off" else None,
        span=tracer.request_span if tracer is not None else None,
        access_line=write_access_line if settings.access_log else None,
    )

    async def wrappers_loaded() -> str | None:
        return app_services.registry.readiness(settings.ready_with_failed_wrappers)

    async def store_answers() -> str | None:
        try:
            await app_services.state.ping()
        except StoreUnavailable:
            return "unreachable"
        return None

    # What /health/ready checks; each returns None when its part is ready (see routes/health.py).
    app_services.readiness_checks.update(wrappers=wrappers_loaded, store=store_answers, **(readiness_checks or {}))
    tasks: dict[str, asyncio.Task[None]] = {}
    stops: dict[str, Callable[[], Awaitable[None]]] = {}
    watches: dict[str, LoopWatch] = {}

    @app.before_serving
    async def start() -> None:
        limit_unsent_bytes_of_listeners(settings.max_unsent_bytes)  # before hypercorn accepts anything
        runner = Runner(
            settings.thread_pool_size,
            first_output_timeout=settings.first_output_timeout_seconds,
            run_timeout=settings.run_timeout_seconds,
        )
        store = await open_state(settings)
        end_turn = partial(end_background_turn, store, settings)
        background = BackgroundRuns(
            runner,
            store,
            responses_method(app_services.registry, runner, settings),
            end_turn,
            background_settings(settings),
        )

        def stop_runs() -> None:
            background.hand_back()  # first: their runs are handed to another replica, not ended
            runner.stop_all()

        on_stop_signal(stop_runs, settings.shutdown_grace_seconds)
        file_store = FileStore(store, open_blob_store(settings.files_url, settings.data_dir))
        file_store.loop = asyncio.get_running_loop()
        await import_old_file_metadata(file_store)
        app_services.runner, app_services.state, app_services.files = runner, store, file_store
        app_services.recent = RecentResponses()
        app_services.background = background
        serve_with(app_services)
        if settings.loop_blocked_warn_seconds:
            runner.follow_spawned_tasks(asyncio.get_running_loop())
            watches["loop"] = LoopWatch(
                asyncio.get_running_loop(),
                settings.loop_blocked_warn_seconds,
                settings.wrappers_package,
                runner.run_of_task,
            )
        # Looking for bytes left by uploads that died may list a whole bucket: not before serving.
        tasks["file_store_upkeep"] = asyncio.create_task(prune_file_store(file_store))
        names = wrapper_names(settings.wrappers_package)  # a WRAPPERS_PACKAGE that cannot be imported stops here
        tasks["wrapper_loading"] = asyncio.create_task(load_then_freeze(settings.wrappers_package, names))
        stops["mcp"] = mcp.start(mcp_server)

    async def load_then_freeze(package_name: str, names: list[str]) -> None:
        registry = app_services.registry
        await load_wrappers(package_name, names, registry)
        app_services.background.start_loops()  # may start again a run whose process died: wrappers loaded
        keep_startup_objects_out_of_gc()
        if registry.failed:
            failed = ", ".join(f"{model_id} ({reason})" for model_id, reason in registry.failed.items())
            ready = "ready all the same" if settings.ready_with_failed_wrappers else "/health/ready answers 503"
            logger.error(
                "%d models served; failed to load: %s; %s (READY_WITH_FAILED_WRAPPERS)",
                len(registry.serving()),
                failed,
                ready,
            )
        else:
            logger.info("Ready: %d models served", len(registry.serving()))

    @app.after_serving
    async def stop() -> None:
        tasks["wrapper_loading"].cancel()
        await stops["mcp"]()
        if "loop" in watches:
            watches["loop"].stop()
        await app_services.background.close()
        app_services.runner.shutdown()
        tasks["file_store_upkeep"].cancel()
        await app_services.state.close()
        metrics.forget_this_process()
        if tracer is not None:
            tracer.shutdown()

    return app


def register_routes(app: Quart, settings: Settings) -> None:
    """The OpenAI APIs at `/v1/...` and, for clients configured without the prefix, at `/...`; the rest once."""
    openai_apis = [
        models.blueprint,
        chat.blueprint,
        responses.blueprint,
        compaction.blueprint,
        conversations.blueprint,
        files.blueprint,
    ]
    for blueprint in openai_apis:
        app.register_blueprint(blueprint, url_prefix="/v1")
        app.register_blueprint(blueprint, name=f"{blueprint.name}_unversioned")
    app.register_blueprint(chat.model_in_path)
    app.register_blueprint(typed_runs.blueprint)
    app.register_blueprint(status.blueprint)
    app.register_blueprint(health.blueprint)
    if settings.metrics != "off":
        app.register_blueprint(metrics_route.blueprint)
        metrics.start_counting()


def responses_method(
    registry: Registry, runner: Runner, settings: Settings
) -> Callable[[str, dict[str, Any]], Callable[..., Any]]:
    """How a background run finds the wrapper method serving its model's Responses API (the registry loads late),
    with the request's remote MCP servers around it (runs/remote_mcp.py)."""

    def method_for(model: str, body: dict[str, Any]) -> Callable[..., Any]:
        wrapper, method_name = registry.find(model, "responses")
        return with_remote_mcp(runner, getattr(wrapper.instance, method_name), body, settings)

    return method_for


def background_settings(settings: Settings) -> BackgroundSettings:
    deadlines = Deadlines(total=settings.background_timeout_seconds, total_setting="BACKGROUND_TIMEOUT_SECONDS")
    return BackgroundSettings(
        workers=settings.background_workers,
        lease_seconds=settings.background_lease_seconds,
        restart_lost_runs=settings.background_restart_lost_runs,
        deadlines=deadlines,
        max_events=settings.background_max_events,
        keepalive_seconds=settings.keepalive_seconds,
    )


async def open_state(settings: Settings) -> StateStore:
    """The state store STATE_URL names. One that cannot be reached yet is no reason not to start: requests that
    need it get 503 until it answers, and /status says so."""
    store = open_state_store(settings.state_url, settings.data_dir, *store_limits(settings))
    try:
        await store.ping()
        await store.prune()
    except StoreUnavailable as error:
        logger.warning("Starting without the state store: %s", error.message)
    return store


async def import_old_file_metadata(files: FileStore) -> None:
    """List the files uploaded before the state store existed (their metadata was in `<id>.json` files)."""
    try:
        await files.import_metadata_files()
    except StoreUnavailable as error:  # the service starts anyway: requests that need the store get 503
        logger.warning("Files from before the state store not imported yet: %s", error.message)


async def prune_file_store(files: FileStore) -> None:
    """Remove bytes that uploads or deletes killed midway left unlisted."""
    try:
        await files.prune()
    except StoreUnavailable as error:
        logger.warning("File store not pruned: %s", error.message)


def keep_startup_objects_out_of_gc() -> None:
    """Exempt what imports and the wrappers' `setup()` built from the garbage collector's full passes.

    They live as long as the process, yet a full collection walks all of them (Haystack and the SDKs alone
    are ~150k objects) and stalls every request meanwhile: 86 ms on a busy 2-core machine, where p99 at 16
    concurrent requests went from 84-125 ms to 42-48 ms with this. What is garbage already is collected
    first; what requests create later is collected as usual.
    """
    gc.collect()
    gc.freeze()


__all__ = ["Settings", "create_app"]

"""Typed settings, read from the environment and from `.env` in the working directory.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dotenv import load_dotenv
from pydantic import BaseModel, Field, ValidationError

# The service's package (the folder above `engine/`): it names the wrappers package, the metrics and the traces.
SERVICE_PACKAGE = __name__.partition(".")[0]

# Environment variable for each setting; `.env.example` documents them.
ENV_NAMES = {
    "host": "HOST",
    "port": "PORT",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "access_log": "ACCESS_LOG",
    "metrics": "METRICS",
    "thread_pool_size": "THREAD_POOL_SIZE",
    "max_body_bytes": "MAX_BODY_BYTES",
    "keepalive_seconds": "KEEPALIVE_SECONDS",
    "idle_client_seconds": "IDLE_CLIENT_SECONDS",
    "max_unsent_bytes": "MAX_UNSENT_BYTES",
    "first_output_timeout_seconds": "FIRST_OUTPUT_TIMEOUT_SECONDS",
    "run_timeout_seconds": "RUN_TIMEOUT_SECONDS",
    "max_input_items": "MAX_INPUT_ITEMS",
    "context_window": "CONTEXT_WINDOW",
    "shutdown_grace_seconds": "SHUTDOWN_GRACE_SECONDS",
    "wrappers_package": "WRAPPERS_PACKAGE",
    "ready_with_failed_wrappers": "READY_WITH_FAILED_WRAPPERS",
    "loop_blocked_warn_seconds": "LOOP_BLOCKED_WARN_SECONDS",
    "responses_store_size": "RESPONSES_STORE_SIZE",
    "api_keys": "API_KEYS",
    "cors_allow_origins": "CORS_ALLOW_ORIGINS",
    "mcp_chat_tools": "MCP_CHAT_TOOLS",
    "mcp_allowed_hosts": "MCP_ALLOWED_HOSTS",
    "mcp_allowed_origins": "MCP_ALLOWED_ORIGINS",
    "mcp_server_urls": "MCP_SERVER_URLS",
    "mcp_timeout_seconds": "MCP_TIMEOUT_SECONDS",
    "data_dir": "DATA_DIR",
    "max_file_bytes": "MAX_FILE_BYTES",
    "streaming_fast_paths": "STREAMING_FAST_PATHS",
    "openwebui_events": "OPENWEBUI_EVENTS",
    "task_model": "TASK_MODEL",
    "task_base_url": "TASK_BASE_URL",
    "task_api_key": "TASK_API_KEY",
    # state that outlives the process (state/, files/blobs.py)
    "state_url": "STATE_URL",
    "files_url": "FILES_URL",
    "responses_store_bytes": "RESPONSES_STORE_BYTES",
    "responses_ttl_seconds": "RESPONSES_TTL_SECONDS",
    "background_workers": "BACKGROUND_WORKERS",
    "background_lease_seconds": "BACKGROUND_LEASE_SECONDS",
    "background_restart_lost_runs": "BACKGROUND_RESTART_LOST_RUNS",
    "background_timeout_seconds": "BACKGROUND_TIMEOUT_SECONDS",
    "background_max_events": "BACKGROUND_MAX_EVENTS",
    "conversations_store_size": "CONVERSATIONS_STORE_SIZE",
    "conversations_store_bytes": "CONVERSATIONS_STORE_BYTES",
}


def split_list(value: str) -> set[str]:
    """The items of a comma-separated setting."""
    return {item.strip() for item in value.split(",") if item.strip()}


def load_env_file() -> None:
    """Put `.env` (in the working directory) into the environment, without overriding what is already set.

    Runs when the package is imported, before Haystack is: Haystack reads some variables, such as
    HAYSTACK_TELEMETRY_ENABLED, once at import time.
    """
    load_dotenv(".env", override=False)


class Settings(BaseModel):
    """Everything an operator may tune without touching code."""

    # Set either to override the bind in hypercorn.toml when serving with `python -m`.
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    log_level: str = "INFO"
    # `text` for people, `json` for log shippers: one JSON object per line, hypercorn's access lines included.
    log_format: Literal["text", "json"] = "text"
    # One line per request (client, request line, status, bytes, seconds, request id) on stdout, or in JSON with
    # LOG_FORMAT=json: a few µs of CPU each (observability/access_log.py). `off` for none, e.g. behind a proxy that logs.
    access_log: bool = True
    # `GET /metrics` for Prometheus: `open` to anyone who reaches the port, `keyed` behind API_KEYS, `off` (no route,
    # nothing counted).
    metrics: Literal["open", "keyed", "off"] = "open"
    # Sync wrappers run here, never on the event loop; a full pool makes further requests wait. The sync steps
    # of pipelines that stream on the event loop get a pool of this size too (asyncio's default pool).
    thread_pool_size: int = Field(32, ge=1)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # A `: ping` comment goes out after this many seconds without an event, so proxies keep the stream.
    keepalive_seconds: float = Field(15.0, gt=0)
    # A client that takes no data of its response for this long is treated as gone: its run stops. 0: never.
    idle_client_seconds: float = Field(60.0, ge=0)
    # Bytes of a response the kernel may hold per connection, written but not yet sent (TCP_NOTSENT_LOWAT); past
    # it the write waits, and with it the run. 0: the kernel's own limit (megabytes). See http/unsent_bytes.py.
    max_unsent_bytes: int = Field(64 * 1024, ge=0)
    # Every run ends with a 504-style error (or the in-stream error, once streaming began) when it produced nothing
    # for FIRST_OUTPUT_TIMEOUT_SECONDS, or ran RUN_TIMEOUT_SECONDS in all. 0: no limit.
    first_output_timeout_seconds: float = Field(90.0, ge=0)
    run_timeout_seconds: float = Field(300.0, ge=0)
    # Chat messages (or Responses input items), content parts included, one request may carry; more get a 400.
    max_input_items: int = Field(4096, ge=1)
    # Tokens a Responses input may take (estimated) for a wrapper that declares no `context_window` of its own; a
    # longer one is truncated (`truncation: "auto"`) or refused with a 400. Unset: no limit (runs/context_window.py).
    context_window: int | None = Field(None, ge=1)
    # After SIGTERM, runs still going after this many seconds end with a retryable error instead of being cut off
    # mid-stream; keep it below hypercorn.toml's `graceful_timeout`.
    shutdown_grace_seconds: float = Field(8.0, ge=0)
    wrappers_package: str = f"{SERVICE_PACKAGE}.wrappers"
    # A wrapper that failed to load (its import or setup() raised) keeps /health/ready at 503, so a rollout with a
    # broken model stops before it replaces a working one; `true`: ready all the same, serving the other models.
    ready_with_failed_wrappers: bool = False
    # Code that holds the event loop this long (an async wrapper calling time.sleep or a blocking client) is logged
    # with its model, request and where it was; 0: not watched (observability/loop_watch.py).
    loop_blocked_warn_seconds: float = Field(0.5, ge=0)
    # Comma-separated keys clients must send as `Authorization: Bearer <key>`; unset, the API is open. A key may be
    # named, `name:key`, so wrappers can tell clients apart (`request_context.current_request().api_key_name`).
    api_keys: str | None = None
    # Comma-separated origins whose browser pages may call the service (`*` for any); unset, none may.
    cors_allow_origins: str | None = None
    # The MCP server at /mcp (docs/tools.md) offers every typed entry (`run_api`) as a tool, and these chat models
    # as tools that take a question: comma-separated model ids, `all`, or unset for none.
    mcp_chat_tools: str | None = None
    # Comma-separated Host values /mcp answers (`host:port`, `host:*` for any port); unset, any host. Browsers'
    # requests (with an Origin header) are refused unless their origin is listed in MCP_ALLOWED_ORIGINS (or
    # CORS_ALLOW_ORIGINS): a web page must not drive the tools through a user's browser (DNS rebinding).
    mcp_allowed_hosts: str | None = None
    mcp_allowed_origins: str | None = None
    # Comma-separated URL prefixes of the remote MCP servers a Responses request may hand the model (`type: "mcp"`
    # tools, runs/remote_mcp.py); unset, none: the service connects where the operator allows, never where any
    # client says.
    mcp_server_urls: str | None = None
    # Seconds the service gives a remote MCP server to connect and list its tools, or to run one call; past it the
    # call is an `mcp_call` item with an error, and the LLM goes on.
    mcp_timeout_seconds: float = Field(120.0, gt=0)
    # Finished responses kept for `previous_response_id` (the oldest dropped first); 0 keeps none.
    responses_store_size: int = Field(10_000, ge=0)
    # The state store (state.db) and uploaded files (`files/`) live here; relative to the working directory.
    data_dir: Path = Path("data")
    # Largest file an upload may carry, in bytes; bigger ones get 413. Independent of MAX_BODY_BYTES.
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1)
    # The streaming helpers' shortcuts (on the event loop, a lone LLM without Pipeline's scheduling, the first chunks
    # sent at once; see runs/pipeline_runs.py). `off` sends every run the general way, to tell whether a shortcut is at fault.
    streaming_fast_paths: bool = True
    # Which streamed chat requests get Open WebUI's events (status, details blocks, sources...): `auto` those
    # with Open WebUI's forwarded X-OpenWebUI-* headers, `always`, or `never` (see clients/openwebui/adapter.py).
    openwebui_events: Literal["auto", "always", "never"] = "auto"
    # The model that answers Open WebUI's background tasks (titles, tags, follow-ups); unset, they are answered
    # without any LLM. Any OpenAI-compatible server; the URL and key default to OPENAI_BASE_URL and OPENAI_API_KEY.
    task_model: str | None = None
    task_base_url: str | None = None
    task_api_key: str | None = None

    # --- State that outlives the process, shared by workers and replicas (see state/__init__.py) ---
    # Where stored responses and file metadata live: unset, SQLite in DATA_DIR/state.db; redis://host:6379/0 for
    # replicas (also rediss://, unix://; Valkey too), or sqlite:///path/to/file.db.
    state_url: str | None = Field(None, pattern=r"^(sqlite:///|redis://|rediss://|unix://)")
    # Where the bytes of uploaded files live: unset, DATA_DIR/files; another directory, or s3://bucket/prefix
    # with the AWS_* variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
    files_url: str | None = Field(None, pattern=r"^(s3://.+|file://.+|[^:]+)$")
    # Stored responses are bounded by their total size (JSON, conversations included) and by age as well.
    responses_store_bytes: int = Field(1024 * 1024 * 1024, ge=1024)
    responses_ttl_seconds: int = Field(30 * 24 * 3600, ge=1)
    # Conversations (the Conversations API) kept, and the total size of their items' JSON; past either, the least
    # recently changed go first. Each expires RESPONSES_TTL_SECONDS after its last change, and holds at most
    # MAX_INPUT_ITEMS items and MAX_BODY_BYTES of them: no more than one request could send as its input.
    conversations_store_size: int = Field(10_000, ge=1)
    conversations_store_bytes: int = Field(1024 * 1024 * 1024, ge=1024)

    # --- Background responses (`background: true`; see docs/long-runs.md) ---
    # Background runs at once per process; more wait (`queued`) and start in the order they came.
    background_workers: int = Field(8, ge=1)
    # Each process renews a lease on its runs; one whose lease lapsed (its process died) is taken over by another
    # process within about this long, and ends failed, or starts again once with BACKGROUND_RESTART_LOST_RUNS.
    background_lease_seconds: float = Field(30.0, ge=1)
    background_restart_lost_runs: bool = False
    # A background run may take this long in all (0: no limit); a foreground one has RUN_TIMEOUT_SECONDS.
    background_timeout_seconds: float = Field(3600.0, ge=0)
    # Events one background response's log may hold (what resuming its stream replays); past it the run fails.
    background_max_events: int = Field(100_000, ge=100)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read settings; `.env` fills in what the real environment leaves unset."""
        if environ is None:
            load_env_file()
            environ = os.environ
        values = {field: environ[name] for field, name in ENV_NAMES.items() if environ.get(name)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(f"{ENV_NAMES[str(e['loc'][0])]}={e['input']!r}: {e['msg']}" for e in error.errors())
            raise SettingsError(f"Invalid setting: {problems}") from None


class SettingsError(ValueError):
    """A setting from the environment or `.env` has a value the service cannot use."""

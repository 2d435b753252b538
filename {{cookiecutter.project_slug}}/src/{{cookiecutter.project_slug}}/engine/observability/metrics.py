"""What the service counts for Prometheus (`GET /metrics`, see routes/metrics.py), and the calls that count it.

Every name starts with the package's name (`haystack_service_requests_total`...). Labels take few values: `route`
is a route's rule, never a path as a client sent it; `model` is a wrapper's id (empty when no wrapper ran); `api` is
chat, responses, files, models...; `kind` and `status` come from short fixed lists. The requests are counted when
they end (`count_request`); a stream's chunks as they are written (`StreamMeter`). With METRICS=off nothing is
counted and every call below returns at once.

With several hypercorn workers, every value lives in a file the workers share, so that a scrape of any worker
counts them all (see metrics_dir.py, which has set that up when this module is imported).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client import generate_latest as prometheus_text

from ..runs.events import Event, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from ..settings import SERVICE_PACKAGE
from .request_tracking import RequestInfo, current_request_info

NAMESPACE = SERVICE_PACKAGE
CLIENT_LEFT = "499"  # the status of a request whose client left before any response (nginx's convention)
CHUNK_EVENTS = (TextDelta, ReasoningDelta, ToolCallDelta)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "requests",
    "HTTP requests answered, by route, API, model and status code (499: the client left before the answer).",
    ["route", "api", "model", "status"],
    namespace=NAMESPACE,
)
REQUEST_DURATION = Histogram(
    "request_duration_seconds",
    "From a request's arrival to the end of its response (a stream's last byte).",
    ["route", "api", "model"],
    namespace=NAMESPACE,
    buckets=SECONDS_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "time_to_first_token_seconds",
    "Streams only: from the request's arrival to its first text, reasoning or tool-call chunk.",
    ["api", "model"],
    namespace=NAMESPACE,
    buckets=SECONDS_BUCKETS,
)
STREAMED_CHUNKS = Counter(
    "streamed_chunks",
    "Text, reasoning and tool-call chunks written to streams.",
    ["api", "model"],
    namespace=NAMESPACE,
)
TOKENS = Counter(
    "tokens",
    "Tokens in the usage the runs reported (kind: prompt or completion), streamed or not.",
    ["api", "model", "kind"],
    namespace=NAMESPACE,
)
OPEN_STREAMS = Gauge(
    "open_streams",
    "Streams being written now.",
    ["api", "model"],
    namespace=NAMESPACE,
    multiprocess_mode="livesum",  # the sum over the workers still running
)
RUNS_STOPPED_BY_DISCONNECT = Counter(
    "runs_stopped_by_disconnect",
    "Runs stopped because their client left (or stopped reading) before the end.",
    ["api", "model"],
    namespace=NAMESPACE,
)
UPSTREAM_ERRORS = Counter(
    "upstream_errors",
    "Runs failed by the LLM server behind a wrapper, by kind (the error code the client got).",
    ["model", "kind"],
    namespace=NAMESPACE,
)
STORE_ERRORS = Counter(
    "store_errors",
    "Requests failed because a store (files, stored responses) could not be read or written, by API.",
    ["api"],
    namespace=NAMESPACE,
)

# Set when metrics_dir.py gave this process a directory shared with the other workers.
_shared_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_counting = False


def start_counting() -> None:
    """Count from now on (create_app calls it unless METRICS=off)."""
    global _counting
    _counting = True


def exposition() -> tuple[bytes, str]:
    """The body and content type of `GET /metrics`: every worker's values when there are several."""
    if _shared_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, _shared_dir)
        return prometheus_text(registry), CONTENT_TYPE_LATEST
    return prometheus_text(REGISTRY), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """At a worker's shutdown: its open-streams values no longer count (its counters do)."""
    if _shared_dir:
        multiprocess.mark_process_dead(os.getpid(), _shared_dir)


# The request metrics' children by their labels: `labels()` checks and locks on every call, a dict lookup does not.
# As bounded as the labels are.
_request_children: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}


def count_request(info: RequestInfo, seconds: float) -> None:
    """A request ended (`request_info.TrackRequests` calls this, on the event loop)."""
    if not _counting:
        return
    labels = (info.route, info.api, info.model, str(info.status) if info.status else CLIENT_LEFT)
    children = _request_children.get(labels)
    if children is None:
        children = _request_children[labels] = (REQUESTS.labels(*labels), REQUEST_DURATION.labels(*labels[:3]))
    children[0].inc()
    children[1].observe(seconds)


def count_usage(events: list[Event]) -> None:
    """The tokens of a run that was not streamed, from the Usage events among its events."""
    if not _counting or (info := current_request_info()) is None:
        return
    for event in events:
        if type(event) is Usage:
            _count_tokens(info.api, info.model, event)


def count_run_stopped_by_disconnect() -> None:
    if _counting and (info := current_request_info()) is not None:
        RUNS_STOPPED_BY_DISCONNECT.labels(info.api, info.model).inc()


def count_upstream_error(kind: str) -> None:
    if _counting:
        info = current_request_info()
        UPSTREAM_ERRORS.labels(info.model if info is not None else "", kind).inc()


def count_store_error() -> None:
    if _counting:
        info = current_request_info()
        STORE_ERRORS.labels(info.api if info is not None else "").inc()


def _count_tokens(api: str, model: str, usage: Usage) -> None:
    if usage.prompt_tokens:
        TOKENS.labels(api, model, "prompt").inc(usage.prompt_tokens)
    if usage.completion_tokens:
        TOKENS.labels(api, model, "completion").inc(usage.completion_tokens)


# The stream metrics' children by (api, model), for the same reason as `_request_children`.
_stream_children: dict[tuple[str, str], tuple[Counter, Histogram, Gauge]] = {}


class StreamMeter:
    """The metrics of one stream: a look at each event of a batch written, and an increment or two."""

    __slots__ = ("_api", "_chunks", "_model", "_open", "_started", "_ttft")

    def __init__(self, info: RequestInfo) -> None:
        self._api, self._model, self._started = info.api, info.model, info.started
        children = _stream_children.get((info.api, info.model))
        if children is None:
            labels = (info.api, info.model)
            children = _stream_children[labels] = (
                STREAMED_CHUNKS.labels(*labels),
                TIME_TO_FIRST_TOKEN.labels(*labels),
                OPEN_STREAMS.labels(*labels),
            )
        self._chunks = children[0]
        self._ttft: Histogram | None = children[1]  # None once observed
        self._open = children[2]
        self._open.inc()

    def written(self, batch: list[Event]) -> None:
        chunks = 0
        for event in batch:
            if isinstance(event, CHUNK_EVENTS):
                chunks += 1
            elif type(event) is Usage:
                _count_tokens(self._api, self._model, event)
        if chunks:
            self._chunks.inc(chunks)
            if self._ttft is not None:
                self._ttft.observe(time.perf_counter() - self._started)
                self._ttft = None

    def closed(self) -> None:
        self._open.dec()


def stream_meter() -> StreamMeter | None:
    """A meter for the stream the current request is about to write; None when nothing is counted."""
    if not _counting or (info := current_request_info()) is None:
        return None
    return StreamMeter(info)

"""What request ids and metrics cost per request and per streamed batch, measured in-process.

    bench/.work/venv/bin/python bench/operations_overhead.py     # after `make bench` (or run.py) baked the service

The end-to-end benchmark (run.py with METRICS=off, then METRICS=open) gives the figures users see, but on a shared
2-core machine its repeats move by more than the few microseconds at stake. This one times the code alone, with
no network: an ASGI request through `TrackRequests` (the request id, its header, the timing) against the same
request without it, `metrics.count_request`, the service's access line (text and JSON, to /dev/null), and
`StreamMeter.written` for a batch of chunks, each with the multiprocess value files (several workers) and without;
and one of hypercorn's own access lines, as hypercorn.toml turned them on before the service wrote its own. Prints
microseconds per call, medians of repeats.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

CALLS = 20_000
REPEATS = 7
# What hypercorn.toml set before the service wrote its own access lines.
HYPERCORN_ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss %({x-request-id}o)s'

MEASURE = r"""
import asyncio, logging, os, statistics, sys, time
from haystack_service.engine.observability import access_log, log_format, metrics
from haystack_service.engine import TextDelta, Usage
from haystack_service.engine.observability.request_tracking import RequestInfo, TrackRequests

CALLS, REPEATS = int(sys.argv[1]), int(sys.argv[2])
metrics.start_counting()
SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "client": ("127.0.0.1", 5000),
         "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"user-agent", b"bench")]}

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    pass

def timed(run):
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) / CALLS * 1e6)
    return statistics.median(samples)

def asgi_calls(asgi):
    async def many():
        for _ in range(CALLS):
            await asgi(dict(SCOPE), receive, send)
    return lambda: asyncio.run(many())

info = RequestInfo("req_0", "POST", time.perf_counter(), model="chat_stream", status=200)
info.matched = ("/v1/chat/completions", "chat")  # the route and API, as they are once the request ended
batch = [TextDelta("word ") for _ in range(8)]

def count_requests():
    for _ in range(CALLS):
        metrics.count_request(info, 0.012)

def write_batches():
    meter = metrics.StreamMeter(info)
    for _ in range(CALLS):
        meter.written(batch)
    meter.closed()

bare = timed(asgi_calls(app))
tracked = timed(asgi_calls(TrackRequests(app)))
counted = timed(asgi_calls(TrackRequests(app, finished=metrics.count_request)))
print(f"  ASGI request, bare app:                         {bare:6.2f} us")
print(f"  + TrackRequests (request id, header, timing):   {tracked - bare:+6.2f} us")
print(f"  + metrics.count_request at the end:             {counted - tracked:+6.2f} us")

# The service's access line, set up as log_format.configure_logging does, written to /dev/null.
devnull = open(os.devnull, "w")
handler = logging.StreamHandler(devnull)
handler.set_name(access_log.ENGINE_HANDLER)
access_log.access_logger.handlers = [handler]
access_log.access_logger.propagate = False
access_log.access_logger.setLevel(logging.INFO)
logged = TrackRequests(app, finished=metrics.count_request, access_line=access_log.write_access_line)
handler.setFormatter(log_format.AccessTextFormatter())
text = timed(asgi_calls(logged))
handler.setFormatter(log_format.JsonFormatter())
handler.addFilter(log_format.RequestFields())
as_json = timed(asgi_calls(logged))
print(f"  + the access line, text (ACCESS_LOG=on):         {text - counted:+6.2f} us")
print(f"  + the access line, LOG_FORMAT=json:              {as_json - counted:+6.2f} us")
print(f"  metrics.count_request alone:                    {timed(count_requests):6.2f} us")
print(f"  StreamMeter.written, a batch of 8 chunks:       {timed(write_batches):6.2f} us")

# hypercorn's own access line, as hypercorn.toml configured it before, to /dev/null: it copies every environment variable.
from hypercorn.config import Config
config = Config()
config.accesslog, config.access_log_format = "/dev/null", sys.argv[3]
access = config.log
response = {"status": 200, "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"req_0")]}
def access_lines():
    async def many():
        for _ in range(CALLS):
            await access.access(SCOPE | {"http_version": "1.1", "scheme": "http", "query_string": b"",
                                         "client": ("127.0.0.1", 5000)}, response, 0.012)
    asyncio.run(many())
print(f"  hypercorn access line ({len(os.environ)} environment variables): {timed(access_lines):6.2f} us")
"""


def main() -> None:
    python = sys.executable
    for label, shared_files in (("one process (workers = 0)", False), ("several workers (value files)", True)):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["HAYSTACK_TELEMETRY_ENABLED"] = "False"
        with tempfile.TemporaryDirectory() as directory:
            if shared_files:
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            print(f"{label}:")
            command = [python, "-c", MEASURE, str(CALLS), str(REPEATS), HYPERCORN_ACCESS_LOG_FORMAT]
            subprocess.run(command, env=env, check=True, timeout=600)


if __name__ == "__main__":
    main()

"""`GET /metrics`: a real Prometheus scrapes the service served by two hypercorn workers while the SDK sends chat and
Responses requests, streamed and not; the counts read back through Prometheus' HTTP API match what was sent.

Prometheus scrapes over one connection, so one worker answers it: the counts match only if every worker's values
reach that answer (metrics_dir.py). The test makes sure both workers served some of the requests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from engines import Prometheus
from support import PACKAGE, ServiceProcess, assert_error, base_env, user, wait_until
from upstream import ScriptedUpstream, split_tokens

ANSWER = "alpha beta gamma delta"
USAGE = (11, 4)
CLIENTS = 6
MAX_ROUNDS = 40  # rounds of four requests per client at most, until both workers have served some
KEY = "metrics-key"


@pytest.fixture(scope="module")
def two_workers(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = base_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=f"{upstream.base_url}/v1", OPENAI_MODEL="scripted-model")
    service = ServiceProcess(
        name="two_workers", workdir=tmp_path_factory.mktemp("two_workers"), env=env, args=["--workers", "2"]
    )
    service.start()
    try:
        # /status answered once one worker was ready: wait for the other one's line too.
        assert wait_until(lambda: service.log_tail(1_000_000).count("Ready: ") == 2, timeout=120), service.log_tail()
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def prometheus(two_workers: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{two_workers.port}").start()
    yield server
    server.stop()


def metric(name: str) -> str:
    return f"{PACKAGE}_{name}"


def series(name: str, **labels: str) -> str:
    """PromQL for the sum of a metric's series that have these labels."""
    selector = ",".join(f'{label}="{value}"' for label, value in labels.items())
    return "sum(" + metric(name) + "{" + selector + "})"


def run_requests_served_per_worker(service: ServiceProcess) -> dict[str, float]:
    """Chat and Responses requests each worker counted, read from its own file in the shared metrics directory."""
    served = {}
    for path in (service.workdir / "data" / "metrics").glob("*/counter_*.db"):
        total = 0.0
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            if family.name == metric("requests"):
                total += sum(s.value for s in family.samples if s.labels.get("api") in ("chat", "responses"))
        served[path.name] = total
    return served


def one_round(client: openai.OpenAI) -> None:
    """Four requests to `chat_stream`: chat and Responses, each streamed and not."""
    assert client.chat.completions.create(model="chat_stream", messages=user("x")).choices[0].message.content == ANSWER
    stream = client.chat.completions.create(model="chat_stream", messages=user("x"), stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == ANSWER
    assert client.responses.create(model="chat_stream", input="x").output_text == ANSWER
    events = list(client.responses.create(model="chat_stream", input="x", stream=True))
    assert events[-1].type == "response.completed"


def test_counts_across_two_workers_read_back_from_prometheus(
    two_workers: ServiceProcess, prometheus: Prometheus, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(text=ANSWER, usage=USAGE)
    rounds = 0
    errors: list[BaseException] = []

    def client_loop() -> None:
        # One client (one connection pool) per thread: new connections land on either worker.
        with two_workers.client() as client:
            try:
                one_round(client)
            except BaseException as error:
                errors.append(error)

    while rounds < MAX_ROUNDS:
        threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        rounds += CLIENTS
        served = run_requests_served_per_worker(two_workers)
        if len(served) == 2 and all(served.values()):
            break
    assert len(served) == 2 and all(served.values()), f"both workers should have served requests: {served}"

    # A rate-limited LLM server (its Retry-After too long to retry), and a client that hangs up on an Agent's stream.
    upstream.script(status=429, headers={"Retry-After": "30"})
    with pytest.raises(openai.RateLimitError), two_workers.client() as client:
        client.chat.completions.create(model="chat_stream", messages=user("limited"))
    upstream.script(text="tick ", repeat=10**9, token_delay=0.05)
    body = {"model": "agent", "messages": user("leave"), "stream": True}
    with (
        httpx.Client(base_url=two_workers.base_url, timeout=30, trust_env=False) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert any("tick" in line for line in response.iter_lines())
    left = [record for record in upstream.streams if record.prompt == "leave"]
    assert wait_until(lambda: left[0].disconnected, timeout=30)

    expected = {
        series("requests_total", api="chat", route="/v1/chat/completions", model="chat_stream", status="200"): 2
        * rounds,
        series("requests_total", api="responses", route="/v1/responses", model="chat_stream", status="200"): 2 * rounds,
        series("requests_total", api="chat", model="chat_stream", status="429"): 1,
        series("request_duration_seconds_count", model="chat_stream"): 4 * rounds + 1,
        series("time_to_first_token_seconds_count", model="chat_stream"): 2 * rounds,
        series("streamed_chunks_total", model="chat_stream"): 2 * rounds * len(split_tokens(ANSWER)),
        series("tokens_total", model="chat_stream", kind="prompt"): 4 * rounds * USAGE[0],
        series("tokens_total", model="chat_stream", kind="completion"): 4 * rounds * USAGE[1],
        series("upstream_errors_total", model="chat_stream", kind="rate_limit_exceeded"): 1,
        series("runs_stopped_by_disconnect_total", api="chat", model="agent"): 1,
        series("open_streams"): 0,
    }

    def read_back() -> dict[str, float | None]:
        return {query: prometheus.value(query) for query in expected}

    wait_until(lambda: read_back() == expected, timeout=60, interval=0.5)
    assert read_back() == expected, prometheus.target_health()


def test_metrics_behind_the_api_keys(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    """METRICS=keyed: a scrape needs one of API_KEYS (Prometheus' `authorization` setting sends it)."""
    env = base_env(API_KEYS=KEY, METRICS="keyed")
    service = ServiceProcess(name="keyed_metrics", workdir=tmp_path, env=env).start()
    try:
        with service.http() as http:
            assert_error(http.get("/metrics"), 401, code="invalid_api_key")
            scrape = http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain; version=")
            assert f"# TYPE {metric('requests_total')} counter" in scrape.text
            assert http.get("/health/ready").status_code == 200, "the probes stay open"
    finally:
        service.stop()


def test_metrics_off(tmp_path: Path) -> None:
    service = ServiceProcess(name="no_metrics", workdir=tmp_path, env=base_env(METRICS="off")).start()
    try:
        with service.http() as http:
            assert_error(http.get("/metrics"), 404, code="unknown_url")
            assert http.post("/v1/chat/completions", json={"model": "chat", "messages": user("x")}).status_code == 200
    finally:
        service.stop()

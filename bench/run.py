"""The benchmark, in one command: `python bench/run.py` (full) or `python bench/run.py --smoke` (CI-sized).

It bakes the default project into bench/.work/, installs it into its own venv, installs hayhooks
from PyPI into bench/.venv-hayhooks/, starts the scripted upstream LLM, our service (hypercorn with
the project's hypercorn.toml), hayhooks (`hayhooks run`, its defaults) and the bare-Quart floor, all
on 127.0.0.1, drives them with the same load generator (load.py), and writes
bench/results/<date>.json and .md (smoke: bench/results/smoke-<date>.*). See bench/README.md.
With `--baseline REV` the template at git revision REV runs beside ours as one more target (baseline.py).

Every process it starts is stopped by PID at the end, on failure and on Ctrl-C too; every loop is
bounded in time and count, and every scenario has a deadline of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "targets"))

import load  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
from baseline import Baseline, prepare_baseline, short_commit  # noqa: E402
from bench_config import FIXED_ANSWER, UPSTREAM_MODEL  # noqa: E402

REPO = BENCH.parent
WORK = BENCH / ".work"
LOGS = WORK / "logs"
SLUG = "haystack_service"
PROJECT = WORK / SLUG
OURS_VENV = WORK / "venv"
HAYHOOKS_VENV = BENCH / ".venv-hayhooks"
HAYHOOKS_VERSION = "2.1.0"
TARGETS = BENCH / "targets"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
SCENARIOS = (*report.SCENARIOS, "plain")
TARGET_NAMES = report.TARGET_NAMES
# The template at another revision (--baseline), served as ours is: a target only when asked for.
BASELINE = "baseline"
# The models both ours and hayhooks must have loaded before a run may start.
MODELS = ("fixed", "llm", "sync_stream", "async_stream", "agent_stream")
# Scenario 2's extra column: ours serving the same wrapper with Haystack's plain OpenAIChatGenerator.
PLAIN_GENERATOR = "ours (Haystack generator)"
STEPPED, THREADED, THREADED_POOL = report.STEPPED, report.THREADED, report.THREADED_POOL
READY_TIMEOUT = 180.0
# The plain path's CPU measurement (scenario `plain`): as many clients as a small deployment has at once.
PLAIN_CONCURRENCY = 16


@dataclass(frozen=True)
class Sizes:
    """How much load each scenario applies; FULL and SMOKE below, overridable from the command line."""

    repeats: int
    rps_concurrency: tuple[int, ...]
    rps_warmup: float
    rps_duration: float
    rps_max_requests: int
    stream_concurrency: tuple[int, ...]
    stream_tokens: int
    stream_history: int  # earlier messages in the long-chat case of scenario 2 (at concurrency 1); 0: none
    stream_paced_rate: float  # tokens/s of scenario 2's paced case (at the highest concurrency); 0: none
    stream_warmup: float
    stream_warmup_per_client: float
    stream_duration: float
    stream_max_requests: int
    slow_streams: int
    slow_seconds: float
    slow_rate: float
    slow_deadline: float
    cold_repeats: int
    cancel_streams: int
    cancel_tokens: int
    cancel_rate: float
    cancel_settle: float
    plain_requests: int  # per target and round of the plain path's CPU measurement
    plain_rounds: int


FULL = Sizes(
    repeats=3,
    rps_concurrency=(1, 16, 64),
    rps_warmup=1.0,
    rps_duration=5.0,
    rps_max_requests=200_000,
    stream_concurrency=(1, 64),
    stream_tokens=64,
    stream_history=40,
    stream_paced_rate=50.0,
    stream_warmup=1.0,
    stream_warmup_per_client=0.05,
    stream_duration=8.0,
    stream_max_requests=100_000,
    slow_streams=1000,
    slow_seconds=30.0,
    slow_rate=20.0,
    slow_deadline=150.0,
    cold_repeats=3,
    cancel_streams=16,
    cancel_tokens=200,
    cancel_rate=20.0,
    cancel_settle=3.0,
    plain_requests=4000,
    plain_rounds=5,
)

SMOKE = Sizes(
    repeats=1,
    rps_concurrency=(1, 16, 64),
    rps_warmup=0.2,
    rps_duration=5.0,
    rps_max_requests=20,
    stream_concurrency=(1, 64),
    stream_tokens=16,
    stream_history=4,
    stream_paced_rate=50.0,
    stream_warmup=0.2,
    stream_warmup_per_client=0.0,
    stream_duration=5.0,
    stream_max_requests=8,
    slow_streams=20,
    slow_seconds=2.0,
    slow_rate=20.0,
    slow_deadline=20.0,
    cold_repeats=1,
    cancel_streams=3,
    cancel_tokens=60,
    cancel_rate=20.0,
    cancel_settle=1.5,
    # Not a few requests: /proc counts CPU in 10 ms ticks, and CI's log shows this figure (see `scenario_plain`).
    plain_requests=1500,
    plain_rounds=3,
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- setting up ----------------------------------------------------------------------------


def sh(argv: list[str | Path], log_name: str, cwd: Path | None = None) -> None:
    """Run a setup command with its output in a log file; on failure show the end of that log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / log_name
    with log_path.open("w") as out:
        code = subprocess.call([str(a) for a in argv], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"setup step failed ({' '.join(map(str, argv))}), see {log_path}:\n{tail}")


def bake_and_install() -> None:
    """A fresh bake of the default project (the template may have changed), installed into a reused venv."""
    try:
        import cookiecutter  # noqa: F401
    except ImportError:
        raise SystemExit(
            "cookiecutter is needed to bake the project: run `make bench`, or pip install cookiecutter"
        ) from None
    log(f"baking the default project into {PROJECT.relative_to(REPO)}")
    shutil.rmtree(PROJECT, ignore_errors=True)
    sh([sys.executable, "-m", "cookiecutter", REPO, "--no-input", "--output-dir", WORK], "bake.log")
    if not (OURS_VENV / "bin" / "python").exists():
        log("creating the service's venv")
        sh([sys.executable, "-m", "venv", OURS_VENV], "venv-ours.log")
    log("installing the baked project")
    pip_install = [OURS_VENV / "bin" / "python", "-m", "pip", "install", "--quiet"]
    sh([*pip_install, "-c", PROJECT / "constraints.txt", "-e", PROJECT], "pip-ours.log")  # the tested versions


def install_hayhooks(version: str) -> None:
    """hayhooks from PyPI in a venv of its own, reused while it holds the wanted version."""
    python = HAYHOOKS_VENV / "bin" / "python"
    if python.exists() and installed_versions(python, ["hayhooks"]).get("hayhooks") == version:
        return
    log(f"installing hayhooks {version} into {HAYHOOKS_VENV.relative_to(REPO)}")
    if not python.exists():
        sh([sys.executable, "-m", "venv", HAYHOOKS_VENV], "venv-hayhooks.log")
    sh([python, "-m", "pip", "install", "--quiet", f"hayhooks=={version}"], "pip-hayhooks.log")


def installed_versions(python: Path, packages: Iterable[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        return json.loads(subprocess.check_output([str(python), "-c", code, *packages], text=True, timeout=60))
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def raise_open_file_limit() -> int:
    """1000 streams need ~4000 sockets across client, servers and upstream; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- the processes -------------------------------------------------------------------------


def base_env(upstream_url: str) -> dict[str, str]:
    """The environment every server gets: the upstream, a dummy key, no proxies, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env |= {
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "OPENAI_API_KEY": "bench-key",
        "OPENAI_BASE_URL": upstream_url,
        "OPENAI_MODEL": UPSTREAM_MODEL,
        # Haystack's OpenAI generators read these: no retries (a failure must show), no client-side cut-off.
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "600",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    return env


@dataclass
class Server:
    """A running target: its process and where it listens."""

    name: str
    proc: procs.Proc
    port: int
    ready_s: float = 0.0


def server_command(
    name: str, port: int, upstream_url: str, thread_pool: int | None = None, baseline: Baseline | None = None
) -> procs.Proc:
    env = base_env(upstream_url)
    bind = f"{HOST}:{port}"
    hypercorn = [str(OURS_VENV / "bin" / "hypercorn"), "--config", str(PROJECT / "hypercorn.toml"), "--bind", bind]
    # Extra hypercorn flags for ours and the floor, e.g. BENCH_HYPERCORN_ARGS="--access-logfile=-" (hypercorn's own
    # access log, which the project's hypercorn.toml turned on before the service wrote its own lines).
    hypercorn += shlex.split(os.environ.get("BENCH_HYPERCORN_ARGS", ""))
    label = name if thread_pool is None else f"{name}-pool{thread_pool}"
    if name in ("ours", BASELINE):
        project = PROJECT
        if name == BASELINE:  # served as ours is, from its own bake and venv, with this checkout's wrappers
            assert baseline is not None
            project = baseline.project
            hypercorn = [str(baseline.hypercorn), "--config", str(project / "hypercorn.toml"), "--bind", bind]
        env |= {"WRAPPERS_PACKAGE": "bench_wrappers", "PYTHONPATH": f"{TARGETS}:{TARGETS / 'ours'}"}
        if thread_pool is not None:
            env["THREAD_POOL_SIZE"] = str(thread_pool)
        argv, cwd = [*hypercorn, f"{SLUG}.asgi:app"], project
    elif name == "hayhooks":
        env["PYTHONPATH"] = str(TARGETS)
        cwd = WORK / "hayhooks-cwd"  # an empty folder: no stray .env for hayhooks to pick up
        argv = [str(HAYHOOKS_VENV / "bin" / "hayhooks"), "run", "--host", HOST, "--port", str(port)]
        argv += ["--pipelines-dir", str(TARGETS / "hayhooks")]
    elif name == "floor":
        env["PYTHONPATH"] = f"{BENCH}:{TARGETS}"
        argv, cwd = [*hypercorn, "floor_app:app"], WORK / "floor-cwd"
    else:
        raise ValueError(name)
    cwd.mkdir(parents=True, exist_ok=True)
    return procs.Proc(label, argv, env, cwd, LOGS / f"{label}.log")


async def wait_ready(proc: procs.Proc, probe: Callable[[], Any], timeout: float = READY_TIMEOUT) -> float:
    """Poll until `probe` succeeds; returns seconds since the process started. Fails fast if it died."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited during startup:\n{proc.log_tail()}")
        with contextlib.suppress(Exception):
            if await probe():
                return time.perf_counter() - proc.started_at
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s:\n{proc.log_tail()}")


async def answers_fixed(port: int) -> bool:
    conn = load.Connection(HOST, port)
    try:
        result = await load.chat_request(conn, load.chat_body("fixed", "ready?", False), stream=False, timeout=5)
    finally:
        conn.close()
    return result.status == 200 and result.content == FIXED_ANSWER


async def ready_to_measure(name: str, port: int) -> bool:
    """Answers `fixed`; ours also has every wrapper loaded (it opens its port first and loads them after)."""
    if name == "ours":
        await load.get_json(HOST, port, "/health/ready")  # an HttpError (503) until then: wait_ready polls again
    return await answers_fixed(port)


async def all_models_loaded(server: Server) -> None:
    """A wrapper that failed to load would show up as a wall of 404s: stop at once instead, with its log."""
    if server.name == "floor":
        return
    listed = {model["id"] for model in (await load.get_json(HOST, server.port, "/v1/models"))["data"]}
    if missing := set(MODELS) - listed:
        raise RuntimeError(f"{server.name} did not load {', '.join(sorted(missing))}:\n{server.proc.log_tail(60)}")


async def upstream_ready(port: int) -> bool:
    return isinstance(await load.get_json(HOST, port, "/stats", timeout=2), dict)


class Bench:
    """One run: the sizes, the upstream of the current scenario, and the results gathered so far."""

    def __init__(
        self,
        sizes: Sizes,
        mode: str,
        targets: Iterable[str] = TARGET_NAMES,
        profile: str | None = None,
        baseline: Baseline | None = None,
    ) -> None:
        self.sizes = sizes
        self.mode = mode
        self.targets = set(targets)
        self.profile = profile
        self.baseline = baseline
        self.upstream: procs.Proc | None = None
        self.upstream_port = 0
        self.ever_started: set[str] = set()
        self.results: dict[str, Any] = {"scenarios": {}}

    # -- processes --

    async def start_upstream(self, text: str, rate: float, first_delay: float = 0.0, port: int | None = None) -> None:
        """Start the scripted upstream; on `port` when given, so servers already pointed at it keep working."""
        self.stop_upstream()
        self.upstream_port = port or procs.free_port()
        script = procs.upstream_script(PROJECT)
        argv = [sys.executable, str(script), "--port", str(self.upstream_port), "--text", text]
        argv += ["--tokens-per-second", str(rate), "--first-token-delay", str(first_delay)]
        argv += ["--keep-alive"]  # as real LLM servers do: no target pays for a TCP connection per call
        self.upstream = procs.Proc("upstream", argv, base_env(""), WORK, LOGS / "upstream.log").start()
        await wait_ready(self.upstream, lambda: upstream_ready(self.upstream_port), 30)

    def stop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.stop()
            self.upstream = None

    @property
    def upstream_url(self) -> str:
        return f"http://{HOST}:{self.upstream_port}/v1"

    async def start_servers(self, names: Iterable[str], thread_pool: int | None = None) -> dict[str, Server]:
        """Start several targets at once and wait until each is ready and answers `fixed`."""
        servers = {}
        for name in names:
            port = procs.free_port()
            command = server_command(name, port, self.upstream_url, thread_pool, self.baseline)
            servers[name] = Server(name, command.start(), port)
        try:
            ready = await asyncio.gather(
                *(wait_ready(s.proc, lambda s=s: ready_to_measure(s.name, s.port)) for s in servers.values())
            )
            for server, seconds in zip(servers.values(), ready, strict=True):
                server.ready_s = seconds
                await all_models_loaded(server)
        except BaseException:
            for server in servers.values():
                server.proc.stop()
            raise
        self.ever_started.update(servers)
        return servers

    def wanted(self, columns: Iterable[str]) -> list[str]:
        """The columns whose process is among the targets asked for (`--targets`)."""
        return [c for c in columns if self.server_of(c) in self.targets]

    def server_of(self, column: str) -> str:
        """The process behind a report column; the baseline's column is its label (`ours@<commit>`)."""
        if column == BASELINE or (self.baseline is not None and column == self.baseline.label):
            return BASELINE
        return server_of(column)

    def with_baseline(self, columns: Iterable[str]) -> list[str]:
        """The columns with the baseline's (`--baseline`) right after ours: it serves what ours serves."""
        out = []
        for column in columns:
            out.append(column)
            if column == "ours" and self.baseline is not None:
                out.append(self.baseline.label)
        return out

    def in_turn(self, columns: Iterable[str], repeat: int) -> list[str]:
        """The targets' order in one repeat. With a baseline, it and ours swap places every other repeat: the
        before and the after must not always run in the same place (an A/A run put one copy ahead of the other)."""
        order = list(columns)
        if self.baseline is None or repeat % 2 == 0 or not {"ours", self.baseline.label} <= set(order):
            return order
        ours, baseline = order.index("ours"), order.index(self.baseline.label)
        order[ours], order[baseline] = order[baseline], order[ours]
        return order

    @contextlib.asynccontextmanager
    async def servers(self, names: Iterable[str], thread_pool: int | None = None) -> AsyncIterator[dict[str, Server]]:
        servers = await self.start_servers([n for n in names if n in self.targets], thread_pool)
        try:
            yield servers
        finally:
            for server in servers.values():
                server.proc.stop()

    def endpoint(self, servers: dict[str, Server], column: str) -> tuple[int, procs.Proc]:
        """Port and process behind a report column: `upstream` is the upstream itself, other extra
        columns (`raw`, `floor (pipeline)`) are other models of the floor app."""
        if column == "upstream":
            assert self.upstream is not None
            return self.upstream_port, self.upstream
        server = servers[self.server_of(column)]
        return server.port, server.proc

    # -- measurements --

    @contextlib.contextmanager
    def watch_all(self, proc: procs.Proc, label: str, interval: float = 0.2) -> Iterator[tuple[procs.Watch, OtherCpu]]:
        """Watch the measured server; also note the CPU the load generator and the upstream used meanwhile,
        which shows whether the instruments, rather than the target, were the limit. With --profile,
        py-spy records the target's process tree meanwhile."""
        others = OtherCpu(self.upstream.pid if self.upstream is not None and self.upstream is not proc else None)
        spy = self.start_py_spy(proc, label) if self.profile and proc.name.startswith(self.profile) else None
        try:
            with procs.Watch(proc.pid, interval) as watch, others:
                yield watch, others
        finally:
            if spy is not None:
                spy.stop(timeout=30)

    def start_py_spy(self, proc: procs.Proc, label: str) -> procs.Proc | None:
        """A flame graph (SVG) of where the target spends CPU: samples holding the GIL, worker process included."""
        py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(OURS_VENV / "bin"))
        if py_spy is None:
            log("--profile needs py-spy on PATH (pip install py-spy); not profiling")
            self.profile = None
            return None
        out = WORK / "profiles" / f"{label}.svg"
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [py_spy, "record", "--pid", str(proc.pid), "--subprocesses", "--gil", "--rate", "200", "-o", str(out)]
        spy = procs.Proc(
            f"py-spy-{label}", argv, dict(os.environ), WORK, LOGS / "py-spy.log", stop_signal=signal.SIGINT
        )
        return spy.start()

    async def warm_up(self, servers: dict[str, Server], models: Iterable[str]) -> None:
        """First requests pay for lazy imports and client set-up; keep them out of every measurement."""
        for server in servers.values():
            for model in models:
                body = load.chat_body(model, "warm-up", model not in ("fixed", "llm"))
                conn = load.Connection(HOST, server.port)
                try:
                    for _ in range(3):
                        await load.chat_request(
                            conn,
                            body,
                            stream=model not in ("fixed", "llm"),
                            timeout=30,
                            hang_up_after_first_content=True,
                        )
                finally:
                    conn.close()

    async def measure_loop(
        self,
        port: int,
        proc: procs.Proc,
        body: bytes,
        *,
        stream: bool,
        concurrency: int,
        expected: str,
        tokens: int,
        label: str,
        max_requests: int | None = None,
    ) -> dict[str, Any]:
        """One closed loop against one target; `max_requests` (default: the sizes') closes its window early."""
        s = self.sizes
        warmup, duration = (s.stream_warmup, s.stream_duration) if stream else (s.rps_warmup, s.rps_duration)
        if stream:
            warmup += s.stream_warmup_per_client * concurrency  # streams started together spread out first
        if max_requests is None:
            max_requests = s.stream_max_requests if stream else s.rps_max_requests
        else:
            duration = 600.0  # the count closes the window
        with self.watch_all(proc, label) as (watch, others):
            run = await load.closed_loop(
                HOST,
                port,
                body,
                stream=stream,
                concurrency=concurrency,
                warmup=warmup,
                duration=duration,
                max_requests=max_requests,
                request_timeout=60.0,
            )
        good = [r for r in run.results if load.intact(r, expected)]
        out: dict[str, Any] = {
            "requests": len(run.results),
            "intact": len(good),
            "errors": len(run.results) - len(good),
            "window_s": run.window,
            "peak_rss_mb": watch.peak_rss / 2**20,
            "listen_overflows": watch.listen_overflows,
            **others.cpu_shares(),
        }
        if errors := [r.error or f"status {r.status}" for r in run.results if not load.intact(r, expected)]:
            out["first_error"] = errors[0]
            out["error_kinds"] = error_kinds(errors)
        latencies = [1000 * r.latency for r in good]
        # The server's average CPU use over the loop (in cores), divided by the rate: CPU per request or stream.
        finished = sum(1 for r in run.ended_in_window if load.intact(r, expected))
        cores = watch.cpu / max(watch.wall, 1e-9)
        cpu_ms = 1000 * cores * run.window / finished if finished else None
        out["server_cores"] = cores
        if stream:
            ttfts = [1000 * r.ttft for r in good if r.ttft is not None]
            out |= {
                "ttft_p50_ms": load.percentile(ttfts, 50),
                "ttft_p99_ms": load.percentile(ttfts, 99),
                "stream_p50_ms": load.percentile(latencies, 50),
                "events_per_stream": load.median([float(r.content_events) for r in good]),
                "chunks_per_s": run.chars / (len(expected) / tokens) / run.window,
                "cpu_ms_per_stream": cpu_ms,
            }
        else:
            out |= {
                "rps": finished / run.window,
                "p50_ms": load.percentile(latencies, 50),
                "p99_ms": load.percentile(latencies, 99),
                "cpu_ms_per_request": cpu_ms,
            }
        return out

    # -- scenarios --

    async def scenario_rps(self) -> dict[str, Any]:
        """1. Non-streaming requests per second: serving overhead (`fixed`) and a real upstream call (`llm`)."""
        s = self.sizes
        await self.start_upstream(FIXED_ANSWER, rate=0)
        out: dict[str, Any] = {}
        async with self.servers(["ours", BASELINE, "hayhooks", "floor"]) as servers:
            await self.warm_up(servers, ["fixed", "llm"])
            for model in ("fixed", "llm"):
                columns = {"ours": model, "hayhooks": model, "floor": model}
                if model == "fixed":
                    columns["floor (pipeline)"] = "fixed_pipeline"
                else:
                    columns["upstream"] = UPSTREAM_MODEL
                columns = {c: columns.get(c, model) for c in self.wanted(self.with_baseline(columns))}
                out[model] = {}
                for c in s.rps_concurrency:
                    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in columns}
                    for repeat in range(s.repeats):
                        for name in self.in_turn(columns, repeat):
                            column_model = columns[name]
                            port, proc = self.endpoint(servers, name)
                            body = load.chat_body(column_model, "q", False)
                            label = f"rps-{column_model}-c{c}-{name}-{repeat}".replace(" ", "_")
                            runs[name].append(
                                await self.measure_loop(
                                    port,
                                    proc,
                                    body,
                                    stream=False,
                                    concurrency=c,
                                    expected=FIXED_ANSWER,
                                    tokens=1,
                                    label=label,
                                )
                            )
                    out[model][f"c{c}"] = {n: summarize(r) for n, r in runs.items()}
                    log(
                        f"rps {model} c={c}: "
                        + ", ".join(f"{n} {fmt(summarize(r).get('rps'))}" for n, r in runs.items())
                    )
        return out

    async def scenario_streaming(self) -> dict[str, Any]:
        """2. Streaming: TTFT and whole-stream throughput of the async wrappers, against both floors and the upstream.

        Two shapes: a lone LLM (the pipeline every target serves as `async_stream`), also with a long chat,
        and an Agent (`agent_stream`; `raw` has no Agent to run, so it sits those cases out). The upstream sends
        each answer as fast as it can, except in the paced case, where it streams at a hosted model's pace: the
        first token then shows what a user waits for while the server keeps the other answers flowing.
        """
        s = self.sizes
        text = stream_text(s.stream_tokens)
        await self.start_upstream(text, rate=0)
        pipeline = {"ours": "async_stream", PLAIN_GENERATOR: "async_stream_plain", "hayhooks": "async_stream"}
        pipeline |= {"floor": "async_stream", "raw": "relay", "upstream": UPSTREAM_MODEL}
        agent = {"ours": "agent_stream", PLAIN_GENERATOR: "agent_stream_plain", "hayhooks": "agent_stream"}
        agent |= {"floor": "agent_stream", "upstream": UPSTREAM_MODEL}
        out: dict[str, Any] = {}
        async with self.servers(["ours", BASELINE, "hayhooks", "floor"]) as servers:

            async def warm_up_every_model() -> None:
                await self.warm_up(servers, ["async_stream", "agent_stream"])
                if PLAIN_GENERATOR in self.wanted(pipeline):
                    await self.warm_up({"ours": servers["ours"]}, ["async_stream_plain", "agent_stream_plain"])

            await warm_up_every_model()
            # The long chat: what a chat UI sends, the whole conversation each turn, one user at a time.
            cases = [(f"c{c}", c, 0, pipeline) for c in s.stream_concurrency]
            cases += [(f"c1-history{s.stream_history}", 1, s.stream_history, pipeline)] if s.stream_history else []
            cases += [(f"c{c}-agent", c, 0, agent) for c in s.stream_concurrency]
            paced = f"c{max(s.stream_concurrency)}-paced{s.stream_paced_rate:g}"
            cases += [(paced, max(s.stream_concurrency), 0, pipeline)] if s.stream_paced_rate else []
            for key, c, history, case_models in cases:
                if key == paced:  # the same upstream port, so the servers need not restart
                    await self.start_upstream(text, rate=s.stream_paced_rate, port=self.upstream_port)
                    await warm_up_every_model()
                models = {
                    name: case_models.get(name, case_models["ours"])
                    for name in self.wanted(self.with_baseline(case_models))
                }
                runs: dict[str, list[dict[str, Any]]] = {n: [] for n in models}
                for repeat in range(s.repeats):
                    for name in self.in_turn(models, repeat):
                        model = models[name]
                        port, proc = self.endpoint(servers, name)
                        body = load.chat_body(model, "q", True, history)
                        runs[name].append(
                            await self.measure_loop(
                                port,
                                proc,
                                body,
                                stream=True,
                                concurrency=c,
                                expected=text,
                                tokens=s.stream_tokens,
                                label=f"streaming-{model}-{key}-{name}-{repeat}",
                            )
                        )
                out[key] = {n: summarize(r) for n, r in runs.items()}
                log(
                    f"streaming {key}: "
                    + ", ".join(
                        f"{n} ttft {fmt(summarize(r).get('ttft_p50_ms'), 2)} ms / {fmt(summarize(r).get('chunks_per_s'))} ch/s"
                        for n, r in runs.items()
                    )
                )
        return out

    async def scenario_slow(self) -> dict[str, Any]:
        """3. Many slow streams held at once, one target at a time (fresh process, so its memory is its own)."""
        s = self.sizes
        tokens = max(1, round(s.slow_rate * s.slow_seconds))
        text = stream_text(tokens)
        await self.start_upstream(text, rate=s.slow_rate)
        settings = {
            "streams": s.slow_streams,
            "seconds": s.slow_seconds,
            "rate": s.slow_rate,
            "deadline": s.slow_deadline,
        }
        out: dict[str, Any] = {"settings": settings, "async": {}, "sync": {}}
        # (kind, column, model, thread pool). Our helpers stream a sync wrapper's pipeline on the event loop when
        # its LLM streams asynchronously: `sync_stream` (a lone LLM) and `sync_stream_stepped` (a step before it).
        # `sync_stream_threaded`'s LLM streams only synchronously, so its run holds a pool thread.
        cases = [
            ("async", "ours", "async_stream", None),
            ("async", "hayhooks", "async_stream", None),
            ("async", "floor", "async_stream", None),
            ("sync", "ours", "sync_stream", None),
            ("sync", STEPPED, "sync_stream_stepped", None),
            ("sync", THREADED, "sync_stream_threaded", None),
            ("sync", THREADED_POOL, "sync_stream_threaded", 1000),
            ("sync", "hayhooks", "sync_stream", None),
            ("sync", "floor", "sync_stream", None),
        ]
        # The baseline holds the same streams as ours (its lone LLM, async and sync), right after it.
        cases = [
            (kind, twin, model, pool) for kind, column, model, pool in cases for twin in self.with_baseline([column])
        ]
        for kind, column, model, pool in cases:
            name = self.server_of(column)
            if name not in self.targets:
                continue
            async with self.servers([name], thread_pool=pool) as servers:
                await self.warm_up(servers, [model])
                out[kind][column] = await self.hold_streams(servers, name, model, text)
            log(f"slow {kind} {column}: {brief_slow(out[kind][column], s.slow_streams)}")
        if "upstream" in self.targets:
            out["async"]["upstream"] = await self.hold_streams({}, "upstream", UPSTREAM_MODEL, text)
            out["sync"]["upstream"] = out["async"]["upstream"]
            log(f"slow upstream direct: {brief_slow(out['async']['upstream'], s.slow_streams)}")
        return out

    async def hold_streams(self, servers: dict[str, Server], name: str, model: str, text: str) -> dict[str, Any]:
        s = self.sizes
        port, proc = self.endpoint(servers, name)
        bodies = [load.chat_body(model, f"slow-{i}", True) for i in range(s.slow_streams)]
        idle_rss = procs.tree_rss(proc.pid)
        label = f"slow-{model}-{proc.name}"
        with self.watch_all(proc, label, interval=0.5) as (watch, others):
            results = await load.many_streams(HOST, port, bodies, deadline=s.slow_deadline)
        good = [r for r in results if load.intact(r, text)]
        ttfts = [1000 * r.ttft for r in results if r.ttft is not None]
        errors = [r.error or f"status {r.status}" for r in results if not load.intact(r, text)]
        # Upstream chunks that reached the client, counted by characters (servers may merge chunks).
        delivered = sum(len(r.content) for r in results) / (len(text) / max(1, len(text.split())))
        return {
            "intact": len(good),
            "started": len(ttfts),
            "chunks_delivered": delivered,
            "cpu_ms_per_chunk": 1000 * watch.cpu / delivered if delivered else None,
            "ttft_p50_ms": load.percentile(ttfts, 50),
            "ttft_p99_ms": load.percentile(ttfts, 99),
            "stream_p50_s": load.percentile([r.latency for r in good], 50),
            "peak_rss_mb": watch.peak_rss / 2**20,
            "peak_largest_process_rss_mb": watch.peak_largest_rss / 2**20,
            "idle_rss_mb": idle_rss / 2**20,
            "cpu_s": watch.cpu,
            # System-wide: SYNs dropped because an accept queue was full (the client retries, TTFT grows).
            "listen_overflows": watch.listen_overflows,
            **others.cpu_shares(),
            "first_error": errors[0] if errors else None,
            "error_kinds": error_kinds(errors),
        }

    async def scenario_cold(self) -> dict[str, Any]:
        """4. Cold start: process start to first answered request, each target alone on the machine, the targets
        taking turns in every repeat."""
        await self.start_upstream(FIXED_ANSWER, rate=0)
        columns = self.wanted(self.with_baseline(("ours", "hayhooks", "floor")))
        for column in columns:
            if (name := self.server_of(column)) not in self.ever_started:  # the first start also compiles bytecode
                async with self.servers([name]):
                    pass
        runs: dict[str, list[dict[str, Any]]] = {column: [] for column in columns}
        for repeat in range(self.sizes.cold_repeats):
            for column in self.in_turn(columns, repeat):
                name = self.server_of(column)
                async with self.servers([name]) as servers:
                    server = servers[name]
                    runs[column].append(
                        {
                            "seconds": server.ready_s,
                            "idle_rss_mb": procs.tree_rss(server.proc.pid) / 2**20,
                            "idle_largest_process_rss_mb": procs.largest_rss(server.proc.pid) / 2**20,
                        }
                    )
        out: dict[str, Any] = {}
        for column, column_runs in runs.items():
            out[column] = summarize(column_runs)
            log(f"cold start {column}: {fmt(out[column]['seconds'], 2)} s, idle {fmt(out[column]['idle_rss_mb'])} MB")
        return out

    async def scenario_cancel(self) -> dict[str, Any]:
        """5. Cancellation: clients hang up after the first token; does the upstream stop being read?

        A round is a few milliseconds per target, which one busy moment of the machine can swing: the
        targets take turns over `repeats` rounds, and every row is over all the hang-ups of all rounds.
        """
        s = self.sizes
        await self.start_upstream(stream_text(s.cancel_tokens), rate=s.cancel_rate)
        settings = {"streams": s.cancel_streams, "rate": s.cancel_rate, "settle": s.cancel_settle, "rounds": s.repeats}
        out: dict[str, Any] = {"settings": settings, "async": {}, "sync": {}}
        names = self.wanted(self.with_baseline(("ours", "hayhooks", "floor")))

        def cases(round_number: int) -> list[tuple[str, str, str]]:
            """(kind, target, model) in this round's order, then the upstream called directly."""
            turn = self.in_turn(names, round_number)
            order = [(kind, name, f"{kind}_stream") for kind in ("async", "sync") for name in turn]
            return order + ([("async", "upstream", UPSTREAM_MODEL)] if "upstream" in self.targets else [])

        samples = {(kind, name): HangUps() for kind, name, _ in cases(0)}
        async with self.servers(["ours", BASELINE, "hayhooks", "floor"]) as servers:
            await self.warm_up(servers, ["async_stream", "sync_stream"])
            for round_number in range(s.repeats):
                for kind, name, model in cases(round_number):
                    tag = f"cancel-{round_number}-{kind}-{name}"
                    samples[kind, name].add(await self.hang_up(servers, name, model, tag))
        for (kind, name), hang_ups in samples.items():
            out[kind][name] = hang_ups.summary()
            log(f"cancel {kind} {name}: {out[kind][name]}")
        if "upstream" in self.targets:
            out["sync"]["upstream"] = out["async"]["upstream"]
        return out

    async def scenario_plain(self) -> dict[str, Any]:
        """The plain path's CPU per request: `fixed`, not streamed, at concurrency 16, every target in turn.

        What the server spends per request is the figure a shared machine keeps (requests/s moves with whatever
        else runs), and each request on this path pays every per-request cost of the serving layer (request id,
        metrics, access line, routing, parsing) around a pipeline that does almost nothing. So the targets take
        turns over `plain_rounds` rounds of `plain_requests` requests each (thousands: /proc counts CPU in 10 ms
        ticks), and the report gives the medians and ours over the floor. Informational, also in the smoke run
        that CI prints: a change that adds per-request work shows there; nothing asserts on it.
        """
        s = self.sizes
        await self.start_upstream(FIXED_ANSWER, rate=0)
        models = {"floor (pipeline)": "fixed_pipeline"}  # the same pipeline in a thread under bare Quart
        columns = self.wanted(self.with_baseline(("ours", "hayhooks", "floor", "floor (pipeline)")))
        out: dict[str, Any] = {
            "settings": {"concurrency": PLAIN_CONCURRENCY, "requests": s.plain_requests, "rounds": s.plain_rounds}
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in columns}
        async with self.servers(["ours", BASELINE, "hayhooks", "floor"]) as servers:
            await self.warm_up(servers, ["fixed"])
            if "floor" in servers:
                await self.warm_up({"floor": servers["floor"]}, ["fixed_pipeline"])
            for round_number in range(s.plain_rounds):
                for name in self.in_turn(columns, round_number):
                    port, proc = self.endpoint(servers, name)
                    runs[name].append(
                        await self.measure_loop(
                            port,
                            proc,
                            load.chat_body(models.get(name, "fixed"), "q", False),
                            stream=False,
                            concurrency=PLAIN_CONCURRENCY,
                            expected=FIXED_ANSWER,
                            tokens=1,
                            label=f"plain-{name}-{round_number}".replace(" ", "_"),
                            max_requests=s.plain_requests,
                        )
                    )
        out |= {name: summarize(r) for name, r in runs.items()}
        log(plain_summary(out))
        return out

    async def hang_up(self, servers: dict[str, Server], name: str, model: str, tag: str) -> HangUps:
        """One round: `cancel_streams` clients hang up after the first token; what the upstream did after."""
        s = self.sizes
        port, _ = self.endpoint(servers, name)
        prompts = [f"{tag}-{i}" for i in range(s.cancel_streams)]
        results = await load.many_streams(
            HOST,
            port,
            [load.chat_body(model, p, True) for p in prompts],
            deadline=30.0,
            hang_up_after_first_content=True,
        )
        await asyncio.sleep(s.cancel_settle)
        stats = await load.get_json(HOST, self.upstream_port, "/stats?times=1")
        by_prompt = {record["prompt"]: record for record in stats["streams"]}
        this_round = HangUps()
        for prompt, result in zip(prompts, results, strict=True):
            record = by_prompt.get(prompt)
            if result.hung_up_at is None or record is None:
                this_round.missing += 1
                continue
            this_round.tokens_after.append(sum(1 for t in record["sent_times"] if t > result.hung_up_at))
            if record["ended_at"] is None:
                this_round.still_open += 1
            else:
                this_round.stop_latencies_ms.append(1000 * (record["ended_at"] - result.hung_up_at))
        return this_round


@dataclass
class HangUps:
    """What the upstream did after clients hung up, per hang-up, over one or more rounds."""

    tokens_after: list[int] = field(default_factory=list)
    stop_latencies_ms: list[float] = field(default_factory=list)
    still_open: int = 0
    missing: int = 0

    def add(self, other: HangUps) -> None:
        self.tokens_after += other.tokens_after
        self.stop_latencies_ms += other.stop_latencies_ms
        self.still_open += other.still_open
        self.missing += other.missing

    def summary(self) -> dict[str, Any]:
        return {
            "hung_up": len(self.tokens_after),
            "missing": self.missing,
            "tokens_after_p50": load.median([float(a) for a in self.tokens_after]),
            "tokens_after_max": max(self.tokens_after, default=None),
            "still_open": self.still_open,
            "stop_latency_p50_ms": load.percentile(self.stop_latencies_ms, 50),
            "stop_latency_max_ms": max(self.stop_latencies_ms, default=None),
        }


# ---- helpers -------------------------------------------------------------------------------


class OtherCpu:
    """CPU used, during one measurement, by this process (the load generator) and by the upstream."""

    def __init__(self, upstream_pid: int | None) -> None:
        self.upstream_pid = upstream_pid
        self.client = self.upstream = 0.0
        self.wall = 0.0

    def __enter__(self) -> OtherCpu:
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.upstream = procs.tree_cpu(self.upstream_pid) if self.upstream_pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.client = time.process_time() - self.client
        self.upstream = (procs.tree_cpu(self.upstream_pid) - self.upstream) if self.upstream_pid else 0.0

    def cpu_shares(self) -> dict[str, float]:
        """Average cores used by the load generator and by the upstream (1.0 = one core busy all the time)."""
        wall = max(self.wall, 1e-9)
        return {"client_cores": self.client / wall, "upstream_cores": self.upstream / wall}


def error_kinds(errors: list[str]) -> dict[str, int]:
    """How many requests failed how: `timeout`, `ConnectionResetError`, `status 500`, a wrong text..."""
    kinds: dict[str, int] = {}
    for error in errors:
        kind = (error if len(error) < 40 else error.split(":", 1)[0]) if error else "wrong or incomplete text"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def server_of(column: str) -> str:
    """The process behind a report column: `ours (...)` columns are other models of ours, `raw` and
    `floor (pipeline)` other models of the floor app."""
    if column in TARGET_NAMES:
        return column
    return "ours" if column.startswith("ours") else "floor"


def stream_text(tokens: int) -> str:
    """An answer of exactly `tokens` upstream chunks (the upstream splits on words)."""
    return " ".join(f"w{i}" for i in range(tokens))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric metric over the repeats, plus the repeats themselves."""
    out: dict[str, Any] = {}
    for key in runs[0] if runs else ():
        values = [r.get(key) for r in runs]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers:
            out[key] = load.median(numbers)
        elif any(v is not None for v in values):
            out[key] = next(v for v in values if v is not None)
    if len(runs) > 1:
        out["runs"] = runs
    return out


def plain_summary(plain: dict[str, Any]) -> str:
    """One line for the log (CI's included): the plain path's CPU per request of each target, ours over the floor."""
    cpu = {name: block.get("cpu_ms_per_request") for name, block in plain.items() if name != "settings"}
    line = "plain path CPU per request (fixed, c={concurrency}, median of {rounds} rounds of {requests}): ".format(
        **plain["settings"]
    )
    line += ", ".join(f"{name} {fmt(ms, 3)} ms" for name, ms in cpu.items())
    for floor in ("floor", "floor (pipeline)"):
        if (ours := cpu.get("ours")) and (theirs := cpu.get(floor)):
            line += f"; ours/{floor} {ours / theirs:.2f}x ({1000 * (ours - theirs):+.0f} us per request)"
    return line


def fmt(value: Any, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def brief_slow(block: dict[str, Any], n: int) -> str:
    return (
        f"{block['intact']}/{n} intact, ttft p99 {fmt(block['ttft_p99_ms'])} ms, "
        f"peak {fmt(block['peak_rss_mb'])} MB, cpu {fmt(block['cpu_s'], 1)} s"
        + (f", first error: {block['first_error']}" if block.get("first_error") else "")
    )


def scenario_deadline(name: str, s: Sizes, with_baseline: bool = False) -> float:
    """A generous bound on one scenario's wall time, so nothing can hang the run; a baseline adds a column."""
    startup = 4 * READY_TIMEOUT
    if name == "rps":
        per = (s.rps_warmup + s.rps_duration + 10) * s.repeats * len(s.rps_concurrency) * 7
    elif name == "streaming":
        cases = 2 * len(s.stream_concurrency) + (1 if s.stream_history else 0)  # the lone LLM, the agent, the long chat
        per = (s.stream_warmup + s.stream_duration + 10) * s.repeats * cases * 6
    elif name == "slow":
        per = 8 * (s.slow_deadline + READY_TIMEOUT + 30)
    elif name == "cold":
        per = 3 * (s.cold_repeats + 1) * READY_TIMEOUT
    elif name == "plain":
        per = 4 * s.plain_rounds * (s.rps_warmup + s.plain_requests / 100 + 10)  # 100 req/s: a very busy machine
    else:
        per = 7 * (30 + s.cancel_settle + 10) * s.repeats
    return startup + per * (1.3 if with_baseline else 1.0)


def loadavg_now() -> str:
    """The 1, 5 and 15 minute load averages, as the meta block records them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit() -> str:
    try:
        commit = subprocess.check_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], text=True).strip()
        dirty = subprocess.check_output(["git", "-C", str(REPO), "status", "--porcelain"], text=True).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


async def run_scenarios(bench: Bench, names: list[str]) -> None:
    runners = {
        "rps": bench.scenario_rps,
        "streaming": bench.scenario_streaming,
        "slow": bench.scenario_slow,
        "cold": bench.scenario_cold,
        "cancel": bench.scenario_cancel,
        "plain": bench.scenario_plain,
    }
    keys = {"slow": "slow_streams", "cold": "cold_start", "cancel": "cancellation", "plain": "plain_path"}
    for name in names:
        log(f"scenario {name}")
        started = time.perf_counter()
        loadavg = loadavg_now()  # the machine is shared: how busy it was is part of the result
        try:
            async with asyncio.timeout(scenario_deadline(name, bench.sizes, bench.baseline is not None)):
                result = await runners[name]()
        except (TimeoutError, RuntimeError, OSError, load.HttpError) as error:
            log(f"scenario {name} failed: {type(error).__name__}: {error}")
            result = {"error": f"{type(error).__name__}: {error}"[:2000]}
        finally:
            bench.stop_upstream()
        result["wall_s"] = time.perf_counter() - started
        result["loadavg_start"] = loadavg
        bench.results["scenarios"][keys.get(name, name)] = result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few requests per scenario (CI): checks the harness")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--targets",
        help=f"comma-separated subset of {','.join(TARGET_NAMES)},{BASELINE} (default: all; {BASELINE} with --baseline)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also serve the template at git revision REV, as ours is, interleaved with the others: before/after "
        "figures of a change in one run (see bench/README.md)",
    )
    parser.add_argument(
        "--baseline-label", metavar="NAME", help="the baseline's column and JSON key (default: ours@<short commit>)"
    )
    parser.add_argument("--repeats", type=int, help="repeats per measurement (medians are reported)")
    parser.add_argument("--slow-streams", type=int, help="concurrent streams in scenario 3")
    parser.add_argument("--slow-seconds", type=float, help="length of each slow stream")
    parser.add_argument("--slow-deadline", type=float, help="seconds each slow stream gets before it counts as failed")
    parser.add_argument("--slow-rate", type=float, help="upstream tokens per second in scenario 3")
    parser.add_argument("--plain-requests", type=int, help="requests per target and round in scenario `plain`")
    parser.add_argument("--plain-rounds", type=int, help="rounds in scenario `plain` (medians are reported)")
    parser.add_argument(
        "--profile",
        choices=("ours", BASELINE, "hayhooks", "floor"),
        help="py-spy flame graphs of one target, in bench/.work/profiles",
    )
    parser.add_argument("--hayhooks-version", default=HAYHOOKS_VERSION)
    parser.add_argument("--out", type=Path, help="results folder (default bench/results)")
    parser.add_argument(
        "--label", help="suffix for the result files, for runs with other settings: <date>-<label>.json"
    )
    parser.add_argument("--skip-install", action="store_true", help="reuse the last bake and venvs as they are")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    overrides = {
        "repeats": args.repeats,
        "slow_streams": args.slow_streams,
        "slow_seconds": args.slow_seconds,
        "slow_deadline": args.slow_deadline,
        "slow_rate": args.slow_rate,
        "plain_requests": args.plain_requests,
        "plain_rounds": args.plain_rounds,
    }
    sizes = replace(sizes, **{k: v for k, v in overrides.items() if v is not None})
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    if unknown := set(names) - set(SCENARIOS):
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    default_targets = [*TARGET_NAMES, BASELINE] if args.baseline else TARGET_NAMES
    targets = [n.strip() for n in (args.targets or ",".join(default_targets)).split(",") if n.strip()]
    if unknown := set(targets) - {*TARGET_NAMES, BASELINE}:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    if BASELINE in targets and not args.baseline:
        raise SystemExit(f"--targets {BASELINE} needs --baseline REV: the revision to compare with")
    baseline_commit = short_commit(REPO, args.baseline) if args.baseline else None
    label = args.baseline_label
    if label is not None and (label in (*TARGET_NAMES, BASELINE, "raw") or "(" in label):  # the others' columns
        raise SystemExit(f"--baseline-label {label!r}: a name like `before`, not a target's or another column's")
    mode = "smoke" if args.smoke else "full"

    # Ctrl-C and SIGTERM both end the run through the `finally` below, which stops every process.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    try:
        if not args.skip_install:
            bake_and_install()
            install_hayhooks(args.hayhooks_version)
        baseline = None
        if args.baseline and BASELINE not in targets:
            log(f"--targets leaves out {BASELINE}: --baseline {args.baseline} is not baked")
        elif args.baseline and baseline_commit:
            baseline = prepare_baseline(
                args.baseline,
                baseline_commit,
                label,
                repo=REPO,
                work=WORK,
                ours_venv=OURS_VENV,
                wrappers=TARGETS / "ours" / "bench_wrappers",
                env=base_env(f"http://{HOST}:9/v1"),
                sh=sh,
                log=log,
                reuse=args.skip_install,
            )
        nofile = raise_open_file_limit()
        bench = Bench(sizes, mode, targets, args.profile, baseline)
        today = datetime.date.today().isoformat()
        bench.results["meta"] = {
            "date": today,
            "mode": mode,
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg_now(),
            "python": platform.python_version(),
            "commit": git_commit(),
            "repeats": sizes.repeats,
            "scenarios": names,
            "targets": targets,
            "label": args.label,
            "open_files_limit": nofile,
            "sizes": asdict(sizes),
            "versions": installed_versions(
                OURS_VENV / "bin" / "python", ["haystack-ai", "quart", "hypercorn", "openai"]
            )
            | installed_versions(HAYHOOKS_VENV / "bin" / "python", ["hayhooks", "fastapi", "uvicorn", "uvloop"]),
        }
        if baseline is not None:
            versions = installed_versions(baseline.python, ["haystack-ai", "quart", "hypercorn", "openai"])
            bench.results["meta"]["baseline"] = baseline.meta() | {"versions": versions}
        try:
            asyncio.run(run_scenarios(bench, names))
        except KeyboardInterrupt:
            log("interrupted: writing what was measured so far")
            bench.results["meta"]["interrupted"] = True
    finally:
        procs.stop_all()
    bench.results["meta"]["wall_s"] = time.perf_counter() - started
    bench.results["meta"]["loadavg_end"] = loadavg_now()

    out_dir = args.out or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"smoke-{today}" if args.smoke else today
    if args.label:
        stem += f"-{args.label}"
    markdown = report.render(bench.results)
    (out_dir / f"{stem}.json").write_text(json.dumps(bench.results, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown)
    print(markdown)
    log(f"wrote {out_dir / stem}.json and .md in {bench.results['meta']['wall_s']:.0f} s")
    failed = [k for k, v in bench.results["scenarios"].items() if "error" in v]
    if bench.results["meta"].get("interrupted"):
        return 130
    if failed:
        log(f"scenarios that did not finish: {', '.join(failed)}")
        return 1
    complete = set(names) == set(SCENARIOS) and set(targets) == set(TARGET_NAMES)
    if sizes == FULL and complete and not args.profile and args.out is None and not args.baseline:
        # The standard run, every scenario and target, unprofiled, no baseline: the one docs/benchmark.md shows.
        report.publish(report.DOCS_PAGE, out_dir / f"{stem}.json")
        log(f"published its report in {report.DOCS_PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

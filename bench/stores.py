"""The state store benchmark: what keeping responses in SQLite or Redis costs, and what a second worker gains.

    python bench/stores.py                        # SQLite and Redis, --workers 0 (shipped), 1 and 2
    python bench/stores.py --baseline a4129df     # ... and the in-memory store of that commit, as `memory`
    python bench/stores.py --smoke                # a few requests per case: proves the harness works

Every request goes to the Responses API with `store` on (the default), answered by models with no LLM
(`targets/stores/store_wrappers`: the fixed pipeline, and 64 tokens streamed at once), so that the store's
share of each request is as large as it gets: non-streamed req/s at concurrency 1 and 16, streamed
answers/s at 16. Targets run side by side and take turns within each repeat; the report gives medians,
and ratios to the first target. Redis is Debian's `redis-server` on a unix socket, without persistence,
each target on its own database. Results go to bench/results/<date>-stores.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "targets"))

import load  # noqa: E402
import procs  # noqa: E402
import run as harness  # noqa: E402
from bench_config import FIXED_ANSWER  # noqa: E402

WORK = harness.WORK / "stores"
WRAPPERS = BENCH / "targets" / "stores"
STREAM_TEXT = "".join(f"t{number} " for number in range(64))
CASES = (("non-streamed", False, 1), ("non-streamed", False, 16), ("streamed", True, 16))


@dataclass
class Target:
    name: str
    project: Path  # a baked project; its src/ goes first on PYTHONPATH
    workers: int | None  # None: hypercorn.toml's value (0: one process, as shipped)
    env: dict[str, str] = field(default_factory=dict)
    proc: procs.Proc | None = None
    port: int = 0


def bake(source: Path, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    harness.sh(
        [sys.executable, "-m", "cookiecutter", source, "--no-input", "--output-dir", into], f"bake-{into.name}.log"
    )
    return into / harness.SLUG


def bake_commit(ref: str, into: Path) -> Path:
    """The template as it was at `ref` (git archive), baked."""
    archive = subprocess.run(["git", "-C", str(harness.REPO), "archive", ref], capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory() as temp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(temp, filter="data")
        return bake(Path(temp), into)


def install(project: Path) -> Path:
    """The baked project's dependencies in the benchmark's venv; which copy of the code runs is PYTHONPATH's choice."""
    python = harness.OURS_VENV / "bin" / "python"
    if not python.exists():
        harness.sh([sys.executable, "-m", "venv", harness.OURS_VENV], "venv-ours.log")
    harness.sh([python, "-m", "pip", "install", "--quiet", "-e", project], "pip-stores.log")
    return python


def start_redis(directory: Path) -> tuple[procs.Proc, str]:
    socket_path = Path(tempfile.mkdtemp(prefix="bench-redis-")) / "redis.sock"
    argv = ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", "", "--appendonly", "no"]
    argv += ["--databases", "16", "--dir", str(directory)]
    proc = procs.Proc("redis", argv, {"PATH": "/usr/bin:/bin"}, directory, harness.LOGS / "stores-redis.log").start()
    deadline = time.monotonic() + 10
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, f"unix://{socket_path}"


def start(target: Target, python: Path) -> None:
    target.port = procs.free_port()
    data_dir = WORK / "data" / target.name.replace(" ", "-")
    shutil.rmtree(data_dir, ignore_errors=True)
    env = harness.base_env("http://127.0.0.1:9/v1") | target.env  # no model here calls an LLM
    env |= {
        "WRAPPERS_PACKAGE": "store_wrappers",
        "PYTHONPATH": f"{target.project / 'src'}:{WRAPPERS}:{BENCH / 'targets'}",
        "DATA_DIR": str(data_dir),
    }
    argv = [str(python.parent / "hypercorn"), "--config", str(target.project / "hypercorn.toml")]
    argv += ["--bind", f"{harness.HOST}:{target.port}", f"{harness.SLUG}.asgi:app"]
    if target.workers is not None:
        argv += ["--workers", str(target.workers)]
    label = f"stores-{target.name.replace(' ', '-')}"
    target.proc = procs.Proc(label, argv, env, target.project, harness.LOGS / f"{label}.log").start()


async def answers(target: Target) -> bool:
    conn = load.Connection(harness.HOST, target.port)
    try:
        result = await load.chat_request(conn, body("fixed", False), stream=False, timeout=5, path=load.RESPONSES_PATH)
    finally:
        conn.close()
    return result.status == 200 and result.content == FIXED_ANSWER


def body(model: str, stream: bool) -> bytes:
    return json.dumps({"model": model, "input": "Keep this conversation, please.", "stream": stream}).encode()


async def measure(target: Target, stream: bool, concurrency: int, warmup: float, duration: float, cap: int) -> dict:
    assert target.proc is not None
    with procs.Watch(target.proc.pid) as watch:
        loop = await load.closed_loop(
            harness.HOST,
            target.port,
            body("stream" if stream else "fixed", stream),
            stream=stream,
            concurrency=concurrency,
            warmup=warmup,
            duration=duration,
            max_requests=cap,
            request_timeout=30,
            path=load.RESPONSES_PATH,
        )
    expected = STREAM_TEXT if stream else FIXED_ANSWER
    intact = sum(load.intact(result, expected) for result in loop.results)
    latencies = [result.latency * 1000 for result in loop.results]
    return {
        "rate": len(loop.ended_in_window) / loop.window,
        "requests": len(loop.results),
        "intact": intact,
        "p50_ms": load.percentile(latencies, 50),
        "p99_ms": load.percentile(latencies, 99),
        "cpu_ms": watch.cpu * 1000 / max(len(loop.results), 1),
        "errors": harness.error_kinds([r.error for r in loop.results if r.error]),
    }


def report(names: list[str], runs: dict[str, dict[str, list[dict]]], meta: dict[str, Any]) -> str:
    """Medians over the repeats; a ratio is the median of the ratios to the first target within each repeat,
    which ran a few seconds apart, so that a busy moment on the machine weighs on both sides of it."""
    first = names[0]
    load = meta["load_average"]
    lines = [f"# State store benchmark ({meta['date']}, {meta['commit']})", "", meta["note"], ""]
    lines += [f"{meta['cpus']} CPUs; load average {load['start']} at the start, {load['end']} at the end."]
    lines += [f"A ratio is the median over the repeats of the rate over `{first}`'s in the same repeat.", ""]
    cases = [f"{kind} c={concurrency}" for kind, _, concurrency in CASES]
    header = "| target | " + " | ".join(cases) + " | p99 ms (c=16) | CPU ms/request: non-streamed, streamed (c=16) |"
    lines += [header, "|" + "---|" * (len(CASES) + 3)]
    for name in names:
        cells = []
        for kind, key in zip((kind for kind, _, _ in CASES), cases, strict=True):
            rate = median_of(runs[name][key], "rate")
            ratios = [run["rate"] / base["rate"] for run, base in zip(runs[name][key], runs[first][key], strict=True)]
            unit = "answers/s" if kind == "streamed" else "req/s"
            cells.append(f"{rate:.0f} {unit} ({load_median(ratios):.2f}x)")
        p99 = median_of(runs[name]["non-streamed c=16"], "p99_ms")
        cpu = [median_of(runs[name][key], "cpu_ms") for key in ("non-streamed c=16", "streamed c=16")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {p99:.1f} | {cpu[0]:.2f}, {cpu[1]:.2f} |")
    broken = [
        f"{name} {key}: {run['requests'] - run['intact']} of {run['requests']} not intact {run['errors']}"
        for name, by_case in runs.items()
        for key, repeats in by_case.items()
        for run in repeats
        if run["intact"] != run["requests"]
    ]
    lines += ["", "Every answer intact." if not broken else "Not intact:\n" + "\n".join(f"- {b}" for b in broken)]
    return "\n".join(lines) + "\n"


def median_of(repeats: list[dict], key: str) -> float:
    return load_median([run[key] for run in repeats])


def load_median(values: list[float]) -> float:
    return load.median(values) or 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a git ref whose template (in-memory store) runs as the first target")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true", help="one repeat of a few requests per case, nothing saved")
    parser.add_argument("--label", default="stores")
    parser.add_argument("--targets", help="a subset, e.g. memory,sqlite,redis,sqlite-w2 (-wN: --workers N)")
    parser.add_argument("--report", type=Path, help="only print the report of a saved run's .json")
    return parser.parse_args(argv)


async def run_all(args: argparse.Namespace) -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    harness.log("baking the working tree's template")
    head = bake(harness.REPO, WORK / "head")
    python = install(head)
    redis_proc, redis_url = start_redis(WORK)
    targets: list[Target] = []
    if args.baseline:
        harness.log(f"baking the template at {args.baseline} (the baseline)")
        targets.append(Target("memory", bake_commit(args.baseline, WORK / "baseline"), None))
    for workers in (None, 1, 2):
        suffix = "" if workers is None else f" --workers {workers}"
        targets.append(Target(f"sqlite{suffix}", head, workers))
        database = len(targets)
        targets.append(Target(f"redis{suffix}", head, workers, {"STATE_URL": f"{redis_url}?db={database}"}))
    if args.targets:
        wanted = set(args.targets.split(","))
        targets = [target for target in targets if target.name.replace(" --workers ", "-w") in wanted]
    repeats, duration, warmup, cap = (1, 2.0, 0.2, 20) if args.smoke else (args.repeats, args.duration, 1.0, 1_000_000)
    runs: dict[str, dict[str, list[dict]]] = {t.name: {f"{k} c={c}": [] for k, _, c in CASES} for t in targets}
    try:
        for target in targets:
            start(target, python)
        for target in targets:
            assert target.proc is not None
            await harness.wait_ready(target.proc, lambda t=target: answers(t))
        for repeat in range(repeats):
            for kind, stream, concurrency in CASES:
                for target in targets:
                    result = await measure(target, stream, concurrency, warmup, duration, cap)
                    runs[target.name][f"{kind} c={concurrency}"].append(result)
                    harness.log(f"repeat {repeat + 1}: {target.name} {kind} c={concurrency}: {result['rate']:.0f}/s")
    finally:
        for target in targets:
            if target.proc is not None:
                target.proc.stop()
        redis_proc.stop()
    note = (
        f"{repeats} repeats of {duration:.0f} s per case, medians; ratios to `{targets[0].name}`. Responses API, store on; "
        "2 cores shared by the load generator, the targets and redis-server."
    )
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": harness.git_commit(), "note": note, "baseline": args.baseline}
    meta["load_average"] = {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]}
    meta["cpus"] = os.cpu_count()
    text = report([target.name for target in targets], runs, meta)
    print(text)
    if not args.smoke:
        out = harness.RESULTS / f"{meta['date']}-{args.label}"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
        harness.log(f"wrote {out}.md and .json")
    broken = any(run["intact"] != run["requests"] for cases in runs.values() for rs in cases.values() for run in rs)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print(report(list(saved["runs"]), saved["runs"], saved["meta"]), end="")
        return 0
    try:
        return asyncio.run(run_all(args))
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

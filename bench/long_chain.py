"""The long-chain benchmark (issue 27): what turn 300 of a `previous_response_id` chain costs against turn 1, and
how many bytes the state store holds for the chain, the working tree against a baseline commit.

    python bench/long_chain.py                          # 300 turns, 4 and 32 KB, SQLite and Redis, vs 2dc273a
    python bench/long_chain.py --baseline main --sizes 4 --engines sqlite
    python bench/long_chain.py --targets baseline       # the baseline alone
    python bench/long_chain.py --smoke                  # 20 turns of 4 KB: proves the harness works, nothing saved
    python bench/long_chain.py --report bench/results/<date>-long-chain.json   # re-render a saved run

A store that keeps each response with the whole history it read makes turn n cost O(n) and the chain O(n^2)
bytes; a store that keeps each item once makes both flat. So one client sends a chain of turns, each naming the
last response (`previous_response_id`), each with `--sizes` KB of new input, to the default bake's `chat` model
(offline: no OPENAI_API_KEY, so `MockChatGenerator` answers by echoing the question; no LLM server, no network).
The targets (`ours`, the working tree; `ours@<commit>`, the baseline) run side by side, each a fresh server and a
fresh store per chain, and take turns turn by turn so that a busy moment on the machine weighs on both.

Reported, per engine, size and target: the latency of each turn (medians of 5 turns around turns 1, 10, 50, 100,
200 and 300) and turn 300 against turn 1; the CPU the server (and its redis-server) spent per turn over the first
and the last CPU_WINDOW turns, which a busy machine disturbs far less than latency (a clock tick is 10 ms, so
it is summed over a window, not read per turn); the store's bytes after the chain against the conversation's own bytes
(the JSON of every input sent and every output received). SQLite: DATA_DIR's size as the service left it, and
after `PRAGMA wal_checkpoint(TRUNCATE)`. Redis (Debian's `redis-server` on a unix socket, no persistence, one per
target and chain): `used_memory` over the empty server, and the sum of `MEMORY USAGE` over its keys. Issue 27's
targets: turn 300 within 1.5x of turn 1, store bytes within 3x of the conversation's.

`--model fixed` sends the chain to the store benchmarks' `fixed` model instead (targets/stores/store_wrappers: a
short answer, the history unread), which leaves the store's share alone: `chat` renders the whole history into
its prompt and scans it, which grows with the chain whatever the store does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import conversations  # noqa: E402
import procs  # noqa: E402
import run as harness  # noqa: E402
import stores  # noqa: E402

WORK = harness.WORK / "long-chain"
DEFAULT_BASELINE = "2dc273a"  # the commit before the store rebuild of issue 27
POINTS = (1, 10, 50, 100, 200, 300)
SPAN = 5  # turns per reported median, around each point
LATENCY_BAR = 1.5  # issue 27: turn 300 within 1.5x of turn 1
BYTES_BAR = 3.0  # ... and the store's bytes within 3x of the conversation's own
ENGINES = ("sqlite", "redis")
SMOKE_TURNS = 20
CPU_WINDOW = 30  # turns whose server CPU is summed, at the start and at the end of the chain


@dataclass
class Target:
    """One side of the comparison: a baked project, run from the bench venv with its src/ first on PYTHONPATH."""

    name: str
    project: Path
    proc: procs.Proc | None = None
    redis: procs.Proc | None = None
    redis_socket: Path | None = None
    data_dir: Path = Path()
    port: int = 0
    results: dict[str, Any] = field(default_factory=dict)


class LongChain(conversations.Chain):
    """A `previous_response_id` chain (conversations.py's client) that sends `size` bytes of new text per turn
    to `model` and counts the conversation's own bytes."""

    def __init__(self, port: int, model: str, size: int, seed: int, truncation: str | None = None) -> None:
        super().__init__("previous_response_id", port)
        self.model, self.size, self.truncation = model, size, truncation
        self.words = random.Random(seed)
        self.own_bytes = 0
        self.last_answer = ""

    def text(self, number: int) -> str:
        """`size` bytes of words that differ from turn to turn (no repeat a store could share), on one line: the
        offline answer repeats the question, as the issue's run did."""
        words = [f"Turn {number}:"]
        length = len(words[0])
        while length < self.size - 1:
            word = "".join(self.words.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(self.words.randint(2, 9)))
            words.append(word)
            length += len(word) + 1
        return " ".join(words)[: self.size - 1] + "?"

    def turn(self, number: int) -> float:
        """Seconds one turn took, the answer read whole."""
        body: dict[str, Any] = {"model": self.model, "input": self.text(number)}
        if self.previous is not None:
            body["previous_response_id"] = self.previous
        if self.truncation is not None:
            body["truncation"] = self.truncation
        started = time.perf_counter()
        response = self.post("/v1/responses", body)
        elapsed = time.perf_counter() - started
        self.previous = response["id"]
        self.own_bytes += json_bytes(body["input"]) + json_bytes(response["output"])
        self.last_answer = next(
            (part.get("text", "") for item in response["output"] for part in item.get("content", [])), ""
        )
        return elapsed

    def history_items(self) -> int:
        """Input items the last response holds (every page): checks that the chain carried its history."""
        path = f"/v1/responses/{self.previous}/input_items?limit=100"
        page = self.get(path)
        count = len(page["data"])
        while page.get("has_more"):
            page = self.get(f"{path}&after={page['last_id']}")
            count += len(page["data"])
        return count


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def server_env(target: Target, model: str) -> dict[str, str]:
    """The harness's server environment without any LLM: no OPENAI_* at all, so `chat` answers offline."""
    env = {k: v for k, v in harness.base_env("").items() if not k.startswith("OPENAI_")}
    paths = [target.project / "src"]
    if model != "chat":  # the store benchmarks' models
        paths += [stores.WRAPPERS, BENCH / "targets"]
        env["WRAPPERS_PACKAGE"] = "store_wrappers"
    env |= {"PYTHONPATH": ":".join(map(str, paths)), "DATA_DIR": str(target.data_dir)}
    if target.redis_socket is not None:
        env["STATE_URL"] = f"unix://{target.redis_socket}"
    return env


def check_imports(python: Path, target: Target, model: str) -> None:
    """The copy of the package the server will import is the target's own (PYTHONPATH before the editable install)."""
    argv = [str(python), "-c", "import haystack_service; print(haystack_service.__file__)"]
    found = subprocess.run(argv, env=server_env(target, model), capture_output=True, text=True, check=True).stdout
    if not Path(found.strip()).is_relative_to(target.project / "src"):
        raise SystemExit(f"{target.name} would import {found.strip()}, not its bake in {target.project}")


def start(target: Target, python: Path, engine: str, model: str, tag: str) -> None:
    """A fresh store and a fresh server for one chain."""
    label = f"long-chain-{target.name.replace('@', '-')}-{tag}"
    target.data_dir = WORK / "data" / label
    shutil.rmtree(target.data_dir, ignore_errors=True)
    target.data_dir.mkdir(parents=True)
    target.redis, target.redis_socket = None, None
    if engine == "redis":
        target.redis, url = stores.start_redis(target.data_dir)
        target.redis_socket = Path(url.removeprefix("unix://"))
    target.port = procs.free_port()
    argv = [str(python.parent / "hypercorn"), "--config", str(target.project / "hypercorn.toml")]
    argv += ["--bind", f"{harness.HOST}:{target.port}", f"{harness.SLUG}.asgi:app"]
    env = server_env(target, model)
    target.proc = procs.Proc(label, argv, env, target.project, harness.LOGS / f"{label}.log").start()


async def ready(target: Target) -> bool:
    """GET /health/ready: the wrappers loaded and the store answering, without storing anything."""
    connection = http.client.HTTPConnection(harness.HOST, target.port, timeout=2)
    try:
        connection.request("GET", "/health/ready")
        return connection.getresponse().status == 200
    finally:
        connection.close()


def stop(target: Target) -> None:
    for proc in (target.proc, target.redis):
        if proc is not None:
            proc.stop()
    if target.redis_socket is not None:
        shutil.rmtree(target.redis_socket.parent, ignore_errors=True)
    shutil.rmtree(target.data_dir, ignore_errors=True)  # a baseline's 32 KB chain leaves gigabytes


def redis_cli(target: Target, *command: str) -> str:
    argv = ["redis-cli", "-s", str(target.redis_socket), *command]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout


# MEMORY USAGE of every key, nested values counted whole (SAMPLES 0).
_KEYS_MEMORY = (
    "local n = 0 "
    "for _, k in ipairs(redis.call('KEYS', '*')) do n = n + redis.call('MEMORY', 'USAGE', k, 'SAMPLES', 0) end "
    "return n"
)


def redis_bytes(target: Target) -> dict[str, int]:
    info = dict(line.split(":", 1) for line in redis_cli(target, "INFO", "memory").split() if ":" in line)
    keys_memory = int(redis_cli(target, "EVAL", _KEYS_MEMORY, "0").strip())
    keys = int(redis_cli(target, "DBSIZE").strip())
    return {"used_memory": int(info["used_memory"]), "keys_memory": keys_memory, "keys": keys}


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def sqlite_bytes(target: Target) -> dict[str, Any]:
    """DATA_DIR as the service left it, then after a checkpoint that empties the WAL (the service still running)."""
    before = directory_bytes(target.data_dir)
    with contextlib.closing(sqlite3.connect(target.data_dir / "state.db", timeout=30)) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return {"data_dir": before, "data_dir_checkpointed": directory_bytes(target.data_dir), "checkpoint_busy": busy}


def store_bytes(target: Target, engine: str) -> dict[str, Any]:
    return redis_bytes(target) if engine == "redis" else sqlite_bytes(target)


def stored(result: dict[str, Any]) -> int:
    """The store's bytes for the issue's ratio: DATA_DIR after the checkpoint, or Redis's used_memory delta."""
    if "data_dir" in result:
        return result["data_dir_checkpointed"]
    return result["used_memory"] - result["empty"]["used_memory"]


def server_cpu(target: Target) -> float:
    """CPU seconds used so far by the target's server, and by its redis-server when it has one."""
    assert target.proc is not None
    redis_cpu = procs.tree_cpu(target.redis.pid) if target.redis is not None else 0.0
    return procs.tree_cpu(target.proc.pid) + redis_cpu


def run_chains(
    targets: list[Target], python: Path, engine: str, size_kb: int, turns: int, model: str, truncation: str | None
) -> None:
    """One chain per target, fresh servers and stores, the targets taking turns (and the first place) turn by turn."""
    tag = f"{engine}-{size_kb}kb"
    try:
        for target in targets:
            start(target, python, engine, model, tag)
        for target in targets:
            assert target.proc is not None
            asyncio.run(harness.wait_ready(target.proc, lambda t=target: ready(t)))
        empty = {target.name: store_bytes(target, engine) for target in targets}
        chains = {target.name: LongChain(target.port, model, size_kb * 1024, size_kb, truncation) for target in targets}
        latencies: dict[str, list[float]] = {target.name: [] for target in targets}
        cpu: dict[str, list[float]] = {target.name: [] for target in targets}  # after each turn, cumulative
        for number in range(turns):
            order = targets if number % 2 == 0 else targets[::-1]
            for target in order:
                if number == 0:
                    cpu[target.name].append(server_cpu(target))
                latencies[target.name].append(chains[target.name].turn(number + 1))
                cpu[target.name].append(server_cpu(target))
            if (number + 1) % 50 == 0 or number + 1 == turns:
                last = {name: f"{values[-1] * 1000:.0f} ms" for name, values in latencies.items()}
                harness.log(f"{engine}, {size_kb} KB: turn {number + 1}/{turns}: {last}")
        for target in targets:
            chain = chains[target.name]
            result = store_bytes(target, engine) | {"empty": empty[target.name]}
            result |= {"latencies": latencies[target.name], "cpu": cpu[target.name], "own_bytes": chain.own_bytes}
            result |= {"history_items": chain.history_items(), "answer_bytes": len(chain.last_answer.encode())}
            target.results[tag] = result
            harness.log(f"{engine}, {size_kb} KB, {target.name}: {stored(result) / 1e6:.1f} MB stored")
    finally:
        for target in targets:
            stop(target)


def around(latencies: list[float], point: int) -> float:
    """Median ms of the SPAN turns centred on turn `point` (1-based), kept inside the chain."""
    start = min(max(point - 1 - SPAN // 2, 0), max(len(latencies) - SPAN, 0))
    return statistics.median(latencies[start : start + SPAN]) * 1000


def cpu_per_turn(cumulative: list[float], first: bool) -> float:
    """Server CPU ms per turn over the first (or last) CPU_WINDOW turns of a chain."""
    window = min(CPU_WINDOW, len(cumulative) - 1)
    start = 0 if first else len(cumulative) - 1 - window
    return (cumulative[start + window] - cumulative[start]) / window * 1000


def points(turns: int) -> list[int]:
    return [point for point in POINTS if point < turns] + [turns]


def megabytes(value: float) -> str:
    return f"{value / 1e6:.1f} MB" if value >= 1e5 else f"{value / 1e3:.0f} KB"


def report(data: dict[str, Any]) -> str:
    meta, runs = data["meta"], data["runs"]
    turns = meta["turns"]
    load = meta["load_average"]
    lines = [f"# Long chains (issue 27) ({meta['date']}, {meta['commit']} against {meta['baseline']})", ""]
    lines += [meta["note"], ""]
    lines += [f"{meta['cpus']} CPUs; load average {load['start']} at the start, {load['end']} at the end.", ""]
    lines += ["## Latency per turn", ""]
    lines += [
        f"Median ms of the {SPAN} turns around each turn; the last column is turn {turns} over turn 1 "
        f"(issue 27: within {LATENCY_BAR}x).",
        "",
    ]
    header = " | ".join(f"turn {point}" for point in points(turns))
    lines += [
        f"| engine | new input | target | {header} | {turns}/1 |",
        "|---|---|---|" + "---|" * (len(points(turns)) + 1),
    ]
    for tag, by_target in runs.items():
        engine, size = tag.split("-")
        for name, result in by_target.items():
            values = [around(result["latencies"], point) for point in points(turns)]
            ratio = values[-1] / values[0]
            cells = " | ".join(f"{value:.1f}" for value in values)
            lines.append(f"| {engine} | {size.upper().replace('KB', ' KB')} | {name} | {cells} | {ratio:.2f}x |")
    if any("cpu" in result for by_target in runs.values() for result in by_target.values()):
        window = min(CPU_WINDOW, turns)
        lines += ["", "## Server CPU per turn", ""]
        lines += [
            f"CPU ms the server (and its redis-server) spent per turn over turns 1-{window} and "
            f"{turns - window + 1}-{turns}; the last column is the second over the first.",
            "",
            f"| engine | new input | target | turns 1-{window} | turns {turns - window + 1}-{turns} | last/first |",
            "|---|---|---|---|---|---|",
        ]
        for tag, by_target in runs.items():
            engine, size = tag.split("-")
            for name, result in by_target.items():
                if "cpu" in result:
                    first, last = cpu_per_turn(result["cpu"], True), cpu_per_turn(result["cpu"], False)
                    size_text = size.upper().replace("KB", " KB")
                    lines.append(
                        f"| {engine} | {size_text} | {name} | {first:.2f} | {last:.2f} | {last / first:.2f}x |"
                    )
    lines += ["", "## Store bytes after the chain", ""]
    lines += [
        "The conversation's own bytes: the JSON of every input sent and every output received. SQLite: DATA_DIR "
        "after `PRAGMA wal_checkpoint(TRUNCATE)` (as the service left it, in brackets); Redis: `used_memory` over "
        "the empty server (the sum of `MEMORY USAGE` over the keys, in brackets). The ratio is of the first figure "
        f"(issue 27: within {BYTES_BAR}x).",
        "",
    ]
    lines += ["| engine | new input | target | conversation | store | ratio | items in the last turn's history |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for tag, by_target in runs.items():
        engine, size = tag.split("-")
        for name, result in by_target.items():
            if engine == "sqlite":
                store = f"{megabytes(result['data_dir_checkpointed'])} ({megabytes(result['data_dir'])} before)"
            else:
                store = f"{megabytes(stored(result))} (keys {megabytes(result['keys_memory'])}, {result['keys']} keys)"
            ratio = stored(result) / result["own_bytes"]
            own = megabytes(result["own_bytes"])
            size_text = size.upper().replace("KB", " KB")
            lines.append(
                f"| {engine} | {size_text} | {name} | {own} | {store} | {ratio:.1f}x | {result['history_items']} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help=f"a git ref (default {DEFAULT_BASELINE})")
    parser.add_argument("--targets", default="ours,baseline", help="ours,baseline (default), or either alone")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--sizes", default="4,32", help="KB of new input per turn, comma-separated")
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--model", default="chat", choices=("chat", "fixed"))
    parser.add_argument("--truncation", help='sent with every turn, e.g. "auto" (with CONTEXT_WINDOW set)')
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_TURNS} turns of 4 KB, nothing saved")
    parser.add_argument("--label", default="long-chain")
    parser.add_argument("--report", type=Path, help="only print the report of a saved run's .json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())), end="")
        return 0
    turns, sizes = (SMOKE_TURNS, [4]) if args.smoke else (args.turns, [int(s) for s in args.sizes.split(",")])
    engines = args.engines.split(",")
    wanted = args.targets.split(",")
    if unknown := set(engines) - set(ENGINES) or set(wanted) - {"ours", "baseline"}:
        raise SystemExit(f"unknown: {', '.join(sorted(unknown))}")
    WORK.mkdir(parents=True, exist_ok=True)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    targets = []
    if "baseline" in wanted:
        commit = subprocess.check_output(["git", "-C", str(harness.REPO), "rev-parse", "--short", args.baseline])
        name = f"ours@{commit.decode().strip()}"
        harness.log(f"baking the template at {args.baseline} (the baseline, {name})")
        targets.append(Target(name, stores.bake_commit(args.baseline, WORK / "baseline")))
    if "ours" in wanted:
        harness.log("baking the working tree's template")
        targets.append(Target("ours", stores.bake(harness.REPO, WORK / "head")))
    python = stores.install(targets[-1].project)  # the dependencies: the working tree's when it runs
    for target in targets:
        check_imports(python, target, args.model)
    for engine in engines:
        for size in sizes:
            run_chains(targets, python, engine, size, turns, args.model, args.truncation)
    runs = {
        f"{engine}-{size}kb": {target.name: target.results[f"{engine}-{size}kb"] for target in targets}
        for engine in engines
        for size in sizes
    }
    note = (
        f"{turns} turns per chain, one client, `previous_response_id`, model `{args.model}` "
        f"({'offline: MockChatGenerator echoes the question' if args.model == 'chat' else 'no LLM'}); "
        "a fresh server and store per chain; the targets take turns."
    )
    if os.environ.get("CONTEXT_WINDOW") or args.truncation:
        note += f" CONTEXT_WINDOW={os.environ.get('CONTEXT_WINDOW', '')}, truncation: {args.truncation}."
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": harness.git_commit(), "baseline": args.baseline}
    meta |= {"note": note, "turns": turns, "model": args.model, "truncation": args.truncation}
    meta |= {"cpus": os.cpu_count(), "context_window": os.environ.get("CONTEXT_WINDOW")}
    meta["load_average"] = {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]}
    data = {"meta": meta, "runs": runs}
    text = report(data)
    print(text)
    if not args.smoke:
        out = harness.RESULTS / f"{meta['date']}-{args.label}"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(data))
        harness.log(f"wrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        procs.stop_all()

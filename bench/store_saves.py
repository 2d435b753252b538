"""What one save costs the state store itself, its item index included: µs per `save_response`, SQLite and Redis.

    python bench/store_saves.py --baseline 38bc5d4     # the working tree against that commit (both have the store)
    python bench/store_saves.py --baseline 38bc5d4 --smoke

`stores.py` measures whole requests, where the store is a small share of the time and a shared machine's noise
is large. This one calls `save_response` in a loop, one process per target and engine, targets taking turns
within each repeat, for two shapes of response:

- `first turn`: a string input, one answer: one item to index;
- `long conversation`: the 40th turn of a chat whose client sends its earlier answers back (as the Vercel AI
  SDK does, resolved from `item_reference`), so 40 input items with ids and the answer: 41 items to index.

It reports the median µs per save (wall clock, and the CPU of the saving process; Redis runs its scripts in
redis-server, whose CPU is counted too), and ratios to the baseline in the same repeat. With the working
tree it also times `get_items` of the 40 earlier answers (one lookup, as one request's references make).
Redis is Debian's `redis-server` on a unix socket, without persistence. Results go to
bench/results/<date>-store-saves.md and .json (not with --smoke).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SHAPES = ("first turn", "long conversation")
ENGINES = ("sqlite", "redis")
EARLIER_TURNS = 40


def conversation(number: int, turns: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(response, input items) of a response that answers after `turns` earlier turns, each answer with its id."""

    def answer(name: str) -> dict[str, Any]:
        text = f"Answer {name}: " + "a sentence of an ordinary length for an answer " * 3
        content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        return {"id": f"msg_{name}", "type": "message", "role": "assistant", "status": "completed", "content": content}

    inputs: list[dict[str, Any]] = []
    for turn in range(turns):
        inputs.append({"type": "message", "role": "user", "content": f"Question {turn} of conversation {number}?"})
        inputs.append(answer(f"{number}_{turn}"))
    inputs.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And now?"}]})
    response = {"id": f"resp_{number}", "object": "response", "status": "completed", "output": [answer(f"{number}")]}
    return response, inputs


async def save_loop(engine: str, url: str | None, shape: str, saves: int) -> dict[str, float]:
    """In a worker process, with the target's package first on sys.path: time `saves` saves, then a lookup."""
    package = os.environ["BENCH_PACKAGE"]
    try:
        state = importlib.import_module(f"{package}.engine.state")
    except ImportError:  # before template 0.4's engine package, the store was the package's own `state`
        state = importlib.import_module(f"{package}.state")
    limits = state.ResponseLimits(max_count=10_000, max_bytes=1 << 30, ttl_seconds=3600)
    with tempfile.TemporaryDirectory() as data_dir:
        if engine == "redis":  # a clean database for each run (the benchmark's own redis-server)
            import redis.asyncio

            async with redis.asyncio.Redis.from_url(url) as client:
                await client.flushdb()
        bounds = [limits]
        if hasattr(state, "ConversationLimits"):  # since the Conversations API, the store takes their bounds too
            bounds.append(state.ConversationLimits(10_000, 1 << 30, 4096, 1 << 20, 3600))
        store = state.open_state_store(url, Path(data_dir), *bounds)
        turns = EARLIER_TURNS if shape == "long conversation" else 0
        records = [state.StoredResponse(*conversation(number, turns)) for number in range(saves + 20)]
        for record in records[:20]:  # opens the file, loads the scripts
            await store.save_response(record.response["id"], record)
        wall, cpu = time.perf_counter(), time.process_time()
        for record in records[20:]:
            await store.save_response(record.response["id"], record)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = {"wall_us": wall * 1e6 / saves, "cpu_us": cpu * 1e6 / saves}
        if hasattr(store, "get_items") and turns:
            wanted = [f"msg_{saves + 10}_{turn}" for turn in range(turns)]
            lookup = time.perf_counter()
            found = await store.get_items(wanted)
            result["lookup_us"] = (time.perf_counter() - lookup) * 1e6
            assert len(found) == turns, found
        await store.close()
    return result


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_target(python: Path, src: Path, engine: str, url: str | None, shape: str, saves: int, redis_pid: int) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "BENCH_PACKAGE": "haystack_service",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }
    redis_before = process_cpu_seconds(redis_pid)
    argv = [str(python), __file__, "--worker", engine, shape, str(saves), url or ""]
    finished = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if engine == "redis":
        result["cpu_us"] += (process_cpu_seconds(redis_pid) - redis_before) * 1e6 / saves
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a git ref whose template has the state store (required)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="one repeat of a few saves")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "SHAPE", "SAVES", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, shape, saves, url = args.worker
        print(json.dumps(asyncio.run(save_loop(engine, url or None, shape, int(saves)))))
        return 0
    if not args.baseline:
        parser.error("--baseline is required")

    import run as harness
    import stores

    repeats, saves = (1, 50) if args.smoke else (args.repeats, args.saves)
    work = stores.WORK / "saves"
    work.mkdir(parents=True, exist_ok=True)
    harness.log("baking the working tree's template and the baseline")
    targets = {
        "baseline": stores.bake_commit(args.baseline, work / "baseline"),
        "head": stores.bake(harness.REPO, work / "head"),
    }
    python = stores.install(targets["head"])
    redis_proc, redis_url = stores.start_redis(work)
    runs: dict[str, list[dict]] = {}
    try:
        for repeat in range(repeats):
            for engine in ENGINES:
                for shape in SHAPES:
                    for number, (name, project) in enumerate(targets.items()):
                        url = f"{redis_url}?db={number}" if engine == "redis" else None
                        result = run_target(python, project / "src", engine, url, shape, saves, redis_proc.pid)
                        runs.setdefault(f"{name}|{engine}|{shape}", []).append(result)
                        harness.log(f"repeat {repeat + 1}: {name} {engine} {shape}: {result['wall_us']:.0f} µs/save")
    finally:
        redis_proc.stop()
    text = report(runs, args.baseline, harness.git_commit(), saves, repeats)
    print(text)
    if not args.smoke:
        out = harness.RESULTS / f"{time.strftime('%Y-%m-%d')}-store-saves"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"baseline": args.baseline, "runs": runs}, indent=1))
        harness.log(f"wrote {out}.md and .json")
    return 0


def report(runs: dict[str, list[dict]], baseline: str, commit: str, saves: int, repeats: int) -> str:
    load = [round(x, 2) for x in os.getloadavg()]
    lines = [f"# Saving a response, item index included ({time.strftime('%Y-%m-%d')}, {commit} against {baseline})", ""]
    lines += [f"{repeats} repeats of {saves} saves; medians; load average at the end {load}.", ""]
    lines += [
        "| engine | shape | baseline µs/save (CPU) | head µs/save (CPU) | head/baseline (wall) | head get_items of 40 |"
    ]
    lines += ["|---|---|---|---|---|---|"]
    for engine in ENGINES:
        for shape in SHAPES:
            base, head = runs[f"baseline|{engine}|{shape}"], runs[f"head|{engine}|{shape}"]
            ratio = statistics.median(h["wall_us"] / b["wall_us"] for h, b in zip(head, base, strict=True))
            lookups = [h["lookup_us"] for h in head if "lookup_us" in h]
            lookup = f"{statistics.median(lookups):.0f} µs" if lookups else "—"
            cells = [f"{median(base, 'wall_us'):.0f} ({median(base, 'cpu_us'):.0f})"]
            cells += [f"{median(head, 'wall_us'):.0f} ({median(head, 'cpu_us'):.0f})", f"{ratio:.2f}x", lookup]
            lines.append(f"| {engine} | {shape} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def median(results: list[dict], key: str) -> float:
    return statistics.median(result[key] for result in results)


if __name__ == "__main__":
    sys.exit(main())

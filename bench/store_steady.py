"""The state store as it fills: CPU per Responses request, segment by segment, up to and past the store's bound.

    python bench/store_steady.py --baseline 2dc273a                 # SQLite, streamed, 12 segments of 5 s
    python bench/store_steady.py --baseline 2dc273a --non-streamed --segments 8
    python bench/store_steady.py --baseline 2dc273a --env RESPONSES_STORE_SIZE=1000000   # the bound never reached
    python bench/store_steady.py --baseline 2dc273a --env STATE_URL=...                  # another engine

`stores.py` reports medians over its repeats, which hides when in a run a cost appears. This one serves the working
tree and the baseline one after the other, each a fresh server and store, and sends Responses requests (store on,
concurrency 16, the same models and bodies as `stores.py`) in segments of a few seconds, printing each segment's
rate and the server's CPU per request. At ~500 requests/s the default bound (RESPONSES_STORE_SIZE, 10,000) is
reached in the third or fourth segment: from there every save also pushes an old response out. A cost that grows
with what the process or the store holds shows as a rise from segment to segment.

It found, on 2026-12-07, that the in-memory cache of recent responses (`state/recent.py`) cost 3.0-3.3 ms per
streamed request once full, where 2.2-2.4 without first turns in it. Nothing is saved: it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "targets"))

import procs  # noqa: E402
import run as harness  # noqa: E402
import stores  # noqa: E402


async def segments(name: str, project: Path, env: dict[str, str], stream: bool, count: int, seconds: float) -> None:
    target = stores.Target(name, project, None, env)
    stores.start(target, harness.OURS_VENV / "bin" / "python")
    assert target.proc is not None
    try:
        await harness.wait_ready(target.proc, lambda: stores.answers(target))
        for number in range(count):
            result = await stores.measure(target, stream, 16, 0.5, seconds, 1_000_000)
            print(
                f"{name} segment {number + 1}: {result['rate']:.0f}/s, {result['cpu_ms']:.2f} ms CPU per request, "
                f"p99 {result['p99_ms']:.0f} ms, {result['intact']}/{result['requests']} intact",
                flush=True,
            )
    finally:
        target.proc.stop()


async def run_all(args: argparse.Namespace) -> int:
    harness.log("baking the working tree's template")
    projects = {"head": stores.bake(harness.REPO, stores.WORK / "head")}
    stores.install(projects["head"])
    if args.baseline:
        harness.log(f"baking the template at {args.baseline}")
        projects = {"baseline": stores.bake_commit(args.baseline, stores.WORK / "baseline"), **projects}
    env = dict(setting.split("=", 1) for setting in args.env)
    for name, project in projects.items():
        await segments(name, project, env, not args.non_streamed, args.segments, args.seconds)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a git ref whose template has the state store, served first")
    parser.add_argument("--segments", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each segment")
    parser.add_argument("--non-streamed", action="store_true", help="non-streamed requests (default: streamed)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for both servers")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run_all(args))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

"""Instructions per plain request, counted by callgrind: a figure that does not move with the machine's load.

    python bench/instructions.py                          # after `make bench` (or run.py) baked the service
    python bench/instructions.py --baseline-src /path/to/other/bake/src --requests 640

CPU time per request moves by 10-20% from one minute to the next on a shared 2-core machine, more than most
changes on the plain path are worth. The instructions a process executes do not: two runs of the same code agree
within 0.2%. Each target is served by hypercorn under valgrind's callgrind with counting off; after a warm-up,
counting is switched on for exactly `--requests` non-streamed `fixed` chat completions (16 clients on keep-alive
connections, over loopback), then off. Counted: every thread of the server process (the event loop and the worker
that runs the pipeline), in user space; not counted: the kernel (system calls, the network) and waiting for the
interpreter's lock, which is why these ratios run lower than the CPU-time ones of run.py's `plain` scenario.

Targets: `ours` (the baked service, as run.py serves it), `floor (pipeline)` (bare Quart running the same
pipeline in a thread) and, with `--baseline-src`, `baseline`: ours with another bake's `src` first on the path
(another commit's engine, e.g. a bake of the template at an earlier revision). Needs valgrind (`apt install
valgrind`); runs serially, about a minute per target. Prints instructions per request and the ratio to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import load
import procs

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
SERVICE = WORK / "haystack_service"
VENV = WORK / "venv"
TARGETS = BENCH / "targets"
HOST = "127.0.0.1"
CLIENTS = 16


async def exact_requests(port: int, model: str, requests: int) -> int:
    """`requests` chat completions from CLIENTS clients, each on its own keep-alive connection; the errors."""
    body = load.chat_body(model, "q", False)
    errors = 0

    async def client(count: int) -> None:
        nonlocal errors
        connection = load.Connection(HOST, port)
        try:
            for _ in range(count):
                result = await load.chat_request(connection, body, stream=False, timeout=120)
                errors += result.error is not None
        finally:
            connection.close()

    await asyncio.gather(*(client(requests // CLIENTS) for _ in range(CLIENTS)))
    return errors


def wait_until_answering(port: int, model: str, deadline: float) -> None:
    """Until `model` answers: ours loads its wrappers after it starts serving."""
    while time.monotonic() < deadline:
        try:
            if asyncio.run(exact_requests(port, model, CLIENTS)) == 0:
                return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"{model} on port {port} did not answer in time")


def count(name: str, app: str, model: str, pythonpath: list[Path], requests: int) -> int:
    """Instructions per request of one target."""
    port = procs.free_port()
    env = dict(
        os.environ,
        HAYSTACK_TELEMETRY_ENABLED="False",
        WRAPPERS_PACKAGE="bench_wrappers",
        PYTHONPATH=os.pathsep.join(str(path) for path in pythonpath),
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",  # `fixed` never calls it
        OPENAI_API_KEY="unused",
        # Under valgrind everything runs ~50 times slower: the loop watch would see blocks everywhere, and report them.
        LOOP_BLOCKED_WARN_SECONDS="1000",
    )
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        log = Path(scratch) / "valgrind.log"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            f"--log-file={log}",
            str(VENV / "bin" / "hypercorn"),
            "--config",
            "hypercorn.toml",
            "--bind",
            f"{HOST}:{port}",
            app,
        ]
        server = subprocess.Popen(argv, cwd=SERVICE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_answering(port, model, time.monotonic() + 600)
            asyncio.run(exact_requests(port, model, 160))  # warm-up: imports, caches, first-call paths
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
            errors = asyncio.run(exact_requests(port, model, requests))
            subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=120)
        if errors:
            raise SystemExit(f"{name}: {errors} of {requests} requests failed")
        collected = re.search(r"Collected : (\d+)", log.read_text())
        if collected is None:
            raise SystemExit(f"{name}: callgrind reported no count (see {log})")
        return int(collected.group(1)) // requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=640, help="counted requests per target (a multiple of 16)")
    parser.add_argument("--baseline-src", type=Path, help="another bake's src directory, served as `baseline`")
    args = parser.parse_args()
    if not (VENV / "bin" / "hypercorn").exists():
        raise SystemExit("no baked service in bench/.work: run `make bench-smoke` (or bench/run.py) first")
    ours_path = [TARGETS, TARGETS / "ours"]
    targets = [("ours", "haystack_service.asgi:app", "fixed", ours_path)]
    if args.baseline_src is not None:
        if not (args.baseline_src / "haystack_service" / "engine").is_dir():
            raise SystemExit(f"{args.baseline_src} holds no haystack_service/engine: give a bake's src directory")
        targets.append(("baseline", "haystack_service.asgi:app", "fixed", [args.baseline_src, *ours_path]))
    targets.append(("floor (pipeline)", "floor_app:app", "fixed_pipeline", [BENCH, TARGETS]))
    counts: dict[str, int] = {}
    for name, app, model, pythonpath in targets:
        counts[name] = count(name, app, model, pythonpath, args.requests)
        print(f"{name:18s} {counts[name]:>12,d} instructions per request", flush=True)
    first = targets[0][0]
    for name, value in counts.items():
        if name != first:
            print(f"{first} / {name}: {counts[first] / value:.3f}x")


if __name__ == "__main__":
    main()

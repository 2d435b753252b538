"""The conversations benchmark: what a turn costs as the history grows, with `conversation` and without.

    python bench/conversations.py              # 400 turns of each kind, on SQLite and on Redis
    python bench/conversations.py --smoke      # 20 turns: proves the harness works

One client sends turns one after the other (concurrency 1, so a turn's latency is the service's and the
store's) to the `fixed` model, which answers at once without an LLM: what grows with the history is all the
store's. Three kinds of chain, taking turns with each other so that a busy moment on the machine weighs on all:

- `previous_response_id` (the baseline): each turn names the last response, whose stored history it reads,
  and stores the whole history again with its own response;
- `conversation`: each turn reads the conversation's items and appends two, and stores its response (with the
  history it read, as every stored response keeps);
- `conversation, store: false`: the same without storing the response: reading the items and appending two.

The report gives the median latency of the first, middle and last 20 turns of each, and the ratio to the
baseline on the same engine. Redis is Debian's `redis-server` on a unix socket, without persistence.
Results go to bench/results/<date>-conversations.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import procs  # noqa: E402
import run as harness  # noqa: E402
import stores  # noqa: E402

KINDS = ("previous_response_id", "conversation", "conversation, store: false")
WINDOW = 20  # turns per reported median


class Chain:
    """One chain of turns against one service: it knows what the next turn must name."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind = kind
        self.http = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        self.previous: str | None = None
        self.conversation: str | None = None
        if kind != "previous_response_id":
            self.conversation = self.post("/v1/conversations", {})["id"]

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.http.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        reply = self.http.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{self.kind}: {reply.status} {data[:300]!r}")
        return json.loads(data)

    def turn(self, number: int) -> float:
        """Seconds one turn took, the answer read whole."""
        body: dict[str, Any] = {"model": "fixed", "input": f"Turn {number}: keep this conversation going, please."}
        if self.conversation is not None:
            body["conversation"] = self.conversation
            body["store"] = self.kind == "conversation"
        elif self.previous is not None:
            body["previous_response_id"] = self.previous
        started = time.perf_counter()
        response = self.post("/v1/responses", body)
        elapsed = time.perf_counter() - started
        self.previous = response["id"]
        return elapsed

    def history_length(self) -> int:
        """Items the next turn will read: checks that the chain really grew."""
        if self.conversation is None:
            return len(self.get(f"/v1/responses/{self.previous}/input_items")["data"]) + 1  # and its output
        path = f"/v1/conversations/{self.conversation}/items?limit=100"
        page = self.get(path)
        count = len(page["data"])
        while page["has_more"]:
            page = self.get(f"{path}&after={page['last_id']}")
            count += len(page["data"])
        return count

    def get(self, path: str) -> dict[str, Any]:
        self.http.request("GET", path)
        return json.loads(self.http.getresponse().read())


def windows(turns: int) -> list[tuple[int, int]]:
    middle = turns // 2 - WINDOW // 2
    return [(0, WINDOW), (middle, middle + WINDOW), (turns - WINDOW, turns)]


def report(latencies: dict[str, dict[str, list[float]]], lengths: dict[str, dict[str, int]], meta: dict) -> str:
    turns = meta["turns"]
    spans = windows(turns)
    lines = [f"# Conversations benchmark ({meta['date']}, {meta['commit']})", "", meta["note"], ""]
    load = meta["load_average"]
    lines += [f"{meta['cpus']} CPUs; load average {load['start']} at the start, {load['end']} at the end.", ""]
    header = " | ".join(f"turns {start + 1}-{end} ms" for start, end in spans)
    lines += [f"| engine | chain | {header} | items read by the last turn |", "|---|---|" + "---|" * (len(spans) + 1)]
    for engine, by_kind in latencies.items():
        baseline = by_kind[KINDS[0]]
        for kind, values in by_kind.items():
            cells = []
            for start, end in spans:
                median = statistics.median(values[start:end]) * 1000
                ratio = median / (statistics.median(baseline[start:end]) * 1000)
                cells.append(f"{median:.2f} ({ratio:.2f}x)")
            lines.append(f"| {engine} | {kind} | " + " | ".join(cells) + f" | {lengths[engine][kind]} |")
    lines += ["", f"A ratio is to `{KINDS[0]}` on the same engine, in the same turns."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--smoke", action="store_true", help="20 turns, nothing saved")
    parser.add_argument("--label", default="conversations")
    args = parser.parse_args(argv)
    turns = WINDOW * 3 if args.smoke else max(args.turns, WINDOW * 3)
    stores.WORK.mkdir(parents=True, exist_ok=True)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    harness.log("baking the working tree's template")
    project = stores.bake(harness.REPO, stores.WORK / "head")
    python = stores.install(project)
    redis_proc, redis_url = stores.start_redis(stores.WORK)
    targets = [stores.Target("sqlite", project, None), stores.Target("redis", project, None, {"STATE_URL": redis_url})]
    latencies: dict[str, dict[str, list[float]]] = {t.name: {kind: [] for kind in KINDS} for t in targets}
    lengths: dict[str, dict[str, int]] = {t.name: {} for t in targets}
    try:
        for target in targets:
            stores.start(target, python)
        for target in targets:
            assert target.proc is not None
            asyncio.run(harness.wait_ready(target.proc, lambda t=target: stores.answers(t)))
        for target in targets:
            chains = [Chain(kind, target.port) for kind in KINDS]
            for number in range(turns):
                for chain in chains:  # taking turns
                    latencies[target.name][chain.kind].append(chain.turn(number))
            for chain in chains:
                lengths[target.name][chain.kind] = chain.history_length()
            harness.log(f"{target.name}: {turns} turns of each kind")
    finally:
        for target in targets:
            if target.proc is not None:
                target.proc.stop()
        redis_proc.stop()
    note = f"{turns} turns of each chain on each engine, one client, the `fixed` model (no LLM); medians of {WINDOW} turns."
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": harness.git_commit(), "note": note, "turns": turns}
    meta["load_average"] = {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]}
    meta["cpus"] = os.cpu_count()
    text = report(latencies, lengths, meta)
    print(text)
    if not args.smoke:
        out = harness.RESULTS / f"{meta['date']}-{args.label}"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, "latencies": latencies, "lengths": lengths}))
        harness.log(f"wrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        procs.stop_all()

"""Turns a run's results into the Markdown tables printed at the end, written next to the JSON and
published in docs/benchmark.md.

Every row says which way is better; the ratio columns are always ours divided by the other
target, so for a "lower is better" row a ratio under 1 means ours leads. A run with a baseline
(`run.py --baseline REV`: the template at another revision) has its column after ours, and an
ours/<baseline> ratio: the change's before/after.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HIGHER, LOWER, INFO = "higher", "lower", "info"
# Every scenario and target, by the names run.py takes on its command line: a run with fewer is partial.
SCENARIOS = ("rps", "streaming", "slow", "cold", "cancel")
TARGET_NAMES = ("ours", "hayhooks", "floor", "upstream")
# Scenario 3's extra columns: ours serving sync pipelines that take other paths than a lone LLM.
STEPPED = "ours (step before the LLM)"
THREADED = "ours (threaded)"
THREADED_POOL = "ours (threaded, pool 1000)"
ARROWS = {HIGHER: "↑", LOWER: "↓", INFO: ""}
DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmark.md"


@dataclass
class Row:
    label: str
    better: str
    values: dict[str, float | None]
    unit_format: str = "{:.0f}"
    # Derived rows (differences) repeat another row: no ratios, and not counted in the lead check.
    ratios: bool = True
    # False for a total (memory, CPU seconds) of runs that did unequal work: shown, not counted in the lead check.
    compared: bool = True


@dataclass
class Table:
    title: str
    note: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    short: str = ""  # how the bar check names this table
    baseline: str | None = None  # the baseline's column (`ours@<commit>`), when the run had one
    ratios_to: tuple[str, ...] = ("hayhooks", "floor")  # the columns an ours/<column> ratio is given for


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else spec.format(value)


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or other is None or other == 0:
        return "—"
    return f"{ours / other:.2f}"


def leads(row: Row, other: str = "hayhooks") -> bool | None:
    """Whether ours is ahead of `other` on this row; None for a tie, a derived row, or a missing value."""
    ours, theirs = row.values.get("ours"), row.values.get(other)
    if row.better == INFO or not row.ratios or not row.compared or ours is None or theirs is None or ours == theirs:
        return None
    return ours > theirs if row.better == HIGHER else ours < theirs


def render_table(table: Table) -> str:
    ratio_targets = [name for name in (*table.ratios_to, table.baseline) if name and name in table.columns]
    head = ["", *table.columns, *[f"ours/{name}" for name in ratio_targets]]
    lines = [f"### {table.title}", "", table.note, "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for row in table.rows:
        cells = [f"{row.label} {ARROWS[row.better]}".strip()]
        cells += [_fmt(row.values.get(name), row.unit_format) for name in table.columns]
        for name in ratio_targets:
            cells.append(_ratio(row.values.get("ours"), row.values.get(name)) if row.ratios else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def build_tables(results: dict[str, Any]) -> list[Table]:
    scenarios = results.get("scenarios", {})
    baseline = _get(results, "meta", "baseline", "label")
    tables: list[Table] = []
    if rps := scenarios.get("rps"):
        tables += _rps_tables(rps, baseline)
    if streaming := scenarios.get("streaming"):
        tables.append(_streaming_table(streaming, baseline))
    if slow := scenarios.get("slow_streams"):
        tables.append(_slow_table(slow, baseline))
    if cold := scenarios.get("cold_start"):
        tables.append(_cold_table(cold, baseline))
    if cancel := scenarios.get("cancellation"):
        tables.append(_cancel_table(cancel, baseline))
    if (plain := scenarios.get("plain_path")) and "error" not in plain:
        tables.append(_plain_table(plain, baseline))
    return tables


def _with_baseline(columns: list[str], baseline: str | None) -> list[str]:
    """The baseline's column goes right after ours: it serves the same models as ours."""
    if baseline is None:
        return columns
    at = columns.index("ours") + 1
    return [*columns[:at], baseline, *columns[at:]]


def _values(block: dict[str, Any], columns: list[str], metric: str) -> dict[str, float | None]:
    return {name: _get(block, name, metric) for name in columns}


def _rps_tables(rps: dict[str, Any], baseline: str | None) -> list[Table]:
    notes = {
        "fixed": "Sync wrapper, Haystack pipeline with a fixed short answer (no upstream): pure serving overhead. "
        "floor = bare Quart returning the same bytes; floor (pipeline) = bare Quart running the same pipeline in a "
        "thread, i.e. Haystack's own share.",
        "llm": "Sync wrapper calling the upstream (instant short answer) through OpenAIChatGenerator, not streamed. "
        "floor = bare Quart running the same pipeline in a thread; upstream = the upstream called directly.",
    }
    tables = []
    for model, by_concurrency in rps.items():
        if not isinstance(by_concurrency, dict) or "error" in by_concurrency:
            continue
        columns = ["ours", "hayhooks", "floor"] + (["upstream"] if model == "llm" else ["floor (pipeline)"])
        columns = _with_baseline(columns, baseline)
        table = Table(
            f"1. Non-streaming requests per second: `{model}`",
            notes.get(model, ""),
            columns,
            short=f"1 {model}",
            baseline=baseline,
        )
        for key, block in by_concurrency.items():
            c = key.removeprefix("c")
            table.rows.append(Row(f"req/s, c={c}", HIGHER, _values(block, columns, "rps")))
        for key, block in by_concurrency.items():
            c = key.removeprefix("c")
            table.rows.append(Row(f"p99 latency ms, c={c}", LOWER, _values(block, columns, "p99_ms"), "{:.1f}"))
        for key, block in by_concurrency.items():
            c = key.removeprefix("c")
            values = _values(block, columns, "cpu_ms_per_request")
            table.rows.append(Row(f"server CPU ms/request, c={c}", LOWER, values, "{:.2f}"))
        tables.append(table)
    return tables


def _streaming_table(streaming: dict[str, Any], baseline: str | None) -> Table:
    columns = _with_baseline(["ours", "ours (Haystack generator)", "hayhooks", "floor", "raw", "upstream"], baseline)
    table = Table(
        "2. Streaming: time to first token and throughput (`async_stream`, `agent_stream`)",
        "Async wrapper streaming the upstream's answer (as fast as it can) through the template's generator "
        "(`llm.make_chat_generator`, which parses the stream itself); ours (Haystack generator) = the same wrapper "
        "in the same process with Haystack's plain OpenAIChatGenerator, which hayhooks and the floor use. "
        "floor = that Haystack code (`Pipeline.stream`) in a bare Quart SSE loop; raw = bare Quart relaying "
        "the upstream with httpx, no Haystack; upstream = called directly. chunks/s counts upstream chunks "
        "delivered per second (servers may merge chunks; the text is checked intact). Rows marked Agent: the "
        "same with an Agent (one tool, never called: one LLM step) instead of the lone LLM; its floor runs "
        "`Agent.run_async` in the same bare loop, and raw has no Agent to run.",
        columns,
        short="2 streaming",
        baseline=baseline,
    )
    for key, block in streaming.items():
        if not isinstance(block, dict) or "error" in block:
            continue
        c = _streaming_case(key)
        p50 = _values(block, columns, "ttft_p50_ms")
        table.rows.append(Row(f"TTFT p50 ms, c={c}", LOWER, p50, "{:.2f}"))
        table.rows.append(Row(f"TTFT p99 ms, c={c}", LOWER, _values(block, columns, "ttft_p99_ms"), "{:.2f}"))
        for base in ("floor", "upstream"):
            if p50.get(base) is not None:
                over = {n: (v - p50[base]) if v is not None else None for n, v in p50.items()}
                table.rows.append(Row(f"TTFT p50 over {base} ms, c={c}", LOWER, over, "{:+.2f}", ratios=False))
        table.rows.append(Row(f"chunks/s, c={c}", HIGHER, _values(block, columns, "chunks_per_s")))
        values = _values(block, columns, "cpu_ms_per_stream")
        table.rows.append(Row(f"server CPU ms/stream, c={c}", LOWER, values, "{:.1f}"))
    return table


def _streaming_case(key: str) -> str:
    """A case's label in the rows: c64 -> "64"; c1-history40 -> "1, 40-message chat"; c1-agent -> "1, Agent";
    c64-paced50 -> "64, paced at 50 tokens/s"."""
    key, agent, _ = key.partition("-agent")
    key, _, pace = key.partition("-paced")
    concurrency, _, history = key.removeprefix("c").partition("-history")
    label = f"{concurrency}, {history}-message chat" if history else concurrency
    label += f", paced at {pace} tokens/s" if pace else ""
    return f"{label}, Agent" if agent else label


def _slow_table(slow: dict[str, Any], baseline: str | None) -> Table:
    settings = slow.get("settings", {})
    n = settings.get("streams", "?")
    columns = _with_baseline(["ours", STEPPED, THREADED, THREADED_POOL, "hayhooks", "floor", "upstream"], baseline)
    table = Table(
        "3. Many slow streams",
        f"{n} concurrent streams of {settings.get('seconds', '?')} s (upstream at {settings.get('rate', '?')} tokens/s), "
        f"all opened at once, each given {settings.get('deadline', '?')} s. Memory is the peak RSS of the server's "
        "process tree (ours and the floor serve from one hypercorn process, `workers = 0`). Ours streams a sync "
        "wrapper's pipeline on the event loop when its LLM streams asynchronously: ours = a lone LLM; "
        f"{STEPPED} = a sync step before it. Ours (threaded) = the same with an LLM component that streams only "
        "synchronously, which keeps the run in a pool thread per stream (default pool of 32: the rest queue); ours "
        "(threaded, pool 1000) = the same with THREAD_POOL_SIZE=1000." + _saturation_note(slow, n),
        columns,
        short="3 slow",
        baseline=baseline,
    )
    for kind in ("async", "sync"):
        block = slow.get(kind)
        if not isinstance(block, dict):
            continue
        table.rows.append(Row(f"{kind}: intact of {n}", HIGHER, _values(block, columns, "intact")))
        table.rows.append(Row(f"{kind}: got a first token", HIGHER, _values(block, columns, "started")))
        table.rows.append(Row(f"{kind}: TTFT p50 ms", LOWER, _values(block, columns, "ttft_p50_ms"), "{:.1f}"))
        table.rows.append(Row(f"{kind}: TTFT p99 ms", LOWER, _values(block, columns, "ttft_p99_ms"), "{:.1f}"))
        table.rows.append(Row(f"{kind}: stream p50 s", LOWER, _values(block, columns, "stream_p50_s"), "{:.1f}"))
        # A server that holds every stream to the end needs more memory and CPU in all than one that drops them:
        # such totals compare the targets only when both delivered the same streams.
        intact = [_get(block, name, "intact") for name in ("ours", "hayhooks")]
        same_work = intact[0] == intact[1] or None in intact
        unequal = "" if same_work else f" (not compared: {intact[0]} vs {intact[1]} intact)"
        values = _values(block, columns, "peak_rss_mb")
        table.rows.append(Row(f"{kind}: peak RSS MB{unequal}", LOWER, values, compared=same_work))
        values = _values(block, columns, "cpu_s")
        table.rows.append(Row(f"{kind}: server CPU s{unequal}", LOWER, values, "{:.1f}", compared=same_work))
        values = _values(block, columns, "cpu_ms_per_chunk")
        table.rows.append(Row(f"{kind}: server CPU ms per chunk", LOWER, values, "{:.3f}"))
        values = _values(block, columns, "listen_overflows")
        table.rows.append(Row(f"{kind}: connections dropped at accept", LOWER, values, ratios=False))
    return table


def _saturation_note(slow: dict[str, Any], n: Any) -> str:
    """When the upstream called directly cannot hold the load either, the machine is the limit, not the targets."""
    direct = _get(slow, "async", "upstream") or {}
    nominal = _get(slow, "settings", "seconds") or 0
    intact, took = direct.get("intact"), direct.get("stream_p50_s")
    if intact is None or (intact == n and (took is None or took <= 1.5 * nominal)):
        return ""
    return (
        f" **Note: called directly, the upstream itself delivered {intact}/{n} streams intact, taking"
        f" {took or 0:.0f} s each instead of {nominal:.0f} s: at this rate the machine (upstream and load generator)"
        " is saturated, so this table measures the machine more than the targets. Rerun with a lower"
        " `--slow-rate`.**"
    )


def _cold_table(cold: dict[str, Any], baseline: str | None) -> Table:
    columns = _with_baseline(["ours", "hayhooks", "floor"], baseline)
    table = Table(
        "4. Cold start",
        "From process start to the first answered request (`fixed`), and the server's RSS when idle right after.",
        columns,
        short="4 cold",
        baseline=baseline,
    )
    table.rows.append(Row("seconds to first answer", LOWER, _values(cold, columns, "seconds"), "{:.2f}"))
    table.rows.append(Row("idle RSS MB", LOWER, _values(cold, columns, "idle_rss_mb")))
    return table


def _cancel_table(cancel: dict[str, Any], baseline: str | None) -> Table:
    settings = cancel.get("settings", {})
    columns = _with_baseline(["ours", "hayhooks", "floor", "upstream"], baseline)
    table = Table(
        "5. Cancellation",
        f"{settings.get('streams', '?')} clients per case hang up after the first token (upstream at "
        f"{settings.get('rate', '?')} tokens/s); {settings.get('settle', '?')} s later the upstream reports how many "
        "tokens it still sent after each hang-up, and whether the stream is still open. "
        f"{_rounds(settings)}",
        columns,
        short="5 cancel",
        baseline=baseline,
    )
    for kind in ("async", "sync"):
        block = cancel.get(kind)
        if not isinstance(block, dict):
            continue
        table.rows.append(
            Row(f"{kind}: tokens after hang-up, median", LOWER, _values(block, columns, "tokens_after_p50"))
        )
        table.rows.append(Row(f"{kind}: tokens after hang-up, max", LOWER, _values(block, columns, "tokens_after_max")))
        table.rows.append(Row(f"{kind}: upstream streams still open", LOWER, _values(block, columns, "still_open")))
        values = _values(block, columns, "stop_latency_p50_ms")
        table.rows.append(Row(f"{kind}: upstream stopped after, p50 ms", LOWER, values, "{:.0f}"))
    return table


def _plain_table(plain: dict[str, Any], baseline: str | None) -> Table:
    settings = plain.get("settings", {})
    columns = _with_baseline(["ours", "hayhooks", "floor", "floor (pipeline)"], baseline)
    columns = [c for c in columns if isinstance(plain.get(c), dict)]
    table = Table(
        "The plain path: server CPU per request (`fixed`, not streamed)",
        f"Every per-request cost of the serving layer around a pipeline that does almost nothing, at concurrency "
        f"{settings.get('concurrency', '?')}: the targets take turns over {settings.get('rounds', '?')} rounds of "
        f"{settings.get('requests', '?')} requests; medians. CPU per request is what a shared machine measures "
        "steadily; requests/s moves with whatever else runs. floor = bare Quart returning the same bytes; floor "
        "(pipeline) = bare Quart running the same Haystack pipeline in a thread: ours over it is the serving layer's own "
        "share.",
        columns,
        short="plain",
        baseline=baseline,
        ratios_to=("hayhooks", "floor", "floor (pipeline)"),
    )
    table.rows.append(Row("server CPU ms/request", LOWER, _values(plain, columns, "cpu_ms_per_request"), "{:.3f}"))
    table.rows.append(Row("req/s", INFO, _values(plain, columns, "rps")))
    return table


def _rounds(settings: dict[str, Any]) -> str:
    """Runs saved before the rounds were repeated have no `rounds`: they had one."""
    rounds = settings.get("rounds", 1)
    if rounds == 1:
        return "One round per case."
    return f"{rounds} rounds, the targets taking turns; every row is over the hang-ups of all rounds."


def bar_checks(results: dict[str, Any], tables: list[Table]) -> list[tuple[str, bool | None, str]]:
    """The issue's bar, checked on this run: (what, passed or None when not measured, the numbers)."""
    checks: list[tuple[str, bool | None, str]] = []
    behind = [f"[{t.short}] {r.label}" for t in tables for r in t.rows if leads(r) is False]
    compared = sum(1 for t in tables for r in t.rows if leads(r) is not None)
    detail = f"{compared - len(behind)}/{compared} rows ahead (ties left out)"
    detail += f"; behind on {', '.join(behind)}" if behind else ""
    checks.append(("ahead of hayhooks on every compared row", not behind if compared else None, detail))

    c64 = _get(results, "scenarios", "rps", "fixed", "c64") or {}
    ours, theirs, floor = (_get(c64, n, "rps") for n in ("ours", "hayhooks", "floor"))
    if ours is not None and theirs:
        checks.append(("fixed req/s at c=64 >= 1.5x hayhooks", ours >= 1.5 * theirs, f"{ours / theirs:.2f}x"))
    if ours is not None and floor:
        checks.append(("fixed req/s at c=64 >= 0.8x floor", ours >= 0.8 * floor, f"{ours / floor:.2f}x"))

    for key, block in (_get(results, "scenarios", "streaming") or {}).items():
        if not isinstance(block, dict):
            continue
        # The floor runs Haystack's plain generator: compare like with like, so the check measures serving alone.
        column = "ours (Haystack generator)" if isinstance(block.get("ours (Haystack generator)"), dict) else "ours"
        ours, floor = _get(block, column, "chunks_per_s"), _get(block, "floor", "chunks_per_s")
        if ours is not None and floor:
            what = f"streaming chunks/s {key} >= 0.9x floor ({column})"
            checks.append((what, ours >= 0.9 * floor, f"{ours / floor:.2f}x"))
        ours, floor = _get(block, column, "ttft_p50_ms"), _get(block, "floor", "ttft_p50_ms")
        if ours is not None and floor is not None:
            checks.append((f"TTFT p50 {key} < floor + 1 ms ({column})", ours - floor < 1.0, f"{ours - floor:+.2f} ms"))

    slow = _get(results, "scenarios", "slow_streams") or {}
    n = _get(slow, "settings", "streams")
    for kind, column in (("async", "ours"), ("sync", "ours"), ("sync", STEPPED), ("sync", THREADED_POOL)):
        intact = _get(slow, kind, column, "intact")
        if intact is not None and n:
            checks.append((f"slow streams, {kind} ({column}): all intact", intact == n, f"{intact}/{n}"))
    return checks


def _subset(meta: dict[str, Any]) -> str:
    """What a partial run left out, for its title: "; scenarios streaming; targets ours, floor"."""
    parts = []
    if (scenarios := meta.get("scenarios")) and len(scenarios) < len(SCENARIOS):
        parts.append(f"scenarios {', '.join(scenarios)}")
    if (targets := meta.get("targets")) and not set(TARGET_NAMES) <= set(targets):
        label = _get(meta, "baseline", "label")
        parts.append(f"targets {', '.join(label if t == 'baseline' and label else t for t in targets)}")
    return "".join(f"; {part}" for part in parts)


def render(results: dict[str, Any]) -> str:
    tables = build_tables(results)
    meta = results.get("meta", {})
    lines = [
        f"## Benchmark: {meta.get('date', '?')} ({meta.get('mode', '?')}{_subset(meta)})",
        "",
        f"{meta.get('cpus', '?')} CPUs, load average {meta.get('loadavg_start', '?')} at start; "
        f"template commit {meta.get('commit', '?')}; Haystack {meta.get('versions', {}).get('haystack-ai', '?')}, "
        f"hayhooks {meta.get('versions', {}).get('hayhooks', '?')}. Medians over {meta.get('repeats', '?')} "
        "repeats; load generator, servers and upstream share the machine, so treat the numbers as indicative "
        "and the ratios as the result.",
        "",
    ]
    if baseline := meta.get("baseline"):
        lines += [_baseline_note(meta, baseline, results.get("scenarios", {})), ""]
    if meta.get("mode") == "smoke":
        lines += [
            "**Smoke run: a few requests per scenario, to prove the harness works. The numbers mean nothing**, "
            "but for the plain path's CPU per request, measured over thousands of requests: informational, never "
            "a pass or fail.",
            "",
        ]
    lines += [render_table(table) for table in tables]
    lines += ["### The bar", "", "| check | result | numbers |", "|---|---|---|"]
    for what, passed, detail in bar_checks(results, tables):
        mark = "—" if passed is None else ("pass" if passed else "FAIL")
        lines.append(f"| {what} | {mark} | {detail} |")
    return "\n".join(lines) + "\n"


def _baseline_note(meta: dict[str, Any], baseline: dict[str, Any], scenarios: dict[str, Any]) -> str:
    """Who the baseline is, how to read its ratio, and how busy the shared machine was meanwhile."""
    label = baseline.get("label", "?")
    note = (
        f"**Before/after in one run**: `{label}` is the template at {baseline.get('commit', '?')} "
        f"(`--baseline {baseline.get('rev', '?')}`), baked and served as ours is, with the same bench wrappers, "
        f"the targets interleaved within every repeat. ours/{label} is after/before: over 1 on a ↑ row, under 1 "
        "on a ↓ row, means the change made it better."
    )
    ours_versions = meta.get("versions", {})
    differ = [
        f"{name} {version} (ours {ours_versions.get(name, '?')})"
        for name, version in sorted(baseline.get("versions", {}).items())
        if version != ours_versions.get(name)
    ]
    note += f" Its venv differs from ours in: {', '.join(differ)}." if differ else " Same library versions as ours."
    at_scenarios = ", ".join(
        f"{name} {block['loadavg_start'].split()[0]}" for name, block in scenarios.items() if "loadavg_start" in block
    )
    note += f" Load average (1 min): {meta.get('loadavg_start', '?').split()[0]} at start"
    note += f" ({at_scenarios} as each scenario started)" if at_scenarios else ""
    return note + f", {meta.get('loadavg_end', '?').split()[0]} at the end."


# docs/benchmark.md shows one run's report between these two lines; `publish` rewrites what is between them.
PUBLISHED_BEGIN = "<!-- Written by `python bench/report.py --publish <run>.json`: do not edit by hand. -->"
PUBLISHED_END = "<!-- End of the published report. -->"


def published_section(results: dict[str, Any], source: str) -> str:
    """What docs/benchmark.md shows for a run: where its numbers are, then its report, a heading level down."""
    report = "".join(f"#{line}" if line.startswith("##") else line for line in render(results).splitlines(True))
    return f"{PUBLISHED_BEGIN}\n\nThe raw numbers: [{source}](../bench/{source}).\n\n{report}{PUBLISHED_END}"


def publish(page: Path, results_path: Path) -> None:
    """Put the report of `results_path` into the docs page, replacing the one there."""
    results = json.loads(results_path.read_text())
    if _get(results, "meta", "baseline"):
        raise SystemExit(f"{results_path} is a run with a baseline, not the standard full run: not published")
    text = page.read_text()
    if PUBLISHED_BEGIN not in text or PUBLISHED_END not in text:
        raise SystemExit(f"{page} has lost its markers for the published report")
    before, rest = text.split(PUBLISHED_BEGIN, 1)
    after = rest.split(PUBLISHED_END, 1)[1]
    source = results_path.resolve().relative_to(Path(__file__).resolve().parent).as_posix()
    section = published_section(results, source)
    page.write_text(before + section + after)


def main(argv: list[str] | None = None) -> None:
    """Re-render saved runs (after a change to this file), or publish one in the docs.

    `python bench/report.py results/X.json` rewrites results/X.md;
    `python bench/report.py --publish results/X.json` also puts its report into docs/benchmark.md.
    """
    args = list(argv if argv is not None else sys.argv[1:])
    to_docs = "--publish" in args
    for name in (arg for arg in args if arg != "--publish"):
        path = Path(name)
        path.with_suffix(".md").write_text(render(json.loads(path.read_text())))
        print(f"wrote {path.with_suffix('.md')}")
        if to_docs:
            publish(DOCS_PAGE, path)
            print(f"published it in {DOCS_PAGE}")


if __name__ == "__main__":
    main()

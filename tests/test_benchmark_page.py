"""docs/benchmark.md shows the report of the run it names, as bench/report.py renders that run today."""

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

from baking import TEMPLATE_DIR

PAGE = TEMPLATE_DIR / "docs" / "benchmark.md"
BENCH = TEMPLATE_DIR / "bench"


def load_report() -> ModuleType:
    """bench/report.py as a module: the bench is not a package, and the tests must not need its folder on the path."""
    spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def named_run(page_text: str) -> str:
    match = re.search(r"The raw numbers: \[(results/[^\]]+\.json)\]", page_text)
    assert match, "docs/benchmark.md names no run"
    return match.group(1)


def test_the_page_shows_its_run_as_rendered_today() -> None:
    report = load_report()
    page = PAGE.read_text()
    source = named_run(page)
    results = json.loads((BENCH / source).read_text())
    assert results["meta"]["mode"] == "full", "the page must show a full run, not a smoke run"
    assert report.published_section(results, source) in page, (
        "docs/benchmark.md is out of date: python bench/report.py --publish bench/" + source
    )


def test_publishing_replaces_the_report_and_keeps_the_rest(tmp_path: Path) -> None:
    report = load_report()
    page = tmp_path / "benchmark.md"
    shutil.copy(PAGE, page)
    shown = named_run(page.read_text())
    other = next(p for p in sorted((BENCH / "results").glob("*.json")) if f"results/{p.name}" != shown)
    before = page.read_text().split(report.PUBLISHED_BEGIN)[0]

    report.publish(page, other)

    text = page.read_text()
    assert named_run(text) == f"results/{other.name}"
    assert text.startswith(before), "the hand-written part above the report changed"
    assert text.count(report.PUBLISHED_BEGIN) == 1 and text.count(report.PUBLISHED_END) == 1
    assert f"results/{other.name}" in text and shown not in text

"""Moving a project baked before 0.4 (docs/keeping-up.md, "A project baked before 0.4"): the page's `sed` line,
run on the wrappers that release shipped, leaves imports that all resolve in the engine's public surface.

The wrappers are read from git at the last commit of the old layout, so the test covers what users really have.
"""

import ast
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from baking import TEMPLATE_DIR

# The last commit of the template before the engine package (0.4.0): its wrappers import the old flat modules.
LAST_OLD_LAYOUT = "dd65fdb"
PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
OLD_WRAPPERS = "{{cookiecutter.project_slug}}/src/{{cookiecutter.project_slug}}/wrappers"
KEEPING_UP = PROJECT / "docs" / "keeping-up.md"
ENGINE_SURFACE = PROJECT / "src" / "{{cookiecutter.project_slug}}" / "engine" / "__init__.py"
USER_MODULES = {"llm", "streaming"}  # the user's own files: their imports stay as they are


def public_names() -> set[str]:
    """The keys of the engine's PUBLIC dict, read from its source (the template test venv has no Haystack)."""
    tree = ast.parse(ENGINE_SURFACE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PUBLIC" for t in node.targets):
            return {key.value for key in node.value.keys if isinstance(key, ast.Constant)}  # type: ignore[union-attr]
    raise AssertionError("engine/__init__.py has no PUBLIC dict")


def documented_sed() -> list[str]:
    """The page's `sed` command, as argv, with its file argument left for the test to give."""
    lines = [line for line in KEEPING_UP.read_text(encoding="utf-8").splitlines() if line.startswith("sed -i -E ")]
    assert len(lines) == 1, "keeping-up.md shows one sed line for the imports"
    argv = shlex.split(lines[0].split("#")[0])
    assert argv[-1].endswith("wrappers/*.py"), argv
    return argv[:-1]


def old_wrappers(tmp_path: Path) -> list[Path]:
    """The example wrappers as 0.3 shipped them, written into tmp_path."""
    try:
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{LAST_OLD_LAYOUT}:{OLD_WRAPPERS}"],
            cwd=TEMPLATE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except subprocess.CalledProcessError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"commit {LAST_OLD_LAYOUT} is not in this clone's history")
    paths = []
    for name in listing:
        if name.endswith(".py") and name != "__init__.py":
            source = subprocess.run(
                ["git", "show", f"{LAST_OLD_LAYOUT}:{OLD_WRAPPERS}/{name}"],
                cwd=TEMPLATE_DIR,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            path = tmp_path / name
            path.write_text(source, encoding="utf-8")
            paths.append(path)
    assert len(paths) >= 5, listing
    return paths


def test_the_documented_sed_moves_every_old_import_to_the_engine_surface(tmp_path: Path) -> None:
    wrappers = old_wrappers(tmp_path)
    subprocess.run([*documented_sed(), *map(str, wrappers)], check=True)
    public = public_names()
    problems = []
    for path in wrappers:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level != 2:
                continue
            names = [alias.name for alias in node.names]
            if node.module == "engine":
                problems += [f"{path.name}: {name} is not public" for name in names if name not in public]
            elif node.module not in USER_MODULES:
                problems.append(f"{path.name}: from ..{node.module} import {', '.join(names)} is left")
    assert not problems, problems
    assert any(re.search(r"^from \.\.engine import ", p.read_text(), re.M) for p in wrappers)

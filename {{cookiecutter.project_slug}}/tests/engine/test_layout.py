"""The layout's rules, which keep a baked project able to take the template's updates (docs/keeping-up.md).

- The engine never imports a user module (`wrappers`, `streaming`, `llm`, or the package's own `__init__`):
  a user who edits or deletes one must not break the engine.
- Importing the package, or any module of the engine, has no side effects: no `.env` read, no directory made
  (the entry points do both, in `engine/startup.py`).
- The public surface, `engine/__init__.py`: every name resolves, its `TYPE_CHECKING` block imports exactly
  those names, and a name in `MOVED` still works, with a `DeprecationWarning`.
- The examples (yours in `wrappers/`, `streaming.py`, `llm.py`, and the frozen copies in `examples/`) and the
  docs import the engine through the surface alone, never from a module below it, which may change in any
  release: a failure here in a file of yours names an import to change before it breaks on an update.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import PACKAGE, PROJECT_DIR, TESTS_DIR

SOURCE = PROJECT_DIR / "src" / PACKAGE
ENGINE = f"{PACKAGE}.engine"
ENGINE_FILES = sorted((SOURCE / "engine").rglob("*.py"))
# The wrapper code the engine's tests own: the frozen copies of the examples. The user's own files are theirs to
# write as they like (the template checks the examples it ships in its own tests).
WRAPPER_CODE = sorted((TESTS_DIR / "examples").glob("*.py"))
DOCS = sorted([PROJECT_DIR / "README.md", *(PROJECT_DIR / "docs").glob("*.md")])
MARKER = "LAYOUT_TEST_READ_DOTENV"


def module_name(path: Path, root: Path, package: str) -> str:
    """The dotted name of the module at `path`, inside `package` whose folder is `root`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in the source of module `name`, relative ones resolved.

    `from . import x` counts as importing `<package>.x`: x may be a module, and a name from the package's
    `__init__` is no better.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if node.module is None:
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def is_user_module(module: str) -> bool:
    """Anything of the package outside the engine: wrappers, streaming, llm, the entry points, its __init__."""
    inside_package = module == PACKAGE or module.startswith(f"{PACKAGE}.")
    return inside_package and not (module == ENGINE or module.startswith(f"{ENGINE}."))


def test_the_import_check_catches_what_it_should() -> None:
    """The resolution the next test relies on, on imports it must catch and imports it must let pass."""
    source = "from ... import llm\nfrom ...streaming import x\nfrom .sibling import y\nfrom .. import z\nimport a.b\n"
    resolved = [module for _, module in imported_modules(source, f"{ENGINE}.runs.example")]
    assert resolved == [f"{PACKAGE}.llm", f"{PACKAGE}.streaming", f"{ENGINE}.runs.sibling", f"{ENGINE}.z", "a.b"]
    assert [module for _, module in imported_modules("from .. import wrappers", ENGINE, is_package=True)] == [
        f"{PACKAGE}.wrappers"
    ]
    assert [is_user_module(module) for module in resolved] == [True, True, False, False, False]
    assert is_user_module(PACKAGE) and is_user_module(f"{PACKAGE}.wrappers.rag") and is_user_module(f"{PACKAGE}.asgi")
    assert not is_user_module(ENGINE) and not is_user_module(f"{PACKAGE}_other.llm")


def test_the_engine_imports_no_user_module() -> None:
    """Where the engine calls user policy, it owns a Protocol that the user's code implements."""
    assert len(ENGINE_FILES) > 10, f"the engine's modules are not under {SOURCE / 'engine'}"
    wrong = []
    for path in ENGINE_FILES:
        source = path.read_text(encoding="utf-8")
        imports = imported_modules(source, module_name(path, SOURCE, PACKAGE), is_package=path.name == "__init__.py")
        wrong += [f"{path.relative_to(SOURCE)}:{line}: {module}" for line, module in imports if is_user_module(module)]
    assert not wrong, "engine modules importing a user module:\n" + "\n".join(wrong)


# Run in a fresh interpreter: imports the package and every module of the engine, then reports what changed.
IMPORT_EVERYTHING = """
import importlib, json, os, pkgutil, sys
package = importlib.import_module(sys.argv[1])
engine = importlib.import_module(sys.argv[1] + ".engine")
names = [info.name for info in pkgutil.walk_packages(engine.__path__, engine.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": len(names), "marker": os.environ.get(sys.argv[2])}))
"""


def test_importing_the_package_and_the_engine_has_no_side_effects(tmp_path: Path) -> None:
    """A notebook or a unit test that imports any of it reads no `.env` and creates nothing; the entry points do."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / ".env").write_text(f"{MARKER}=read\n", encoding="utf-8")
    data_dir = tmp_path / "cwd" / "data-dir"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "DATA_DIR": str(data_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, PACKAGE, MARKER],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 10, report
    assert report["marker"] is None, "importing read .env"
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before, "importing created files or directories"
    assert not data_dir.exists()


# --- the public surface ---

engine = importlib.import_module(ENGINE)


def test_every_public_name_resolves_and_is_listed() -> None:
    unresolved = []
    for name in engine.PUBLIC:
        try:
            getattr(engine, name)
        except (AttributeError, ImportError) as error:
            unresolved.append(f"{name}: {error!r}")
    assert not unresolved, unresolved
    assert set(engine.PUBLIC) <= set(dir(engine))
    assert set(engine.PUBLIC) <= set(engine.__all__)


def test_the_type_checking_block_imports_exactly_the_public_names() -> None:
    """What editors and type checkers see is what `__getattr__` serves, from the same modules."""
    tree = ast.parse((SOURCE / "engine" / "__init__.py").read_text(encoding="utf-8"))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "engine/__init__.py has one `if TYPE_CHECKING:` block"
    imported: dict[str, str] = {}
    for node in blocks[0].body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            name = alias.asname or alias.name
            assert name not in imported, f"{name} imported twice"
            # `from .clients import openwebui` imports the module clients.openwebui; the others, a name of a module.
            as_module = f"{node.module}.{alias.name}"
            imported[name] = as_module if engine.PUBLIC.get(name) == as_module else str(node.module)
    assert set(imported) == set(engine.PUBLIC)
    assert imported == engine.PUBLIC


def test_a_moved_name_still_resolves_with_a_deprecation_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine.MOVED, "OldWrapperBase", ("BasePipelineWrapper", "0.0.0"))
    with pytest.warns(DeprecationWarning, match="OldWrapperBase"):
        value = engine.OldWrapperBase
    assert value is engine.BasePipelineWrapper
    with pytest.raises(AttributeError):
        engine.NoSuchName  # noqa: B018


# --- wrapper code and docs use the surface alone ---

# An import from a module below the surface: `from ..engine.runs import x`, `from <package>.engine.runs import x`;
# except, in the docs, what an entry point of your own imports as `asgi.py` does: the app factory and its settings.
ENTRY_POINT_MODULES = ("app", "settings", "startup")
BELOW_THE_SURFACE = re.compile(
    rf"^\s*from\s+(?:\.+|{PACKAGE}\.)engine\.(?!(?:{'|'.join(ENTRY_POINT_MODULES)})\s)\w", re.MULTILINE
)
FROM_THE_SURFACE = re.compile(rf"^\s*from\s+(?:\.+|{PACKAGE}\.)engine\s+import\s+(\([^)]*\)|[^\n]*)", re.MULTILINE)


@pytest.mark.parametrize("path", WRAPPER_CODE, ids=lambda path: str(path.relative_to(PROJECT_DIR)))
def test_wrapper_code_imports_the_engine_through_its_surface(path: Path) -> None:
    below = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("engine.", f"{PACKAGE}.engine."))
    ]
    assert not below, f"import from the surface (`engine`), not from a module below it: {below}"


def test_the_docs_import_the_engine_through_its_surface() -> None:
    """The docs teach only what the surface exports, so what they teach keeps working across releases."""
    wrong = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        wrong += [f"{path.name}: {match.group(0).strip()}" for match in BELOW_THE_SURFACE.finditer(text)]
        for match in FROM_THE_SURFACE.finditer(text):
            listed = re.sub(r"#[^\n]*", "", match.group(1)).strip().strip("()")
            names = [part.split(" as ")[0].strip() for part in listed.split(",")]
            unknown = [name for name in names if name.isidentifier() and name not in engine.__all__]
            wrong += [f"{path.name}: {name} is not on the surface" for name in unknown]
    assert not wrong, "\n".join(wrong)

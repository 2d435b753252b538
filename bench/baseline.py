"""The `baseline` target of run.py: the template at another git revision, served beside `ours` in the same run.

On a shared machine two runs minutes apart differ by more than a hot-path change, so the before and the after
run interleaved in one run (`python bench/run.py --baseline REV`). This module gets the tree at REV with
`git archive` (never the working tree), bakes it with the default answers into bench/.work/baseline-<commit>/,
installs it into bench/.work/venv-baseline, and checks that its package has what the current checkout's bench
wrappers import: both targets serve those same wrappers, so that only the template's code differs.

The venv is pinned to the versions installed in ours' venv (`pip freeze` as constraints): a newer Haystack in
one of them would be measured as the change. It is reinstalled only when those pins or the baked project's
dependencies change; otherwise the editable install is only pointed at this revision's bake.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SLUG = "haystack_service"
# The one command runner and logger of run.py: `sh(argv, log_name, cwd=None)` fails the run with its log's tail.
Runner = Callable[..., None]
Logger = Callable[[str], None]


@dataclass(frozen=True)
class Baseline:
    """The baked template at `rev`, the venv serving it, and the column it gets in the report and the JSON."""

    rev: str  # as given on the command line
    commit: str  # its short commit
    label: str
    project: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def hypercorn(self) -> Path:
        return self.venv / "bin" / "hypercorn"

    def meta(self) -> dict[str, str]:
        return {"rev": self.rev, "commit": self.commit, "label": self.label}


def prepare_baseline(
    rev: str,
    commit: str,
    label: str | None,
    *,
    repo: Path,
    work: Path,
    ours_venv: Path,
    wrappers: Path,
    env: dict[str, str],
    sh: Runner,
    log: Logger,
    reuse: bool,
) -> Baseline:
    """Bake and install the template at `commit` (`rev` as given, resolved by `short_commit`), or with `reuse`
    check that the last run left them; then check that its package exposes what `wrappers` import. Any failure
    ends the run with a message saying why."""
    baseline = Baseline(
        rev, commit, label or f"ours@{commit}", work / f"baseline-{commit}" / SLUG, work / "venv-baseline"
    )
    if reuse:
        if installed_stamp(baseline.venv).get("project") != str(baseline.project) or not baseline.project.is_dir():
            raise SystemExit(f"--skip-install: no installed bake of {commit} in {work}; run once without it")
    else:
        bake(repo, commit, work, sh, log)
        install(baseline, ours_venv, sh, log)
    if missing := missing_imports(baseline, wrappers, env):
        raise SystemExit(
            f"--baseline {rev}: the template at {commit} lacks what the bench wrappers of this checkout "
            f"({wrappers}) import, and both targets serve those wrappers:\n  "
            + "\n  ".join(missing)
            + "\nPick a later revision (one that has them)."
        )
    return baseline


def short_commit(repo: Path, rev: str) -> str:
    """The short hash of the commit `rev` names in `repo`; a clear error if it names none."""
    argv = ["git", "-C", str(repo), "rev-parse", "--short", "--verify", "--end-of-options", f"{rev}^{{commit}}"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"--baseline {rev}: not a commit of {repo}: {error.stderr.strip()}") from None


def bake(repo: Path, commit: str, work: Path, sh: Runner, log: Logger) -> Path:
    """The tree at `commit` from `git archive`, baked with the default answers; the unpacked tree is removed after.

    Bakes of other revisions (and what an interrupted bake left) are removed first: one baseline at a time."""
    for stale in work.glob("baseline-*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    out = work / f"baseline-{commit}"
    tree, archive = work / f"baseline-{commit}-template", work / f"baseline-{commit}.tar"
    log(f"baking the template at {commit} into {out.relative_to(repo)}")
    tree.mkdir(parents=True)
    try:
        sh(["git", "-C", repo, "archive", "--format=tar", "-o", archive, commit], "baseline-archive.log")
        sh(["tar", "-x", "-f", archive, "-C", tree], "baseline-untar.log")
        sh([sys.executable, "-m", "cookiecutter", tree, "--no-input", "--output-dir", out], "baseline-bake.log")
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return out / SLUG


def install(baseline: Baseline, ours_venv: Path, sh: Runner, log: Logger) -> None:
    """Install the bake into its venv with ours' versions; reinstall only when the dependencies changed."""
    wanted = {"dependencies": dependencies(baseline.project), "pins": pinned_versions(ours_venv)}
    stamp = installed_stamp(baseline.venv)
    python = baseline.python
    if not python.exists():
        log(f"creating the baseline's venv {baseline.venv.name}")
        sh([sys.executable, "-m", "venv", baseline.venv], "venv-baseline.log")
    if {k: stamp.get(k) for k in wanted} == wanted:
        if stamp.get("project") != str(baseline.project):
            log(f"pointing {baseline.venv.name} at the bake of {baseline.commit} (same dependencies)")
            sh([python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", baseline.project], "pip-baseline.log")
    else:
        log(f"installing the bake of {baseline.commit} into {baseline.venv.name}, pinned to ours' versions")
        constraints = baseline.venv / "bench-constraints.txt"
        constraints.write_text("".join(f"{pin}\n" for pin in wanted["pins"]))
        try:
            sh(
                [python, "-m", "pip", "install", "--quiet", "-c", constraints, "-e", baseline.project],
                "pip-baseline.log",
            )
        finally:
            constraints.unlink(missing_ok=True)
    (baseline.venv / "bench-installed.json").write_text(
        json.dumps(wanted | {"project": str(baseline.project)}, indent=2) + "\n"
    )


def installed_stamp(venv: Path) -> dict[str, object]:
    """What the last install put into `venv`: the dependencies, the pins and the bake it points at."""
    try:
        return json.loads((venv / "bench-installed.json").read_text())
    except (OSError, ValueError):
        return {}


def dependencies(project: Path) -> list[str]:
    """What installing the bake pulls in: its dependencies and its build backend."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return [*pyproject["project"].get("dependencies", []), *pyproject.get("build-system", {}).get("requires", [])]


def pinned_versions(venv: Path) -> list[str]:
    """`name==version` of every distribution in `venv` but the editable bake itself."""
    argv = [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"]
    try:
        frozen = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"--baseline: cannot read the versions in {venv}: {error}") from None
    return sorted(line.strip() for line in frozen.splitlines() if "==" in line)


# A name the wrappers import, as `module:name` (`module:` for a plain import).
Key = str
# What one import statement or one `try: ... except ImportError: ...` needs: alternatives, any of which will do,
# each the names that must all import (a plain import is a single alternative of its names, one requirement each).
Requirement = tuple[frozenset[Key], ...]
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def wrapper_imports(wrappers: Path) -> dict[Requirement, list[str]]:
    """What the wrappers import from the service's package, each with the files that import it.

    An import inside `try:` whose `except` catches ImportError (or ModuleNotFoundError) is one requirement with
    alternatives: the names imported in the `try` body, or those imported in any such handler (as `_engine.py`
    imports the engine from `haystack_service.engine`, or from the modules it had before template 0.4). Any
    other import of the package is needed as it stands."""
    imports: dict[Requirement, list[str]] = {}
    for path in sorted(wrappers.glob("*.py")):
        for requirement in requirements(ast.parse(path.read_text(), str(path))):
            imports.setdefault(requirement, []).append(path.name)
    return imports


def requirements(node: ast.AST) -> list[Requirement]:
    """The requirements of the package's imports under `node`, in source order."""
    if isinstance(node, ast.Try | ast.TryStar):
        fallbacks = [handler for handler in node.handlers if catches_import_error(handler)]
        if fallbacks:
            branches = [node.body, *(handler.body for handler in fallbacks)]
            alternatives = tuple(frozenset(key for stmt in body for key in imported_keys(stmt)) for body in branches)
            rest = [h for h in node.handlers if h not in fallbacks] + node.orelse + node.finalbody
            found = [alternatives] if any(alternatives) else []
            return found + [r for child in rest for r in requirements(child)]
    found: list[Requirement] = [(frozenset([key]),) for key in direct_keys(node)]
    return found + [r for child in ast.iter_child_nodes(node) for r in requirements(child)]


def catches_import_error(handler: ast.ExceptHandler) -> bool:
    """Whether the handler catches ImportError: bare, or naming it or ModuleNotFoundError (alone or in a tuple)."""
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return caught is None or any(isinstance(name, ast.Name) and name.id in IMPORT_ERRORS for name in names)


def direct_keys(node: ast.AST) -> list[Key]:
    """The package's names that `node` itself imports, if it is an import statement."""
    if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == SLUG:
        return [f"{node.module}:{alias.name}" for alias in node.names]
    if isinstance(node, ast.Import):
        return [f"{alias.name}:" for alias in node.names if alias.name.split(".")[0] == SLUG]
    return []


def imported_keys(node: ast.AST) -> list[Key]:
    """Every name of the package imported anywhere under `node` (one branch of a try: all of them are needed)."""
    return [key for child in ast.walk(node) for key in direct_keys(child)]


# Run by the baseline's python: which `module:name` it cannot import, and why.
_CHECK_IMPORTS = """
import importlib, json, sys
missing = {}
for key in json.loads(sys.argv[1]):
    module, _, name = key.partition(":")
    try:
        found = importlib.import_module(module)
        if name and not hasattr(found, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                raise ImportError(f"{module} has no {name}") from None
    except Exception as error:
        missing[key] = f"{type(error).__name__}: {error}"
print(json.dumps(missing))
"""


def missing_imports(baseline: Baseline, wrappers: Path, env: dict[str, str]) -> list[str]:
    """One line per import of the wrappers that the baseline's package cannot satisfy (for a try/except ImportError,
    none of its alternatives imports)."""
    imports = wrapper_imports(wrappers)
    keys = sorted({key for requirement in imports for alternative in requirement for key in alternative})
    argv = [str(baseline.python), "-c", _CHECK_IMPORTS, json.dumps(keys)]
    failed = f"--baseline: could not check the baseline's package with {baseline.python}"
    try:
        done = subprocess.run(argv, cwd=baseline.project, env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"{failed}: {error}") from None
    try:
        missing = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"{failed}:\n{done.stderr[-2000:]}") from None
    return unsatisfied(imports, missing)


def unsatisfied(imports: dict[Requirement, list[str]], missing: dict[Key, str]) -> list[str]:
    """One line per requirement none of whose alternatives imports, given why each missing name did not:
    `module.name (imported by files): why`, and for a try/except ImportError each alternative's, joined by `or`."""

    def why(alternative: frozenset[Key]) -> str:
        return "; ".join(
            f"{key.replace(':', '.').rstrip('.')}: {missing[key]}" for key in sorted(alternative & missing.keys())
        )

    lines = []
    for requirement, files in imports.items():
        if any(not alternative & missing.keys() for alternative in requirement):
            continue  # one alternative imports whole
        by = f"(imported by {', '.join(files)})"
        if len(requirement) == 1:
            key = min(requirement[0])
            lines.append(f"{key.replace(':', '.').rstrip('.')} {by}: {missing[key]}")
        else:
            lines.append(f"none of the alternatives {by}: " + "\n    or ".join(why(a) for a in requirement))
    return sorted(lines)

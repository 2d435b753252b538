"""The default project, baked and installed in a fresh virtualenv once per session, as a user installs it.

The baked suite runs in it (test_baked_suite.py), and the upgrade tests run an updated project's own tests with its
Python (test_upgrade.py). By default it installs the versions the template pins, as the baked README does:
`pip install -c constraints.txt -e '.[dev]'`; with BAKED_SUITE_VERSIONS=newest the newest versions the
pyproject.toml ranges allow. Either way the versions of the main dependencies are written to the test output.
"""

import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
from baking import bake_into

INSTALL_TIMEOUT_SECONDS = 1800
SUITE_TIMEOUT_SECONDS = 900

# BAKED_SUITE_VERSIONS: "tested" (the default: the versions in constraints.txt) or "newest" (what the ranges allow).
VERSIONS_VARIABLE = "BAKED_SUITE_VERSIONS"
VERSION_MODES = ("tested", "newest")
# The packages whose versions the test output shows (the engine leans on their behaviour, some on private parts).
REPORTED_PACKAGES = ("haystack-ai", "openai", "quart", "hypercorn", "redis", "pydantic")


@dataclass(frozen=True)
class InstalledProject:
    """The default project, baked and installed in its own virtualenv."""

    path: Path
    venv_dir: Path
    # Newest mode only: what the ranges allow today is exactly what constraints.txt pins (the tested run covered it).
    same_as_tested: bool = False

    def run(self, *arguments: str, timeout: int) -> subprocess.CompletedProcess[str]:
        """Run the virtualenv's Python in the project folder."""
        return run_in_venv([self.venv_dir / "bin" / "python", *arguments], self.path, self.venv_dir, timeout)


def isolated_environment(venv_dir: Path) -> dict[str, str]:
    """Our environment, minus anything that would make the baked project see this interpreter's packages."""
    environment = {
        key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    environment["VIRTUAL_ENV"] = str(venv_dir)
    environment["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    environment["HAYSTACK_TELEMETRY_ENABLED"] = "False"
    return environment


def run_in_venv(command: list[str | Path], cwd: Path, venv_dir: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=isolated_environment(venv_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    """The end of a command's output, enough to see why it failed."""
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def versions_mode() -> str:
    """Which versions to install: BAKED_SUITE_VERSIONS, "tested" when unset; a misspelt value is an error."""
    mode = os.environ.get(VERSIONS_VARIABLE, "").strip() or "tested"
    if mode not in VERSION_MODES:
        pytest.fail(f"{VERSIONS_VARIABLE}={mode!r}: expected one of {', '.join(VERSION_MODES)}", pytrace=False)
    return mode


def install_arguments(mode: str) -> list[str]:
    """pip's arguments for the mode: the README's pinned install, or the newest versions the ranges allow."""
    if mode == "newest":
        return ["install", "--quiet", "--upgrade", "-e", ".[dev]"]
    return ["install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"]


def reported_versions(freeze_output: str) -> list[str]:
    """The `pip freeze` lines of REPORTED_PACKAGES, in that order (pip writes some names capitalised)."""
    lines = {}
    for line in freeze_output.splitlines():
        name = line.split("==", 1)[0].strip().lower().replace("_", "-")
        lines[name] = line.strip()
    return [lines.get(package, f"{package}: not installed") for package in REPORTED_PACKAGES]


def show(request: pytest.FixtureRequest, text: str) -> None:
    """Write to the terminal past pytest's output capture, so that CI's log has it even when every test passes."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():
        for line in text.splitlines():
            reporter.write_line(line)


@pytest.fixture(scope="session")
def installed_default_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path
) -> InstalledProject:
    """One bake and one virtualenv per session, shared by every test here; each mode has its own folders."""
    mode = versions_mode()
    work_dir = tmp_path_factory.mktemp(f"baked_suite_{mode}")
    project_dir = bake_into(work_dir, cookiecutter_config)
    if mode == "tested":
        assert (project_dir / "constraints.txt").is_file(), "the baked project has no constraints.txt"
    venv_dir = work_dir / f"venv-{mode}"
    venv.create(venv_dir, with_pip=True, clear=True)
    project = InstalledProject(project_dir, venv_dir)
    arguments = install_arguments(mode)
    installed = project.run("-m", "pip", *arguments, timeout=INSTALL_TIMEOUT_SECONDS)
    assert installed.returncode == 0, f"pip {' '.join(arguments)} failed:\n{tail(installed)}"
    frozen = project.run("-m", "pip", "freeze", timeout=INSTALL_TIMEOUT_SECONDS)
    assert frozen.returncode == 0, f"pip freeze failed:\n{tail(frozen)}"
    versions = "\n".join(f"  {line}" for line in reported_versions(frozen.stdout))
    show(request, f"baked suite: {mode} versions (pip {' '.join(arguments)}):\n{versions}")
    if mode == "newest":
        newer = newer_than_tested(frozen.stdout, project_dir / "constraints.txt")
        show(request, "baked suite: newer than constraints.txt: " + (", ".join(newer) or "nothing"))
        project = InstalledProject(project_dir, venv_dir, same_as_tested=not newer)
    return project


def pins(lines: str) -> dict[str, str]:
    """`name==version` lines (pip freeze, constraints.txt) as normalised name -> version; comments and the rest skipped."""
    found = {}
    for line in lines.splitlines():
        name, separator, version = line.split("#")[0].strip().partition("==")
        if separator:
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def newer_than_tested(freeze_output: str, constraints: Path) -> list[str]:
    """The packages whose installed version differs from the tested one (or that constraints.txt does not pin)."""
    tested = pins(constraints.read_text(encoding="utf-8"))
    return [f"{name}=={version}" for name, version in pins(freeze_output).items() if tested.get(name) != version]

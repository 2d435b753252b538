"""Run the default project's own test suite the way a user would: fresh virtualenv, `pip install -e '.[dev]'`.

Slow (it installs haystack-ai and friends from the package index), so it is marked `baked_suite`:
deselect it with `-m "not baked_suite"` for a quick run.
"""

import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
from baking import bake_into

pytestmark = pytest.mark.baked_suite

INSTALL_TIMEOUT_SECONDS = 1800
SUITE_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class InstalledProject:
    """The default project, baked and installed in its own virtualenv."""

    path: Path
    venv_dir: Path

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


@pytest.fixture(scope="session")
def installed_default_project(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> InstalledProject:
    """One bake and one virtualenv per session, shared by every test here."""
    work_dir = tmp_path_factory.mktemp("baked_suite")
    project_dir = bake_into(work_dir, cookiecutter_config)
    venv_dir = work_dir / "venv"
    venv.create(venv_dir, with_pip=True, clear=True)
    project = InstalledProject(project_dir, venv_dir)
    installed = project.run("-m", "pip", "install", "--quiet", "-e", ".[dev]", timeout=INSTALL_TIMEOUT_SECONDS)
    assert installed.returncode == 0, f"pip install -e '.[dev]' failed:\n{tail(installed)}"
    return project


def test_baked_project_serves_a_quart_app(installed_default_project: InstalledProject) -> None:
    check = "import quart; from haystack_service.asgi import app; assert isinstance(app, quart.Quart), type(app)"
    result = installed_default_project.run("-c", check, timeout=SUITE_TIMEOUT_SECONDS)
    assert result.returncode == 0, tail(result)


def test_baked_project_suite_passes(installed_default_project: InstalledProject) -> None:
    # Short tracebacks and a summary line per failure, so that the tail below names every failed test.
    result = installed_default_project.run("-m", "pytest", "-q", "-rfEs", "--tb=short", timeout=SUITE_TIMEOUT_SECONDS)
    assert result.returncode == 0, f"the baked project's tests failed (exit {result.returncode}):\n{tail(result)}"
    print(tail(result, lines=15))  # shown with -s or -rP: which tests ran, which skipped and why
    if os.environ.get("CI"):
        # CI installs Codex and points at OpenAI's spec: nothing may skip there, or a check silently stopped.
        assert " skipped" not in result.stdout.splitlines()[-1], tail(result, lines=30)

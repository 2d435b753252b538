"""Run the default project's own test suite the way a user would: fresh virtualenv, `pip install -e '.[dev]'`.

By default it installs the versions the template pins, as the baked README does:
`pip install -c constraints.txt -e '.[dev]'`. With BAKED_SUITE_VERSIONS=newest it installs without the constraints
file, taking the newest versions the pyproject.toml ranges allow (CI runs both), so that a release of Haystack (or
openai, Quart, ...) that breaks the engine shows up here before users meet it. Either way the versions of the main
dependencies are written to the test output.

Slow (it installs haystack-ai and friends from the package index), so it is marked `baked_suite`:
deselect it with `-m "not baked_suite"` for a quick run.
"""

import os

import pytest
from installed_project import SUITE_TIMEOUT_SECONDS, InstalledProject, tail

pytestmark = pytest.mark.baked_suite


def test_baked_project_serves_a_quart_app(installed_default_project: InstalledProject) -> None:
    check = "import quart; from haystack_service.asgi import app; assert isinstance(app, quart.Quart), type(app)"
    result = installed_default_project.run("-c", check, timeout=SUITE_TIMEOUT_SECONDS)
    assert result.returncode == 0, tail(result)


def test_baked_project_suite_passes(installed_default_project: InstalledProject) -> None:
    if installed_default_project.same_as_tested:
        pytest.skip("the newest versions the ranges allow are the ones constraints.txt pins: the tested run ran them")
    # Short tracebacks and a summary line per failure, so that the tail below names every failed test.
    result = installed_default_project.run("-m", "pytest", "-q", "-rfEs", "--tb=short", timeout=SUITE_TIMEOUT_SECONDS)
    assert result.returncode == 0, f"the baked project's tests failed (exit {result.returncode}):\n{tail(result)}"
    print(tail(result, lines=15))  # shown with -s or -rP: which tests ran, which skipped and why
    if os.environ.get("CI"):
        # CI installs Codex and points at OpenAI's spec: nothing may skip there, or a check silently stopped.
        assert " skipped" not in result.stdout.splitlines()[-1], tail(result, lines=30)

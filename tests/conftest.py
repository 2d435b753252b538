"""Fixtures for the template tests: bake into temporary folders, never into the repo or the user's home."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from baking import bake_into
from installed_project import installed_default_project  # noqa: F401  (a session fixture: one install)

# Baked projects and their own test runs inherit this; Haystack must not phone home from tests.
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cookiecutter config whose replay and clone folders live in a temp dir, not in ~/."""
    home = tmp_path_factory.mktemp("cookiecutter_home")
    config = {"cookiecutters_dir": str(home / "cookiecutters"), "replay_dir": str(home / "replay")}
    config_file = home / "config.yaml"
    config_file.write_text(json.dumps(config), encoding="utf-8")  # JSON is valid YAML
    return config_file


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """An empty folder to bake into, so a test can see exactly what a bake left behind."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def bake(output_dir: Path, cookiecutter_config: Path) -> Callable[..., Path]:
    """Bake into `output_dir` with the given answers."""

    def bake_with(**extra_context: Any) -> Path:
        return bake_into(output_dir, cookiecutter_config, **extra_context)

    return bake_with

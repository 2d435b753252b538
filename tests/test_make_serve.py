"""`make serve` keeps an existing scratch project, and a user's edits in it, unless `REBAKE=1` is given.

The Makefile's own recipe runs, with its tools swapped for stand-ins that note their calls: a cookiecutter
that makes the project folder, and a Python and hypercorn that exit at once (installing and serving are not
what is tested here).
"""

import os
import subprocess
from pathlib import Path

import pytest
from baking import TEMPLATE_DIR

SLUG = "haystack_service"


def stand_in(path: Path, script: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def make_serve(tmp_path: Path) -> "MakeServe":
    return MakeServe(tmp_path)


class MakeServe:
    """`make serve` from the template's Makefile, with its virtualenvs and scratch folder in a temp dir."""

    def __init__(self, root: Path) -> None:
        self.venv, self.scratch, self.calls = root / "venv", root / "scratch", root / "calls.log"
        # The bake the recipe asks for: `cookiecutter <template> --no-input --output-dir <scratch>`.
        stand_in(self.venv / "bin" / "cookiecutter", f'echo bake >> {self.calls}; mkdir -p "$4/{SLUG}"')
        (self.venv / ".tools-installed").touch()  # newer than the Makefile: no tools install
        stand_in(self.scratch / "venv" / "bin" / "python", "exit 0")
        stand_in(self.scratch / "venv" / "bin" / "hypercorn", f"echo serve >> {self.calls}")

    @property
    def project(self) -> Path:
        return self.scratch / SLUG

    def run(self, *variables: str) -> str:
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(TEMPLATE_DIR),
                "serve",
                f"VENV={self.venv}",
                f"SCRATCH={self.scratch}",
                *variables,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "MAKEFLAGS": ""},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def called(self) -> list[str]:
        return self.calls.read_text(encoding="utf-8").split() if self.calls.exists() else []


def test_first_serve_bakes(make_serve: MakeServe) -> None:
    make_serve.run()
    assert make_serve.called() == ["bake", "serve"]
    assert make_serve.project.is_dir()


def test_an_existing_bake_is_kept_with_the_users_edits(make_serve: MakeServe) -> None:
    make_serve.project.mkdir(parents=True)
    edit = make_serve.project / "my_edit.py"
    edit.write_text("kept\n", encoding="utf-8")
    output = make_serve.run()
    assert make_serve.called() == ["serve"], "no bake over the existing project"
    assert edit.read_text(encoding="utf-8") == "kept\n"
    assert "REBAKE=1" in output, "the user is told how to get a fresh bake"


def test_rebake_replaces_it(make_serve: MakeServe) -> None:
    make_serve.project.mkdir(parents=True)
    edit = make_serve.project / "my_edit.py"
    edit.write_text("old\n", encoding="utf-8")
    make_serve.run("REBAKE=1")
    assert make_serve.called() == ["bake", "serve"]
    assert not edit.exists()

"""`make serve`: it keeps an existing scratch project and a user's edits in it; `REBAKE=1` bakes a fresh one and moves
the old one aside, never deletes it; it installs only when the project's pyproject.toml or constraints.txt changed; it
serves as the baked README does, `python -m <package> --reload` in the project's folder (with its hypercorn.toml).

The Makefile's own recipe runs, with its tools swapped for stand-ins that note their calls: a cookiecutter
that makes the project folder, and a Python that exits at once (installing and serving are not what is tested here;
tests/engine/test_reload.py of the baked project serves `--reload` for real).
"""

import os
import subprocess
import time
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
        project = f'"$4/{SLUG}"'
        stand_in(
            self.venv / "bin" / "cookiecutter",
            f"echo bake >> {self.calls}; mkdir -p {project}; touch {project}/pyproject.toml {project}/constraints.txt",
        )
        (self.venv / ".tools-installed").touch()  # newer than the Makefile: no tools install
        # `python -m pip install ...` notes "install"; anything else is the serving command, noted with its folder.
        stand_in(
            self.scratch / "venv" / "bin" / "python",
            f'case "$*" in *"pip install"*) echo install;; *) echo "serve in $(basename "$PWD"): $*";; esac >> {self.calls}',
        )

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
        """The calls noted since the last look."""
        if not self.calls.exists():
            return []
        calls = self.calls.read_text(encoding="utf-8").splitlines()
        self.calls.unlink()
        return calls


SERVE = f"serve in {SLUG}: -m {SLUG} --reload"


def test_first_serve_bakes_installs_and_serves_in_development_mode(make_serve: MakeServe) -> None:
    make_serve.run()
    assert make_serve.called() == ["bake", "install", SERVE]
    assert make_serve.project.is_dir()


def test_an_existing_bake_is_kept_with_the_users_edits_and_not_installed_again(make_serve: MakeServe) -> None:
    make_serve.run()
    make_serve.called()
    edit = make_serve.project / "my_edit.py"
    edit.write_text("kept\n", encoding="utf-8")
    output = make_serve.run()
    assert make_serve.called() == [SERVE], "no bake over the existing project, no install when nothing changed"
    assert edit.read_text(encoding="utf-8") == "kept\n"
    assert "REBAKE=1" in output, "the user is told how to get a fresh bake"


def test_a_changed_pyproject_is_installed_again(make_serve: MakeServe) -> None:
    make_serve.run()
    make_serve.called()
    pyproject = make_serve.project / "pyproject.toml"
    later = time.time() + 5
    os.utime(pyproject, (later, later))  # as an edit after the install would
    make_serve.run()
    assert make_serve.called() == ["install", SERVE]


def test_rebake_moves_the_old_bake_aside_with_the_users_files(make_serve: MakeServe) -> None:
    make_serve.run()
    make_serve.called()
    for name, text in {"my_edit.py": "mine\n", ".env": "OPENAI_API_KEY=mine\n", "data/state.db": "rows"}.items():
        (make_serve.project / name).parent.mkdir(exist_ok=True)
        (make_serve.project / name).write_text(text, encoding="utf-8")
    output = make_serve.run("REBAKE=1")
    assert make_serve.called() == ["bake", "install", SERVE], "a fresh bake, installed"
    assert not (make_serve.project / "my_edit.py").exists()
    [kept] = [path for path in make_serve.scratch.iterdir() if path.name.startswith(f"{SLUG}.")]
    assert (kept / "my_edit.py").read_text(encoding="utf-8") == "mine\n"
    assert (kept / ".env").read_text(encoding="utf-8") == "OPENAI_API_KEY=mine\n"
    assert (kept / "data" / "state.db").read_text(encoding="utf-8") == "rows"
    assert str(kept) in output, "the user is told where their files are"

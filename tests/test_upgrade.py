"""The upgrade path (docs/keeping-up.md of the baked project): a project baked with cruft, then edited by its user,
takes the template's next release with `cruft update` and keeps everything that is the user's.

Real cruft and git, no network. The template under test is this checkout as it is now, uncommitted edits included:
its history is fetched into a temporary repository and its working tree committed on top, so that cruft (which
only speaks git) can bake and update from it, and a "next release" commit is made there as a maintainer would.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from baking import TEMPLATE_DIR, bake_into

# The previous release: a commit (or tag) of this repository with the engine/ layout and cruft support, from which a
# project must update cleanly to the template under test. Until 0.4.0 is tagged and a later release made, the first
# commit that had both (CI fails when it is missing from the clone). UPGRADE_FROM=<commit or tag> tries another.
PREVIOUS_RELEASE: str | None = os.environ.get("UPGRADE_FROM") or "2cdf98fa15a932e0c6fd24116d09314346cd8ee5"

SLUG = "haystack_service"
PROJECT_TEMPLATE = "{{cookiecutter.project_slug}}"
CRUFT = Path(sys.executable).parent / "cruft"
# Folders of a local checkout that are no part of the template (virtualenvs, tools, bakes), ignored or not.
NOT_TEMPLATE_FOLDERS = re.compile(r"^(\.venv.*|\.tools|\.scratch|\.work|node_modules|__pycache__|\..*_cache)$")
CONFLICT_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)
USER_OWNED = re.compile(rf"^src/{SLUG}/(wrappers/.*|streaming\.py|llm\.py)$")

MY_WRAPPER = '''"""Model `my_model`: the user's own wrapper, written after the bake; an update must never touch it."""

from typing import Any

from haystack.dataclasses import ChatMessage

from ..engine import BasePipelineWrapper, get_last_user_message
from ..llm import make_chat_generator


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.llm = make_chat_generator()

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        """One call to whatever generator llm.py makes, online or offline."""
        question = ChatMessage.from_user(get_last_user_message(messages) or "")
        return self.llm.run(messages=[question])["replies"][0].text or ""
'''

# One line the user adds at the end of each file they own (a wrapper, streaming.py, llm.py).
USER_EDITS = {
    f"src/{SLUG}/wrappers/chat.py": 'MY_CHAT_NOTE = "the user\'s line in an example"\n',
    f"src/{SLUG}/streaming.py": 'MY_STREAMING_NOTE = "the user\'s line in streaming.py"\n',
    f"src/{SLUG}/llm.py": 'MY_LLM_NOTE = "the user\'s line in llm.py"\n',
}
MY_WRAPPER_PATH = f"src/{SLUG}/wrappers/my_model.py"
DELETED_EXAMPLE = f"src/{SLUG}/wrappers/files_qa.py"
USER_ENV_LINE = "OPENAI_API_KEY=sk-the-users-own-key\n"

NEXT_ENGINE_LINE = "The next release says this in the engine's docstring."
NEXT_ENGINE_MODULE = "next_release_notes.py"
NEXT_SETTING = "# NEXT_RELEASE_SETTING=on  (a setting the next release adds)\n"
NEXT_STREAMING_PREFIX = "Next release: "


def clean_environment(cookiecutter_config: Path) -> dict[str, str]:
    """Git and cookiecutter settings of this test alone: no user config, hooks' GIT_DIR or signing can leak in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return env | {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Upgrade Test",
        "GIT_AUTHOR_EMAIL": "upgrade@example.com",
        "GIT_COMMITTER_NAME": "Upgrade Test",
        "GIT_COMMITTER_EMAIL": "upgrade@example.com",
        "GIT_TERMINAL_PROMPT": "0",
        "COOKIECUTTER_CONFIG": str(cookiecutter_config),  # cruft update and check read the user config too
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }


@dataclass
class Shell:
    """Runs commands with the test's environment, failing with their output when they fail."""

    env: dict[str, str]

    def run(self, *command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(part) for part in command], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result

    def git(self, repo: Path, *args: str) -> str:
        return self.run("git", *args, cwd=repo).stdout.strip()

    def commit_all(self, repo: Path, message: str) -> str:
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)
        return self.git(repo, "rev-parse", "HEAD")


@pytest.fixture
def shell(cookiecutter_config: Path) -> Shell:
    return Shell(clean_environment(cookiecutter_config))


def template_files(source: Path, shell: Shell) -> list[str]:
    """The checkout's template files as they are now: tracked ones still present, and new ones git does not ignore."""
    listed = shell.git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted(
        {
            name
            for name in listed.split("\0")
            if name
            and (source / name).is_file()
            and not any(NOT_TEMPLATE_FOLDERS.match(part) for part in Path(name).parts[:-1])
        }
    )


@dataclass
class TemplateRepo:
    """A git repository of the template that cruft can clone: this checkout's history, then its working tree."""

    path: Path
    under_test: str  # the commit holding the template under test

    @property
    def project_template(self) -> Path:
        return self.path / PROJECT_TEMPLATE


@pytest.fixture
def template(tmp_path: Path, shell: Shell) -> TemplateRepo:
    """The template under test as the newest commit of a temporary repository (the checkout is never written to)."""
    repo = tmp_path / "template"
    repo.mkdir()
    shell.git(repo, "init", "-q", "-b", "main")
    shell.git(repo, "fetch", "-q", "--tags", str(TEMPLATE_DIR), "HEAD")
    shell.git(repo, "update-ref", "refs/heads/main", "FETCH_HEAD")
    for name in template_files(TEMPLATE_DIR, shell):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_DIR / name, target)
    return TemplateRepo(repo, shell.commit_all(repo, "the template under test"))


def template_version(template_root: Path) -> str:
    return json.loads((template_root / "cookiecutter.json").read_text(encoding="utf-8"))["_template_version"]


def next_version(version: str) -> str:
    major, minor, patch = (int(part) for part in version.split("."))
    return f"{major}.{minor}.{patch + 1}"


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: expected {old!r} once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n\n" + text, encoding="utf-8")


@dataclass(frozen=True)
class Release:
    commit: str
    version: str


def make_next_release(template: TemplateRepo, shell: Shell, change_user_files: Callable[[Path], None]) -> Release:
    """What a maintainer's next release does: the engine changes, a setting is added, a user-owned file changes (and
    the CHANGELOG says what to merge by hand), the version goes up in both places that state it."""
    package = template.project_template / "src" / PROJECT_TEMPLATE
    app = package / "engine" / "app.py"
    lines = app.read_text(encoding="utf-8").splitlines(keepends=True)
    closing = lines.index('"""\n')  # the end of the module docstring
    app.write_text("".join([*lines[:closing], "\n", NEXT_ENGINE_LINE + "\n", *lines[closing:]]), encoding="utf-8")
    (package / "engine" / NEXT_ENGINE_MODULE).write_text(
        '"""A module the next release adds to the engine."""\n\nADDED = True\n', encoding="utf-8"
    )
    append(template.project_template / ".env.example", NEXT_SETTING)
    change_user_files(package)

    version = template_version(template.path)
    new_version = next_version(version)
    replace_once(
        template.path / "cookiecutter.json",
        f'"_template_version": "{version}"',
        f'"_template_version": "{new_version}"',
    )
    replace_once(
        package / "engine" / "__init__.py", f'TEMPLATE_VERSION = "{version}"', f'TEMPLATE_VERSION = "{new_version}"'
    )
    changelog = template.project_template / "CHANGELOG.md"
    replace_once(
        changelog,
        f"\n## {version}",
        f"\n## {new_version}\n\n- The engine's app.py says more.\n- streaming.py's docstring: merge by hand.\n\n## {version}",
    )
    return Release(shell.commit_all(template.path, f"release {new_version}"), new_version)


def change_streaming_docstring(package: Path) -> None:
    """A change to a user-owned file away from the user's own edit (its first line; the user's is at its end)."""
    streaming = package / "streaming.py"
    text = streaming.read_text(encoding="utf-8")
    assert text.startswith('"""'), "streaming.py opens with its docstring"
    streaming.write_text(f'"""{NEXT_STREAMING_PREFIX}{text[3:]}', encoding="utf-8")


def cruft(shell: Shell, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return shell.run(CRUFT, *args, cwd=cwd)


def cruft_create(shell: Shell, source: str, commit: str, output_dir: Path, cookiecutter_config: Path) -> Path:
    """`cruft create` as the docs say, then `git init` and a first commit, as a user keeps a project."""
    output_dir.mkdir(parents=True, exist_ok=True)
    cruft(shell, "create", source, "--no-input", "--checkout", commit, "--output-dir", output_dir,
          "--config-file", cookiecutter_config, cwd=output_dir)  # fmt: skip
    project = output_dir / SLUG
    assert (project / ".cruft.json").is_file()
    shell.git(project, "init", "-q", "-b", "main")
    shell.commit_all(project, "baked")
    return project


def apply_user_changes(project: Path, shell: Shell) -> dict[str, bytes]:
    """A new wrapper, a deleted example, a line in each user-owned file, a key in .env; committed but for .env.
    Returns what the user's files hold, to compare after the update."""
    (project / MY_WRAPPER_PATH).write_text(MY_WRAPPER, encoding="utf-8")
    (project / DELETED_EXAMPLE).unlink()
    for name, line in USER_EDITS.items():
        append(project / name, line)
    with (project / ".env").open("a", encoding="utf-8") as env_file:
        env_file.write(USER_ENV_LINE)
    shell.commit_all(project, "my changes")
    return {name: (project / name).read_bytes() for name in [MY_WRAPPER_PATH, ".env"]}


def cruft_update(project: Path, shell: Shell) -> None:
    """`cruft update` without a prompt; it exits 0 even when it falls back to .rej files, so callers check those."""
    cruft(shell, "update", "--project-dir", project, "--skip-apply-ask", "--allow-untracked-files", cwd=project)


def project_files(project: Path) -> Iterator[Path]:
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(project).parts:
            yield path


def files_with_conflicts(project: Path, shell: Shell) -> list[str]:
    """The files git left unmerged, and any other with conflict markers (Markdown may show them as examples)."""
    unmerged = shell.git(project, "diff", "--name-only", "--diff-filter=U").splitlines()
    marked = []
    for path in project_files(project):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if path.suffix != ".md" and CONFLICT_MARKER.search(text):
            marked.append(path.relative_to(project).as_posix())
    return sorted({*unmerged, *marked})


def assert_updated_cleanly(
    project: Path,
    shell: Shell,
    kept: dict[str, bytes],
    release: Release,
    deleted: tuple[str, ...] = (DELETED_EXAMPLE,),
) -> list[str]:
    """What every update must leave: no .rej, the user's wrapper and .env as they were, the deleted example still
    gone, conflicts only in user-owned files, the new commit and version recorded. Returns the conflicted files."""
    rejects = [path.relative_to(project).as_posix() for path in project_files(project) if path.suffix == ".rej"]
    assert not rejects, f"cruft fell back to reject mode: {rejects}"
    for name, content in kept.items():
        assert (project / name).read_bytes() == content, f"{name} changed"
    for name in deleted:
        assert not (project / name).exists(), f"{name}, which the user deleted, came back"
    conflicted = files_with_conflicts(project, shell)
    assert all(USER_OWNED.match(name) for name in conflicted), f"conflicts outside the user's files: {conflicted}"
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == release.commit
    assert (
        json.loads((project / ".bake-answers.json").read_text(encoding="utf-8"))["_template_version"] == release.version
    )
    assert f"template version {release.version}" in (project / "README.md").read_text(encoding="utf-8")
    return conflicted


def resolve_conflicts(project: Path, conflicted: list[str], shell: Shell) -> None:
    """What docs/keeping-up.md tells the user: take the template's side of a conflicted file and merge your own
    change back by hand (here: the user's line again)."""
    for name in conflicted:
        shell.git(project, "checkout", "--theirs", "--", name)
        if name in USER_EDITS:
            append(project / name, USER_EDITS[name])
        shell.git(project, "add", name)


@pytest.fixture
def baked_python(request: pytest.FixtureRequest) -> str | None:
    """A Python with the project's dependencies, to run an updated project's own tests: BAKED_VENV, or in CI the
    virtualenv the baked suite installed (one install per session); None otherwise (then compile and lint only)."""
    if os.environ.get("BAKED_VENV"):
        return os.environ["BAKED_VENV"]
    if os.environ.get("CI"):
        return str(request.getfixturevalue("installed_default_project").venv_dir / "bin" / "python")
    return None


def assert_project_works(project: Path, shell: Shell, baked_python: str | None) -> None:
    """The updated project compiles and is lint-clean by its own config; with `baked_python` (a Python with the
    project's dependencies) its own tests of the user's wrappers pass too, against this project's src/."""
    shell.run(sys.executable, "-m", "compileall", "-q", "src", "tests", cwd=project)
    shell.run(sys.executable, "-m", "ruff", "check", "--no-cache", ".", cwd=project)
    if baked_python:
        user_tests = sorted(path.name for path in (project / "tests").glob("test_*.py"))
        assert user_tests, "the project has tests of its own"
        with_src = Shell(shell.env | {"PYTHONPATH": str(project / "src")})
        with_src.run(baked_python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                  *[f"tests/{name}" for name in user_tests], cwd=project)  # fmt: skip


def test_a_users_project_takes_the_next_release(
    template: TemplateRepo, shell: Shell, tmp_path: Path, cookiecutter_config: Path, baked_python: str | None
) -> None:
    project = cruft_create(shell, str(template.path), template.under_test, tmp_path / "bake", cookiecutter_config)
    kept = apply_user_changes(project, shell)
    release = make_next_release(template, shell, change_streaming_docstring)
    outdated = shell.run(CRUFT, "check", "--project-dir", project, cwd=project, check=False)
    assert outdated.returncode == 1, "cruft check tells an outdated project"

    cruft_update(project, shell)

    assert assert_updated_cleanly(project, shell, kept, release) == [], "the edits do not overlap"
    package = project / "src" / SLUG
    assert NEXT_ENGINE_LINE in (package / "engine" / "app.py").read_text(encoding="utf-8")
    assert (package / "engine" / NEXT_ENGINE_MODULE).is_file()
    assert NEXT_SETTING in (project / ".env.example").read_text(encoding="utf-8")
    streaming = (package / "streaming.py").read_text(encoding="utf-8")
    assert streaming.startswith(f'"""{NEXT_STREAMING_PREFIX}'), "the template's change to a user file merged"
    assert USER_EDITS[f"src/{SLUG}/streaming.py"] in streaming, "... beside the user's own"
    for name, line in USER_EDITS.items():
        assert line in (project / name).read_text(encoding="utf-8"), name
    cruft(shell, "check", "--project-dir", project, cwd=project)
    assert_project_works(project, shell, baked_python)


def test_a_conflict_stays_in_the_users_file_as_markers(
    template: TemplateRepo, shell: Shell, tmp_path: Path, cookiecutter_config: Path, baked_python: str | None
) -> None:
    """The release changes llm.py where the user did (its end): git's 3-way merge leaves markers there and applies
    everything else; no .rej, and the project works once the user merges by hand."""
    project = cruft_create(shell, str(template.path), template.under_test, tmp_path / "bake", cookiecutter_config)
    kept = apply_user_changes(project, shell)
    release = make_next_release(
        template, shell, lambda package: append(package / "llm.py", 'TEMPLATE_LLM_NOTE = "the release\'s line"\n')
    )

    cruft_update(project, shell)

    conflicted = assert_updated_cleanly(project, shell, kept, release)
    assert conflicted == [f"src/{SLUG}/llm.py"]
    assert NEXT_ENGINE_LINE in (project / "src" / SLUG / "engine" / "app.py").read_text(encoding="utf-8")
    resolve_conflicts(project, conflicted, shell)
    llm = (project / "src" / SLUG / "llm.py").read_text(encoding="utf-8")
    assert "TEMPLATE_LLM_NOTE" in llm and "MY_LLM_NOTE" in llm
    assert_project_works(project, shell, baked_python)


@pytest.mark.parametrize("form", ["local clone", "file:// URL"])
def test_cruft_create_from_a_clone_or_a_git_url(
    form: str, template: TemplateRepo, shell: Shell, tmp_path: Path, cookiecutter_config: Path
) -> None:
    """Both bake the same project as cookiecutter does, linked to the template for `cruft check`."""
    source = str(template.path) if form == "local clone" else template.path.as_uri()
    project = cruft_create(shell, source, template.under_test, tmp_path / "cruft", cookiecutter_config)
    plain = bake_into(tmp_path / "plain", cookiecutter_config, template.path)
    ours = {path.relative_to(project): path.read_bytes() for path in project_files(project)}
    theirs = {path.relative_to(plain): path.read_bytes() for path in project_files(plain)}
    assert ours.pop(Path(".cruft.json"))
    assert ours == theirs
    cruft_state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert cruft_state["commit"] == template.under_test
    cruft(shell, "check", "--project-dir", project, cwd=project)


def test_a_project_baked_with_cookiecutter_can_be_linked_and_updated(
    template: TemplateRepo, shell: Shell, tmp_path: Path, cookiecutter_config: Path
) -> None:
    """`cruft link` with the answers the project recorded in .bake-answers.json (docs/keeping-up.md): the link
    reproduces the bake exactly (`cruft diff` is empty), and the next release updates it cleanly."""
    answers = {"project_name": "Linked Desk", "project_slug": SLUG, "port": "8080", "include_dockerfile": False}
    project = bake_into(tmp_path / "plain", cookiecutter_config, template.path, **answers)
    shell.git(project, "init", "-q", "-b", "main")
    shell.commit_all(project, "baked with cookiecutter")
    recorded = (project / ".bake-answers.json").read_text(encoding="utf-8")
    cruft(shell, "link", template.path, "--project-dir", project, "--checkout", template.under_test, "--no-input",
          "--config-file", cookiecutter_config, "--extra-context", recorded, cwd=project)  # fmt: skip
    cruft(shell, "diff", "--project-dir", project, "--exit-code", cwd=project)
    shell.commit_all(project, "linked with cruft")
    release = make_next_release(template, shell, change_streaming_docstring)

    cruft_update(project, shell)

    assert_updated_cleanly(project, shell, {}, release, deleted=())
    assert files_with_conflicts(project, shell) == []
    assert NEXT_ENGINE_LINE in (project / "src" / SLUG / "engine" / "app.py").read_text(encoding="utf-8")
    assert not (project / "Dockerfile").exists(), "the recorded answers hold: no Dockerfile"
    assert "# Linked Desk" in (project / "README.md").read_text(encoding="utf-8")
    cruft(shell, "check", "--project-dir", project, cwd=project)


def test_a_project_of_the_previous_release_updates_to_this_one(
    template: TemplateRepo, shell: Shell, tmp_path: Path, cookiecutter_config: Path, baked_python: str | None
) -> None:
    """The user's real first update: baked at PREVIOUS_RELEASE, edited, updated to the template under test."""
    if PREVIOUS_RELEASE is None:
        pytest.skip("PREVIOUS_RELEASE is not set yet: no earlier commit has the engine/ layout and cruft support")
    found = shell.run("git", "rev-parse", "--verify", "--quiet", f"{PREVIOUS_RELEASE}^{{commit}}", cwd=template.path,
                      check=False)  # fmt: skip
    if found.returncode != 0:
        message = f"PREVIOUS_RELEASE {PREVIOUS_RELEASE} is not in this repository's history (a shallow clone?)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    previous = found.stdout.strip()
    project = cruft_create(shell, str(template.path), previous, tmp_path / "bake", cookiecutter_config)
    kept = apply_user_changes(project, shell)

    cruft_update(project, shell)

    # When the previous release holds the very template under test (CI at the release commit), cruft has nothing to
    # do and the project stays at that commit.
    same_tree = shell.git(template.path, "rev-parse", f"{previous}^{{tree}}", f"{template.under_test}^{{tree}}")
    expected_commit = previous if len(set(same_tree.split())) == 1 else template.under_test
    conflicted = assert_updated_cleanly(project, shell, kept, Release(expected_commit, template_version(template.path)))
    resolve_conflicts(project, conflicted, shell)
    cruft(shell, "check", "--project-dir", project, cwd=project)
    assert_project_works(project, shell, baked_python)

"""Bake every supported combination of answers and check the result is a finished, lint-clean project."""

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from baking import TEMPLATE_DIR, bake_into

TEMPLATE_DEFAULTS: dict[str, Any] = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
TEMPLATE_VERSION: str = TEMPLATE_DEFAULTS["_template_version"]

DEFAULT_ANSWERS: dict[str, Any] = {
    "project_name": "Haystack Service",
    "project_slug": "haystack_service",
    "description": TEMPLATE_DEFAULTS["description"],
    "author_name": TEMPLATE_DEFAULTS["author_name"],
    "author_email": TEMPLATE_DEFAULTS["author_email"],
    "port": "1416",  # cookiecutter renders every non-boolean answer to a string
    "include_dockerfile": True,
}

# Text that must survive TOML and JSON quoting unchanged.
AWKWARD_TEXT = 'Answers "why?" with C:\\path\\ and \'quotes\' - ünïcode 🚀 """ \\'

# Unrendered Jinja, and `cookiecutter.<name>` left by a variable outside any Jinja block.
JINJA_MARKERS = ("{{", "{%")
COOKIECUTTER_VARIABLE = re.compile(r"cookiecutter\.[A-Za-z_]")
RAW_BLOCK = re.compile(r"\{%-? *raw *-?%\}")
SLUG_IN_TEMPLATE_PATHS = "{{cookiecutter.project_slug}}"
CACHE_FOLDERS = frozenset({"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"})


@dataclass(frozen=True)
class Combination:
    """One way to answer the template's questions, with the answers the baked project should record."""

    name: str
    extra_context: dict[str, Any]
    expected_answers: dict[str, Any]


COMBINATIONS = [
    Combination("defaults", {}, DEFAULT_ANSWERS),
    Combination(
        "without-dockerfile",
        {"include_dockerfile": False},
        DEFAULT_ANSWERS | {"include_dockerfile": False},
    ),
    Combination(
        "derived-slug-and-custom-port",
        {"project_name": "Acme Chat-Bot", "port": 8080},
        DEFAULT_ANSWERS | {"project_name": "Acme Chat-Bot", "project_slug": "acme_chat_bot", "port": "8080"},
    ),
    Combination(
        "everything-custom",
        {
            "project_name": "Support Desk",
            "project_slug": "support_desk_api",
            "description": AWKWARD_TEXT,
            "author_name": 'Ada O\'Brien "Lovelace"',
            "author_email": "ada@example.org",
            "port": "9000",
            "include_dockerfile": "no",
        },
        {
            "project_name": "Support Desk",
            "project_slug": "support_desk_api",
            "description": AWKWARD_TEXT,
            "author_name": 'Ada O\'Brien "Lovelace"',
            "author_email": "ada@example.org",
            "port": "9000",
            "include_dockerfile": False,
        },
    ),
    Combination(
        "dockerfile-as-yes-and-highest-port",
        {"include_dockerfile": "yes", "port": 65535},
        DEFAULT_ANSWERS | {"port": "65535"},
    ),
]


@dataclass(frozen=True)
class BakedProject:
    """A baked project folder and the answers it was baked with."""

    path: Path
    answers: dict[str, Any]

    @property
    def slug(self) -> str:
        return self.answers["project_slug"]

    @property
    def port(self) -> str:
        return self.answers["port"]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=[combination.name for combination in COMBINATIONS])
def baked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path
) -> BakedProject:
    """Bake each combination once and share it between the checks below."""
    combination: Combination = request.param
    output_dir = tmp_path_factory.mktemp(combination.name)
    project_dir = bake_into(output_dir, cookiecutter_config, **combination.extra_context)
    return BakedProject(project_dir, combination.expected_answers)


def text_files(project_dir: Path) -> list[tuple[Path, str]]:
    """Every UTF-8 text file of the project with its content (tool caches from a local checkout skipped)."""
    found = []
    for path in sorted(project_dir.rglob("*")):
        if not path.is_file() or CACHE_FOLDERS.intersection(path.parts):
            continue
        try:
            found.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return found


def copied_without_render(relative: Path, slug: str) -> bool:
    """Whether cookiecutter copies this baked file raw, by the template's own `_copy_without_render` patterns.

    The patterns match template paths, so the slug goes back to its Jinja name; a matching folder covers its files.
    """
    template_parts = [SLUG_IN_TEMPLATE_PATHS if part == slug else part for part in relative.parts]
    prefixes = ["/".join(template_parts[: length + 1]) for length in range(len(template_parts))]
    patterns = TEMPLATE_DEFAULTS["_copy_without_render"]
    return any(fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


def run_ruff(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the same ruff this interpreter has, with the baked project's own configuration."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    )


def test_project_folder_is_named_after_slug(baked: BakedProject) -> None:
    assert baked.path.name == baked.slug
    assert (baked.path / "src" / baked.slug).is_dir()


def keeps_jinja_on_purpose(relative: Path, slug: str) -> bool:
    """Whether the template file behind this baked file wraps text in `{% raw %}`: Haystack's own Jinja prompts in a
    file that is rendered for the rest (the engine tests' frozen examples import the package by its name)."""
    template_parts = [SLUG_IN_TEMPLATE_PATHS if part == slug else part for part in relative.parts]
    source = TEMPLATE_DIR / SLUG_IN_TEMPLATE_PATHS / Path(*template_parts)
    return source.is_file() and RAW_BLOCK.search(source.read_text(encoding="utf-8")) is not None


def test_no_template_syntax_left(baked: BakedProject) -> None:
    """Files copied raw on purpose (src/ and docs/, which may hold Haystack's own Jinja prompts) and files that keep a
    `{% raw %}` block may contain braces; no file may mention a cookiecutter variable, and no other rendered file
    may keep Jinja markup."""
    leftovers = []
    for path, text in text_files(baked.path):
        relative = path.relative_to(baked.path)
        if COOKIECUTTER_VARIABLE.search(text):
            leftovers.append(f"{relative}: cookiecutter variable")
        rendered = not copied_without_render(relative, baked.slug)
        if rendered and not keeps_jinja_on_purpose(relative, baked.slug) and any(m in text for m in JINJA_MARKERS):
            leftovers.append(f"{relative}: Jinja markup")
    assert not leftovers, leftovers


def test_file_and_folder_names_are_rendered(baked: BakedProject) -> None:
    unrendered = [str(path) for path in baked.path.rglob("*") if "{" in path.name or "}" in path.name]
    assert not unrendered


def test_answers_and_template_version_are_recorded(baked: BakedProject) -> None:
    """The answers, for `cruft link --extra-context`, and the release; no other private key (cookiecutter's are
    absolute paths of the machine that baked)."""
    recorded = json.loads((baked.path / ".bake-answers.json").read_text(encoding="utf-8"))
    assert recorded == baked.answers | {"_template_version": TEMPLATE_VERSION}


def test_readme_names_the_template_version(baked: BakedProject) -> None:
    readme = (baked.path / "README.md").read_text(encoding="utf-8")
    assert f"template version {TEMPLATE_VERSION}" in readme
    assert "](CHANGELOG.md)" in readme and "](docs/keeping-up.md)" in readme


def test_changelog_ships_with_an_entry_for_this_release(baked: BakedProject) -> None:
    changelog = (baked.path / "CHANGELOG.md").read_text(encoding="utf-8")
    entries = re.findall(r"^## (\S+)$", changelog, re.MULTILINE)
    released = entries[1:] if entries[:1] == ["Unreleased"] else entries  # what main has gathered since, on top
    assert released and released[0] == TEMPLATE_VERSION, "the newest release comes first and is this one"
    assert "merge by hand:" in changelog


def test_updates_never_touch_env_or_data(baked: BakedProject) -> None:
    """cruft reads `[tool.cruft] skip` from the project's own pyproject.toml at each update."""
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert {".env", "data"} <= set(pyproject["tool"]["cruft"]["skip"])


def test_the_template_version_agrees_with_the_engine() -> None:
    """Bakes record cookiecutter.json's `_template_version`; the engine states it as TEMPLATE_VERSION: one release."""
    engine = TEMPLATE_DIR / SLUG_IN_TEMPLATE_PATHS / "src" / SLUG_IN_TEMPLATE_PATHS / "engine" / "__init__.py"
    stated = re.findall(r'^TEMPLATE_VERSION = "([^"]+)"$', engine.read_text(encoding="utf-8"), re.MULTILINE)
    assert stated == [TEMPLATE_VERSION]
    assert re.fullmatch(r"\d+\.\d+\.\d+", TEMPLATE_VERSION)


def test_container_files_match_choice(baked: BakedProject) -> None:
    wanted = baked.answers["include_dockerfile"]
    assert (baked.path / "Dockerfile").exists() is wanted
    assert (baked.path / ".dockerignore").exists() is wanted


def test_dockerfile_serves_the_package_on_the_port(baked: BakedProject) -> None:
    if not baked.answers["include_dockerfile"]:
        pytest.skip("this combination has no Dockerfile")
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    command = json.loads(dockerfile.split("CMD ", 1)[1].splitlines()[0])
    assert command == [
        "hypercorn",
        f"{baked.slug}.asgi:app",
        "--config",
        "hypercorn.toml",
        "--bind",
        f"0.0.0.0:{baked.port}",
    ]
    assert f"EXPOSE {baked.port}\n" in dockerfile
    assert "HAYSTACK_TELEMETRY_ENABLED=False" in dockerfile
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.MULTILINE)


def test_local_env_is_created_from_example(baked: BakedProject) -> None:
    example = baked.path / ".env.example"
    assert example.is_file()
    assert (baked.path / ".env").read_text(encoding="utf-8") == example.read_text(encoding="utf-8")


def test_port_is_configured(baked: BakedProject) -> None:
    hypercorn_config = tomllib.loads((baked.path / "hypercorn.toml").read_text(encoding="utf-8"))
    assert hypercorn_config["bind"] == f"127.0.0.1:{baked.port}"
    env_example = (baked.path / ".env.example").read_text(encoding="utf-8")
    # Set, or shown as the commented-out default.
    assert re.search(rf"^(# ?)?PORT={baked.port}$", env_example, re.MULTILINE)


def test_pyproject_metadata(baked: BakedProject) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert project["name"] == baked.slug
    assert project["description"] == baked.answers["description"]
    assert project["scripts"] == {baked.slug: f"{baked.slug}.__main__:main"}
    assert project["authors"] == [{"name": baked.answers["author_name"], "email": baked.answers["author_email"]}]


@pytest.mark.parametrize("name", ["pyproject.toml", "hypercorn.toml"])
def test_template_toml_is_valid_before_rendering(name: str) -> None:
    """So ruff (and a reader's editor) can use the generated project's settings inside the template folder."""
    tomllib.loads((TEMPLATE_DIR / SLUG_IN_TEMPLATE_PATHS / name).read_text(encoding="utf-8"))


def test_ruff_check_passes(baked: BakedProject) -> None:
    result = run_ruff(baked.path, "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes(baked: BakedProject) -> None:
    result = run_ruff(baked.path, "format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr

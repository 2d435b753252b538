"""Every pointer a baked project holds resolves in it: its docs are there, and so are their links' targets.

The documentation lives in the project template (`{{cookiecutter.project_slug}}/docs/`, copied without rendering),
so a baked project carries it as it is and `cruft update` keeps it current; the template's README links into that
folder. Also what the template's pages promise a newcomer: bake commands without a placeholder organisation.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from baking import TEMPLATE_DIR, bake_into

DOCS_MENTION = re.compile(r"(?<![\w./-])docs/([\w./-]+?\.md)\b")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} +(.+?) *#* *$", re.MULTILINE)
SKIPPED_FOLDERS = frozenset({".git", "__pycache__", ".ruff_cache", ".pytest_cache", ".venv", "data"})
PLACEHOLDER_ORG = re.compile(
    r"(?:gh:|gl:|bb:|github\.com/)(?:<[^>]*>|org|your[-\w]*|user|username|example[-\w]*|acme|my-?org)/", re.I
)
BAKE_COMMAND = re.compile(r"\b(?:cookiecutter|cruft +create|cruft +link) +(\S+)")
PROJECT_DOCS = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "docs"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Path:
    return bake_into(tmp_path_factory.mktemp("doc_pointers"), cookiecutter_config)


def text_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts):
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            found.append(path)
    return found


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    text = FENCED_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return {github_anchor(heading) for heading in HEADING.findall(text)}


def broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown page whose file (or heading) does not exist."""
    broken = []
    for target in MARKDOWN_LINK.findall(FENCED_BLOCK.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            broken.append(f"{target}: no such heading")
    return broken


def files_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_the_project_carries_its_docs_as_they_are(project: Path) -> None:
    """Every page and image of the project template's docs/, byte for byte: Haystack's Jinja prompts in the pages
    must not be rendered, and nothing is added or left out."""
    assert files_under(project / "docs") == files_under(PROJECT_DOCS)
    assert "benchmark.md" not in files_under(project / "docs"), "the benchmark report stays with the template"


def test_every_docs_mention_names_a_page_the_project_has(project: Path) -> None:
    """`docs/<name>.md` in a comment, docstring, setting or page exists in the project."""
    missing = [
        f"{path.relative_to(project)}: docs/{name}"
        for path in text_files(project)
        for name in DOCS_MENTION.findall(path.read_text(encoding="utf-8"))
        if not (project / "docs" / name).is_file()
    ]
    assert not missing, missing


def test_every_relative_link_of_the_readme_and_docs_resolves(project: Path) -> None:
    pages = [project / "README.md", *sorted((project / "docs").rglob("*.md"))]
    broken = [f"{page.relative_to(project)}: {link}" for page in pages for link in broken_links(page)]
    assert not broken, broken


def test_the_readme_links_every_page(project: Path) -> None:
    readme = (project / "README.md").read_text(encoding="utf-8")
    unlinked = [page.name for page in (project / "docs").glob("*.md") if f"](docs/{page.name})" not in readme]
    assert not unlinked, unlinked


def template_pages() -> list[Path]:
    """The pages a reader of this repository follows: its README, its own docs/ (the benchmark) and the project's."""
    return [
        TEMPLATE_DIR / "README.md",
        *sorted((TEMPLATE_DIR / "docs").glob("*.md")),
        *sorted(PROJECT_DOCS.glob("*.md")),
    ]


def test_the_templates_own_links_resolve() -> None:
    """The same check on the template's README and docs, as a reader of this repository follows them."""
    broken = [f"{page.relative_to(TEMPLATE_DIR)}: {link}" for page in template_pages() for link in broken_links(page)]
    assert not broken, broken


def test_the_templates_readme_points_into_the_projects_docs() -> None:
    """The documentation is the project's: the README links its index and the upgrade page there, and the only
    page left in the template's own docs/ is the benchmark report."""
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    links = set(MARKDOWN_LINK.findall(FENCED_BLOCK.sub("", readme)))
    assert "{{cookiecutter.project_slug}}/docs/README.md" in links
    assert "{{cookiecutter.project_slug}}/docs/keeping-up.md" in links
    assert [path.name for path in (TEMPLATE_DIR / "docs").iterdir()] == ["benchmark.md"]
    stale = [link for link in links if link.startswith("docs/") and link != "docs/benchmark.md"]
    assert not stale, f"links to pages that moved into the project's docs/: {stale}"


def test_bake_commands_name_no_placeholder_organisation() -> None:
    commands = [
        (page.relative_to(TEMPLATE_DIR).as_posix(), argument)
        for page in template_pages()
        for argument in BAKE_COMMAND.findall(page.read_text(encoding="utf-8"))
    ]
    assert any(name == "README.md" for name, _ in commands), "the README says how to bake"
    assert any(name.endswith("keeping-up.md") for name, _ in commands), "keeping-up.md says how to bake with cruft"
    placeholders = [f"{name}: {argument}" for name, argument in commands if PLACEHOLDER_ORG.search(argument)]
    assert not placeholders, placeholders


def test_a_bake_from_a_relative_template_path_carries_the_docs(tmp_path: Path, cookiecutter_config: Path) -> None:
    """`cookiecutter .` in the template, as a newcomer types it: the docs come with the project template, wherever
    cookiecutter was started from (a post-generation hook once copied them and lost the relative path)."""
    cookiecutter_cli = Path(sys.executable).parent / "cookiecutter"
    command = [str(cookiecutter_cli), ".", "--no-input", "--output-dir", str(tmp_path), "--config-file"]
    baked = subprocess.run(
        [*command, str(cookiecutter_config)], cwd=TEMPLATE_DIR, env=dict(os.environ), capture_output=True, text=True
    )
    assert baked.returncode == 0, baked.stderr[-2000:]
    (project,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert files_under(project / "docs") == files_under(PROJECT_DOCS)

"""The baked project's constraints.txt: the versions CI tested, one `==` pin per package, inside pyproject's ranges.

`make constraints` writes it (a fresh bake, `pip install -e '.[dev]'`, `pip freeze`); the baked README installs
with it; tests/test_baked_suite.py installs with it, and without it for the newest versions the ranges allow.
"""

import tomllib
from pathlib import Path

import pytest
from baking import TEMPLATE_DIR, bake_into
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

TEMPLATE_CONSTRAINTS = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "constraints.txt"
PINNED_INSTALL = "pip install -c constraints.txt -e '.[dev]'"
# The extras whose packages the file must pin: `dev` is what the README installs; `pdf` is the files_qa example's.
PINNED_EXTRAS = ("dev", "pdf")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Path:
    """The default project, baked once for this module."""
    return bake_into(tmp_path_factory.mktemp("constraints"), cookiecutter_config)


def pins(constraints_file: Path) -> dict[str, Version]:
    """Each `name==version` line by canonical name; any other kind of line (a range, an URL, a repeat) fails."""
    pinned: dict[str, Version] = {}
    for number, raw in enumerate(constraints_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"line {number} is not a `==` pin: {raw!r}"
        assert not requirement.url and not requirement.marker and not requirement.extras, f"line {number}: {raw!r}"
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"line {number} pins {requirement.name} a second time"
        pinned[name] = Version(specifiers[0].version)
    return pinned


def declared_requirements(project: Path) -> list[Requirement]:
    """The runtime dependencies and the pinned extras' dependencies of the baked pyproject.toml."""
    table = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(table["dependencies"])
    for extra in PINNED_EXTRAS:
        declared += table["optional-dependencies"][extra]
    return [Requirement(line) for line in declared]


def test_the_bake_carries_the_file_unchanged(project: Path) -> None:
    baked = project / "constraints.txt"
    assert baked.is_file()
    assert baked.read_bytes() == TEMPLATE_CONSTRAINTS.read_bytes(), "cookiecutter's rendering changed constraints.txt"


def test_the_header_says_what_it_is_and_how_it_is_made(project: Path) -> None:
    text = (project / "constraints.txt").read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "CI tested" in header
    assert PINNED_INSTALL.removeprefix("pip ") in header
    assert "cruft update" in header
    assert "make constraints" in header


def test_every_declared_dependency_is_pinned_inside_its_range(project: Path) -> None:
    pinned = pins(project / "constraints.txt")
    requirements = declared_requirements(project)
    assert {canonicalize_name(r.name) for r in requirements} >= {"haystack-ai", "quart", "hypercorn", "openai", "pypdf"}
    missing = sorted(r.name for r in requirements if canonicalize_name(r.name) not in pinned)
    assert not missing, f"not in constraints.txt (run `make constraints`): {missing}"
    outside = [
        f"{r.name}=={pinned[canonicalize_name(r.name)]} is outside {r.specifier}"
        for r in requirements
        if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"pins outside pyproject.toml's ranges (run `make constraints`): {outside}"


def test_the_pins_include_the_packages_the_engine_leans_on(project: Path) -> None:
    # Transitive ones too (pydantic-core, httpx, ...): the file is pip's whole resolution, not only the direct ones.
    pinned = pins(project / "constraints.txt")
    assert {"pydantic-core", "httpx", "jinja2", "werkzeug"} <= pinned.keys()


def test_the_readme_installs_with_the_constraints(project: Path) -> None:
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert PINNED_INSTALL in readme, f"the baked README's install should be `{PINNED_INSTALL}`"


def test_the_dockerfile_installs_with_the_constraints(project: Path) -> None:
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    copied = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert any("constraints.txt" in sources for sources in copied), "the image build never copies constraints.txt"
    installs = [line for line in dockerfile.splitlines() if line.startswith("RUN pip install")]
    assert installs and all("-c constraints.txt" in line for line in installs), installs


def test_make_constraints_regenerates_the_file() -> None:
    makefile = (TEMPLATE_DIR / "Makefile").read_text(encoding="utf-8")
    assert "\nconstraints:" in makefile
    assert "{{cookiecutter.project_slug}}/constraints.txt" in makefile

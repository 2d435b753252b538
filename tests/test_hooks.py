"""The hooks treat answers as data, and the pre-generation hook refuses answers that would bake a broken project."""

import ast
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from baking import TEMPLATE_DIR
from cookiecutter.exceptions import FailedHookException
from cookiecutter.utils import create_env_with_context

HOOK_FILES = sorted((TEMPLATE_DIR / "hooks").glob("*.py"))

# Characters that end or escape Python and JSON string literals, or break lines.
DANGEROUS_CHARACTERS = "\"'\\\n\r\t\x00\x1b\u2028\ud800{}%#;é🚀"


def hostile_strings() -> list[str]:
    """Hand-picked literal breakers plus reproducible random mixes of dangerous characters."""
    picked = [
        '"',
        '"""',
        "'''",
        "\\",
        '\\"',
        '\\"""',
        'x"""); import os; os.system("false") #',
        "a'''\nimport os\n'''",
        "ends with a backslash\\",
        "{{ cookiecutter.project_slug }}",
    ]
    rng = random.Random(20240601)
    mixed = ["".join(rng.choice(DANGEROUS_CHARACTERS) for _ in range(rng.randint(1, 12))) for _ in range(200)]
    return picked + mixed


def answers_embedded_in(hook_file: Path, answers: dict[str, Any]) -> Any:
    """Render a hook the way cookiecutter does and read back the value its ANSWERS assignment would load."""
    context = {"cookiecutter": answers}
    source = create_env_with_context(context).from_string(hook_file.read_text(encoding="utf-8")).render(**context)
    module = ast.parse(source)
    for statement in module.body:
        if isinstance(statement, ast.AnnAssign) and ast.unparse(statement.target) == "ANSWERS":
            call = statement.value
            assert isinstance(call, ast.Call) and ast.unparse(call.func) == "json.loads"
            return json.loads(ast.literal_eval(call.args[0]))
    raise AssertionError(f"{hook_file.name} has no ANSWERS = json.loads(...) assignment")


@pytest.mark.parametrize("hook_file", HOOK_FILES, ids=[path.name for path in HOOK_FILES])
def test_every_answer_reaches_the_hook_unchanged(hook_file: Path) -> None:
    for text in hostile_strings():
        answers = {"project_slug": text, "description": text, "port": text, "include_dockerfile": False}
        assert answers_embedded_in(hook_file, answers) == answers, repr(text)


# Slugs that would run code creating {marker} if a hook pasted them into its source.
INJECTIONS = [
    'x"; import os; os.system("touch {marker}") #',
    'x"""; import os; os.system("touch {marker}") #',
    "x'''\nimport os; os.system('touch {marker}')\n'''",
    'x\\"; import os; os.system("touch {marker}") #',
]


BAD_SLUGS = [
    "1abc",
    "class",
    "my-slug",
    "a b",
    "haystack",
    "quart",
    "hypercorn",
    "pydantic",
    "dotenv",
    "openai",
    "json",
    "asyncio",
    "logging",
    "typing",
    "tests",
    "_private",
    "test_service",
    "Upper",
    "café",
    'x"; import os; os.chdir(".."); open("pwned", "w") #',
]


def files_left_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def assert_rejected(
    bake: Callable[..., Path], capfd: pytest.CaptureFixture[str], output_dir: Path, answer_name: str, **answers: Any
) -> None:
    """The bake fails with one stderr line naming the answer, and leaves no generated files behind."""
    with pytest.raises(FailedHookException):
        bake(**answers)
    error_lines = capfd.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1, error_lines
    assert error_lines[0].startswith(f"ERROR: {answer_name} "), error_lines
    assert files_left_in(output_dir) == []


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_bad_slug_is_rejected(
    slug: str, bake: Callable[..., Path], capfd: pytest.CaptureFixture[str], output_dir: Path
) -> None:
    assert_rejected(bake, capfd, output_dir, "project_slug", project_slug=slug)
    assert list(output_dir.iterdir()) == [], "the half-made project folder must be removed"


@pytest.mark.parametrize("injection", INJECTIONS)
def test_injected_slug_never_runs(
    injection: str, bake: Callable[..., Path], capfd: pytest.CaptureFixture[str], output_dir: Path, tmp_path: Path
) -> None:
    """A slug holding a path makes cookiecutter create nested folders before the hook runs; it removes only the
    innermost one on failure, so empty parent folders may stay. No file may, and the payload must never run."""
    marker = tmp_path / "pwned"
    assert_rejected(bake, capfd, output_dir, "project_slug", project_slug=injection.format(marker=marker))
    assert not marker.exists(), "code from the slug ran"


def generated_test_module_names() -> list[str]:
    """Modules and packages the generated tests import by bare name: those of tests/ and of every folder in it that
    is not a package (pytest puts such folders on sys.path, and the engine tests' conftest puts tests/engine/)."""
    names: set[str] = set()
    folders = [TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "tests"]
    while folders:
        folder = folders.pop()
        for path in folder.iterdir():
            if path.suffix == ".py":
                names.add(path.stem)
            elif (path / "__init__.py").is_file():
                names.add(path.name)
            elif path.is_dir() and path.name != "__pycache__":
                folders.append(path)
    return sorted(names)


@pytest.mark.parametrize("module_name", generated_test_module_names())
def test_generated_test_module_names_are_refused(
    module_name: str, bake: Callable[..., Path], capfd: pytest.CaptureFixture[str], output_dir: Path
) -> None:
    assert_rejected(bake, capfd, output_dir, "project_slug", project_slug=module_name)


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "08080", " 8080", "80a", "http", "1e3", "", 0])
def test_bad_port_is_rejected(
    port: Any, bake: Callable[..., Path], capfd: pytest.CaptureFixture[str], output_dir: Path
) -> None:
    assert_rejected(bake, capfd, output_dir, "port", port=port)


@pytest.mark.parametrize(
    ("answer_name", "value"),
    [
        ("project_name", "Two\nLines"),
        ("description", "first line\nsecond line"),
        ("author_name", "Nul\x00Byte"),
        ("description", "bidi \u202e override"),
        ("description", "lone \ud800 surrogate"),
        ("author_name", ""),
        ("author_email", ""),
        ("author_email", "not-an-email"),
        ("author_email", "a@b"),
    ],
)
def test_bad_free_text_is_rejected(
    answer_name: str,
    value: str,
    bake: Callable[..., Path],
    capfd: pytest.CaptureFixture[str],
    output_dir: Path,
) -> None:
    # An explicit slug, so a bad project_name is not first reported through the slug derived from it.
    assert_rejected(bake, capfd, output_dir, answer_name, project_slug="fine_slug", **{answer_name: value})


@pytest.mark.parametrize(
    "answers",
    [
        {"project_slug": "a"},
        {"project_slug": "svc2_v3"},
        {"project_name": "Chat 2-Go"},
        {"port": "1"},
        {"port": 65535},
        {"author_name": 'Zoë \\ "Q" O\'Hara', "author_email": "zoe+svc@example.co.uk"},
    ],
    ids=str,
)
def test_edge_answers_are_accepted(answers: dict[str, Any], bake: Callable[..., Path]) -> None:
    assert (bake(**answers) / "pyproject.toml").is_file()

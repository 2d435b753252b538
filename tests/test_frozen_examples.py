"""The engine tests' frozen examples are this release's examples, and the examples import the engine only through
its public surface (`from ..engine import ...`), as the docs teach users to."""

import ast

import pytest
from freeze_examples import FROZEN, SOURCE, frozen_copies

USER_CODE = sorted([*(SOURCE / "wrappers").glob("*.py"), SOURCE / "streaming.py", SOURCE / "llm.py"])


def test_the_frozen_examples_are_up_to_date() -> None:
    expected = frozen_copies()
    stale = [name for name, text in expected.items() if (FROZEN / name).read_text(encoding="utf-8") != text]
    extra = sorted(path.name for path in FROZEN.glob("*.py") if path.name not in {*expected, "__init__.py"})
    assert not stale and not extra, (
        f"out of date: {stale}, no longer an example: {extra}; run `make freeze-examples` and commit the result"
    )


@pytest.mark.parametrize("path", USER_CODE, ids=lambda path: path.name)
def test_the_shipped_user_files_import_the_engine_through_its_surface(path) -> None:
    below = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0 and (node.module or "").startswith("engine.")
    ]
    assert not below, f"import from `engine`, not from a module below it: {below}"

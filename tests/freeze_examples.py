"""Write the engine tests' frozen copies of the examples: `python tests/freeze_examples.py` (or `make freeze-examples`).

The baked project's `tests/engine/examples/` serves the example wrappers, `llm.py` and `streaming.py` as this
release ships them, so that the engine's tests never depend on the user's copies (which they edit or delete).
Each release refreshes them from `src/`; `test_frozen_examples.py` fails while they are out of date.
"""

import ast
import re
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
SOURCE = PROJECT / "src" / "{{cookiecutter.project_slug}}"
FROZEN = PROJECT / "tests" / "engine" / "examples"
PACKAGE = "{{ cookiecutter.project_slug }}"
JINJA = ("{{", "{%", "{#")


def frozen_module(text: str, parents: str) -> str:
    """One user module as a module of the examples package: the engine by its absolute name, the user's helpers
    by their frozen copies (`_llm`, `_streaming`), and a Jinja body (Haystack prompts) kept from cookiecutter."""
    text = re.sub(rf"^from {parents}engine import", f"from {PACKAGE}.engine import", text, flags=re.M)
    text = re.sub(rf"^from {parents}(llm|streaming) import", r"from ._\1 import", text, flags=re.M)
    if re.search(r"^from \.\.", text, flags=re.M):
        raise ValueError("an import reaches above the package: only the engine, llm and streaming can be frozen")
    # isort puts the package's own modules (`._llm`) in a section of their own, after the first-party one.
    text = re.sub(r"^(from \._(?:llm|streaming) import)", r"\n\1", text, count=1, flags=re.M)
    if not any(mark in text.replace(PACKAGE, "") for mark in JINJA):
        return text
    tree = ast.parse(text.replace(PACKAGE, "package"))
    last_import = max(node.end_lineno or 0 for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    lines = text.splitlines(keepends=True)
    head, body = "".join(lines[:last_import]), "".join(lines[last_import:])
    return head + "{% raw %}" + body.rstrip("\n") + "\n{%- endraw %}\n"


def frozen_copies() -> dict[str, str]:
    """File name in `tests/engine/examples/` -> its text, made from the template's current `src/`."""
    copies = {
        path.name: frozen_module(path.read_text(encoding="utf-8"), r"\.\.")
        for path in sorted((SOURCE / "wrappers").glob("*.py"))
        if path.name != "__init__.py"
    }
    copies["_llm.py"] = frozen_module((SOURCE / "llm.py").read_text(encoding="utf-8"), r"\.")
    copies["_streaming.py"] = frozen_module((SOURCE / "streaming.py").read_text(encoding="utf-8"), r"\.")
    return copies


def main() -> int:
    for name, text in frozen_copies().items():
        (FROZEN / name).write_text(text, encoding="utf-8")
        print(f"wrote {(FROZEN / name).relative_to(TEMPLATE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The template README's shell blocks: each is marked as not run, or is a command the baked docs run.

The baked project's tests/engine/test_docs.py runs every block of its README and docs against a live service;
this README is not in a bake, so its commands are copies of ones there (a block here that is found in no run
block of the baked docs fails), or say in their first line why they are not run.
"""

import re

from baking import TEMPLATE_DIR

PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"^\s*#\s*(excerpt|not run)\b", re.IGNORECASE)


def shell_blocks(text: str) -> list[str]:
    return SHELL_BLOCK.findall(text)


def test_every_shell_block_is_run_in_the_baked_docs_or_marked() -> None:
    baked_pages = [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]
    run_there = [
        block
        for page in baked_pages
        for block in shell_blocks(page.read_text(encoding="utf-8"))
        if not NOT_RUN.match(block)
    ]
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    blocks = shell_blocks(readme)
    assert blocks, "the README's shell blocks were not found"
    orphans = [block for block in blocks if not NOT_RUN.match(block) and block not in run_there]
    assert not orphans, f"neither marked `# not run` nor a block the baked docs run: {orphans}"

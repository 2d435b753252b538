"""Finish the baked project: drop the container files if not wanted, give it a local .env, copy in the docs.

Answers arrive as JSON inside a raw string; see pre_gen_project.py for why that is safe.
"""

import json
import os
import shutil
import sys
from pathlib import Path

ANSWERS: dict[str, object] = json.loads(
    r"""
{{ cookiecutter | jsonify }}
"""
)

CONTAINER_FILES = ("Dockerfile", ".dockerignore")
# Pages about the template itself, which the project does not carry (the benchmark harness in bench/).
TEMPLATE_ONLY_DOCS = ("benchmark.md",)


def remove_container_files(project_dir: Path) -> None:
    """Delete the Docker build files so a project without containers carries no dead config."""
    for name in CONTAINER_FILES:
        (project_dir / name).unlink(missing_ok=True)


def create_local_env(project_dir: Path) -> None:
    """Copy .env.example to .env so the service starts at once; never overwrite a user's .env."""
    example, local = project_dir / ".env.example", project_dir / ".env"
    if example.is_file() and not local.exists():
        shutil.copyfile(example, local)


def copy_docs(project_dir: Path, template_dir: Path) -> None:
    """Give the project the template's docs/, which its README and code comments point to.

    Copied at bake time, not kept in the project template: one source for both, and copied as is, since the
    pages show Haystack's own Jinja prompts that cookiecutter would render.
    """
    source = template_dir / "docs"
    ignore = shutil.ignore_patterns(*TEMPLATE_ONLY_DOCS)
    shutil.copytree(source, project_dir / "docs", ignore=ignore, dirs_exist_ok=True)


def main() -> int:
    """Run in the baked project's folder, as cookiecutter does for post-generation hooks."""
    project_dir = Path.cwd()
    if ANSWERS["include_dockerfile"] is not True:
        remove_container_files(project_dir)
    create_local_env(project_dir)
    copy_docs(project_dir, template_dir(str(ANSWERS["_repo_dir"])))
    return 0


def template_dir(repo_dir: str) -> Path:
    """The template's folder. cookiecutter gives it as it was typed (`cookiecutter .`), relative to where it was
    started, while this hook runs in the baked project: a relative one is found from the shell's PWD, or from
    the folder cookiecutter itself is in while it runs the hook (Linux's /proc)."""
    given = Path(repo_dir)
    if given.is_absolute():
        return given
    candidates = [Path(os.environ["PWD"]) / given] if os.environ.get("PWD") else []
    candidates.append(Path(f"/proc/{os.getppid()}/cwd"))  # cookiecutter runs its hooks from inside the template
    for candidate in candidates:
        if (candidate / "docs").is_dir() and (candidate / "cookiecutter.json").is_file():
            return candidate.resolve()
    sys.exit(f"Cannot find the template's docs/ from {repo_dir!r}: run cookiecutter with the template's full path.")


if __name__ == "__main__":
    sys.exit(main())

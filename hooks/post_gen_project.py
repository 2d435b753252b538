"""Finish the baked project: drop the container files if not wanted, give it a local .env.

Answers arrive as JSON inside a raw string; see pre_gen_project.py for why that is safe.
"""

import json
import shutil
import sys
from pathlib import Path

ANSWERS: dict[str, object] = json.loads(
    r"""
{{ cookiecutter | jsonify }}
"""
)

CONTAINER_FILES = ("Dockerfile", ".dockerignore")


def remove_container_files(project_dir: Path) -> None:
    """Delete the Docker build files so a project without containers carries no dead config."""
    for name in CONTAINER_FILES:
        (project_dir / name).unlink(missing_ok=True)


def create_local_env(project_dir: Path) -> None:
    """Copy .env.example to .env so the service starts at once; never overwrite a user's .env."""
    example, local = project_dir / ".env.example", project_dir / ".env"
    if example.is_file() and not local.exists():
        shutil.copyfile(example, local)


def main() -> int:
    """Run in the baked project's folder, as cookiecutter does for post-generation hooks."""
    project_dir = Path.cwd()
    if ANSWERS["include_dockerfile"] is not True:
        remove_container_files(project_dir)
    create_local_env(project_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

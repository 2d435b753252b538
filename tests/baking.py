"""Bake the template with cookiecutter's Python API, as `cookiecutter --no-input` would."""

from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parent.parent


def bake_into(output_dir: Path, config_file: Path, template_dir: Path = TEMPLATE_DIR, **extra_context: Any) -> Path:
    """Bake `template_dir` (this checkout unless told) into `output_dir` with `extra_context` answers; return the
    project folder."""
    project_dir = cookiecutter(
        str(template_dir),
        no_input=True,
        extra_context=extra_context,
        output_dir=str(output_dir),
        config_file=str(config_file),
    )
    return Path(project_dir)

"""Jinja filters for the template, loaded by cookiecutter through `_extensions` in cookiecutter.json.

Cookiecutter puts the template folder on sys.path while it bakes, so this module is importable then.
"""

from cookiecutter.utils import simple_filter


@simple_filter
def toml_escape(text: str) -> str:
    """Escape text for the inside of a TOML basic string ("...").

    Written as `"{{ value | toml_escape }}"`, the template file stays valid TOML before rendering too,
    so ruff can read the generated project's settings straight from the template folder. Control
    characters are not handled here: the pre-generation hook rejects them in free-text answers.
    """
    return text.replace("\\", "\\\\").replace('"', '\\"')

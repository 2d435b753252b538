"""Reject answers that would bake a project which cannot install, import or serve.

Cookiecutter renders this file with Jinja before running it. The answers arrive as one JSON
document inside a raw triple-quoted string: JSON never puts three unescaped quotes in a row and
always pairs a backslash with the next character, exactly as a raw string does, so no answer can
end the string early and run as code. `json.loads` then turns it back into the exact values.
"""

import json
import keyword
import re
import sys

ANSWERS: dict[str, object] = json.loads(
    r"""
{{ cookiecutter | jsonify }}
"""
)

# Import names the generated project and its tests use (directly or through their dependencies),
# including the helper modules of the generated tests/ folders, which pytest (and tests/engine/conftest.py) put first
# on sys.path.
# A package with one of these names would shadow it, or be shadowed, and break at import time.
# tests/test_hooks.py checks that every module the generated tests import by bare name is refused.
DEPENDENCY_MODULES = frozenset(
    {
        "agents",
        "aiofiles",
        "anyio",
        "blinker",
        "cffi",
        "click",
        "conftest",
        "cookiecutter",
        "cryptography",
        "dotenv",
        "engines",
        "examples",
        "flask",
        "google",
        "griffe",
        "h11",
        "h2",
        "haystack",
        "haystack_experimental",
        "haystack_integrations",
        "httpcore",
        "httpcore2",
        "httpx",
        "httpx2",
        "hypercorn",
        "itsdangerous",
        "jinja2",
        "jsonschema",
        "jsonschema_path",
        "jwt",
        "lazy_object_proxy",
        "make_redis_fixture",
        "make_sqlite_fixture",
        "make_sqlite_fixture_2",
        "markupsafe",
        "mcp",
        "mcp_types",
        "multipart",
        "numpy",
        "obstore",
        "openai",
        "openai_schema",
        "openapi_schema_validator",
        "openapi_spec_validator",
        "openresponses_schema",
        "openresponses_types",
        "opentelemetry",
        "pathable",
        "pip",
        "pkg_resources",
        "priority",
        "prometheus_client",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "pytest_asyncio",
        "python_multipart",
        "quart",
        "redis",
        "remote_mcp_server",
        "requests",
        "rfc3339_validator",
        "ruff",
        "setuptools",
        "six",
        "src",
        "sse_starlette",
        "starlette",
        "support",
        "test",
        "tests",
        "typed_wrappers",
        "typing_extensions",
        "upstream",
        "uvicorn",
        "watchfiles",
        "websockets",
        "werkzeug",
        "wheel",
        "wsproto",
        "yaml",
    }
)

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
PORT_PATTERN = re.compile(r"[1-9][0-9]{0,4}")
FREE_TEXT_KEYS = ("project_name", "description", "author_name", "author_email")
REQUIRED_KEYS = ("project_name", "author_name", "author_email")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def slug_problem(slug: str) -> str | None:
    """Say why `slug` cannot name the generated package, or None when it can."""
    if not SLUG_PATTERN.fullmatch(slug):
        return (
            f"project_slug {slug!a} must start with a lowercase ASCII letter and contain only "
            "lowercase letters, digits and underscores"
        )
    if keyword.iskeyword(slug):
        return f"project_slug {slug!a} is a Python keyword"
    if slug in sys.stdlib_module_names:
        return f"project_slug {slug!a} would shadow the standard library module of the same name"
    if slug in DEPENDENCY_MODULES:
        return f"project_slug {slug!a} would shadow the {slug!a} module the project depends on"
    if slug.startswith("test_"):
        return f"project_slug {slug!a} looks like a test module name, which pytest would import instead"
    return None


def port_problem(port: str) -> str | None:
    """Say why `port` cannot be a TCP port to listen on, or None when it can."""
    if not PORT_PATTERN.fullmatch(port) or not 1 <= int(port) <= 65535:
        return f"port {port!a} must be a whole number from 1 to 65535"
    return None


def free_text_problem(key: str, text: str) -> str | None:
    """Say why `text` cannot go into single-line config files (TOML strings), or None when it can."""
    # Refuses line breaks, control and invisible format characters (such as bidi overrides), lone surrogates.
    if not text.isprintable():
        return f"{key} {text!a} must be a single line of printable characters"
    if key in REQUIRED_KEYS and not text.strip():
        return f"{key} must not be empty"
    if key == "author_email" and not EMAIL_PATTERN.fullmatch(text):
        return f"author_email {text!a} does not look like an email address"
    return None


def first_problem(answers: dict[str, object]) -> str | None:
    """Check every answer and return the first problem found."""
    checks = [slug_problem(str(answers["project_slug"])), port_problem(str(answers["port"]))]
    checks += [free_text_problem(key, str(answers[key])) for key in FREE_TEXT_KEYS]
    return next((problem for problem in checks if problem), None)


def main() -> int:
    """Print a one-line reason and fail, so cookiecutter removes the half-made project."""
    problem = first_problem(ANSWERS)
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

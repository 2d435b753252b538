"""Every setting the service reads is listed in `.env.example`, where a user looks for it."""

from __future__ import annotations

import importlib
import re

from support import PACKAGE, PROJECT_DIR

settings = importlib.import_module(f"{PACKAGE}.engine.settings")

# Read by llm.py (and the OpenAI client) rather than by Settings.
LLM_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_TIMEOUT", "OPENAI_MAX_RETRIES")


def test_env_example_lists_every_setting() -> None:
    example = (PROJECT_DIR / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    missing = [name for name in (*settings.ENV_NAMES.values(), *LLM_VARIABLES) if name not in listed]
    assert not missing, f"not in .env.example: {missing}"


def test_every_setting_has_an_environment_name() -> None:
    assert set(settings.ENV_NAMES) == set(settings.Settings.model_fields)

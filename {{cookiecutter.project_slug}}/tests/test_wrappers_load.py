"""Your wrappers load and answer: each module in `wrappers/` is served offline and asked one question.

The service runs in-process (Quart's test client, the real app), without OPENAI_API_KEY, so `llm.py` gives the
offline stand-in and nothing leaves this machine. Each model answers one request on every API its wrapper
implements: Chat Completions (`run_chat_completion[_async]`) and Responses (`run_response[_async]`). A wrapper
that fails to import, or whose `setup()` fails, fails its test with the error. A new module in `wrappers/` is
tested without changing this file. Add your own tests beside it; `tests/engine/` holds the template's.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper
from {{ cookiecutter.project_slug }}.engine.app import create_app
from {{ cookiecutter.project_slug }}.engine.settings import Settings

WRAPPERS = Settings().wrappers_package
# The model ids, found as the service finds them: every module of the package, except those starting with `_`.
MODEL_IDS = sorted(
    module.name
    for module in pkgutil.iter_modules(importlib.import_module(WRAPPERS).__path__)
    if not module.name.startswith("_")
)
QUESTION = "Hello! What can you do?"
# API -> the wrapper methods that implement it, the route, and a request asking QUESTION.
APIS: dict[str, tuple[tuple[str, ...], str, dict[str, Any]]] = {
    "Chat Completions": (
        ("run_chat_completion", "run_chat_completion_async"),
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": QUESTION}]},
    ),
    "Responses": (("run_response", "run_response_async"), "/v1/responses", {"input": QUESTION}),
}
READY_SECONDS = 120  # a setup() that loads a model may take a while


def apis_of(model_id: str) -> list[str]:
    """The APIs the wrapper implements (importing it: an import error fails the test here, with its traceback)."""
    wrapper = importlib.import_module(f"{WRAPPERS}.{model_id}").PipelineWrapper
    return [
        api
        for api, (methods, _, _) in APIS.items()
        if any(getattr(wrapper, name) is not getattr(BasePipelineWrapper, name) for name in methods)
    ]


def answer_text(api: str, body: dict[str, Any]) -> str:
    """The text of an answer: the assistant message (Chat Completions), or the output messages (Responses)."""
    if api == "Chat Completions":
        return body["choices"][0]["message"]["content"] or ""
    messages = [item for item in body["output"] if item["type"] == "message"]
    return "".join(part.get("text", "") for item in messages for part in item["content"])


def load_error(caplog: pytest.LogCaptureFixture, model_id: str) -> str:
    """The error the service logged while loading `model_id` (it logs a failed setup() and serves the others)."""
    errors = [record for record in caplog.records if record.exc_info and repr(model_id) in record.getMessage()]
    return logging.Formatter().formatException(errors[-1].exc_info) if errors else "(no error was logged)"


@pytest.mark.parametrize("model_id", MODEL_IDS)
async def test_wrapper_loads_and_answers(
    model_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    apis = apis_of(model_id)
    assert apis, f"{model_id}: its PipelineWrapper implements neither run_chat_completion nor run_response"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # offline, whatever your shell holds
    app = create_app(Settings(data_dir=tmp_path / "data"))
    async with app.test_app():
        client = app.test_client()
        async with asyncio.timeout(READY_SECONDS):
            while (await client.get("/status")).status_code != 200:  # until every wrapper is loaded (or failed)
                await asyncio.sleep(0.05)
        for api in apis:
            _, path, request = APIS[api]
            response = await client.post(path, json={"model": model_id, **request})
            body = await response.get_json()
            if (body.get("error") or {}).get("code") == "model_failed_to_load":
                pytest.fail(f"{model_id} did not load:\n{load_error(caplog, model_id)}")
            assert response.status_code == 200, f"{model_id} on {api}: {response.status_code} {body}"
            assert answer_text(api, body).strip(), f"{model_id} on {api} answered no text: {body}"

"""What a user is told when the examples cannot work: a model whose settings are wrong fails to load visibly, and a
PDF that cannot be read says what to install.

Each test serves the frozen examples (tests/engine/examples) in an environment of its own, as a user's would be.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from support import TESTS_DIR, ServiceProcess, base_env, serve, tiny_pdf, wait_until
from upstream import ScriptedUpstream

EXAMPLE_MODELS = ("agent", "chat", "chat_stream", "files_qa", "llm", "rag")


@pytest.fixture(scope="module")
def misconfigured_service(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The examples with an OPENAI_TIMEOUT the OpenAI client cannot use: a setting that is read when the
    generator warms up (its key, base URL and timeout), not when it is built."""
    env = base_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        OPENAI_TIMEOUT="soon",
    )
    yield from serve(tmp_path_factory.mktemp("misconfigured"), "misconfigured_service", env)


@pytest.mark.parametrize("model", EXAMPLE_MODELS)
def test_an_example_with_a_wrong_llm_setting_fails_to_load_visibly(
    misconfigured_service: ServiceProcess, model: str
) -> None:
    """Each example warms its components up in setup(): the model fails to load, saying why, and the service is
    not ready; it used to load, be ready, and fail every request with "The pipeline failed (ValueError)"."""
    with pytest.raises(openai.InternalServerError) as raised:
        misconfigured_service.client().models.retrieve(model)
    assert raised.value.code == "model_failed_to_load"
    assert "could not convert string to float: 'soon'" in raised.value.message
    with misconfigured_service.http() as http:
        assert http.get("/health/ready").json()["checks"]["wrappers"] == "failed"
        assert model in http.get("/status").json()["failed"]


@pytest.fixture(scope="module")
def service_without_pypdf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The examples offline where pypdf cannot be imported, as after `pip install -e .` without the pdf extra."""
    shadow = tmp_path_factory.mktemp("no_pypdf")
    (shadow / "pypdf").mkdir()
    (shadow / "pypdf" / "__init__.py").write_text("raise ImportError(\"No module named 'pypdf'\")\n")
    env = base_env(PYTHONPATH=f"{shadow}:{TESTS_DIR}")
    yield from serve(tmp_path_factory.mktemp("without_pypdf"), "service_without_pypdf", env)


def test_a_pdf_files_qa_cannot_read_logs_what_to_install(service_without_pypdf: ServiceProcess) -> None:
    """The answer says the request has no readable file; the log line says why and what to install."""
    client = service_without_pypdf.client()
    uploaded = client.files.create(file=("vault.pdf", tiny_pdf("The cat is named Marmalade.")), purpose="user_data")
    question = [{"type": "input_file", "file_id": uploaded.id}, {"type": "input_text", "text": "The cat's name?"}]
    answer = client.responses.create(model="files_qa", input=[{"role": "user", "content": question}])
    assert "no readable file" in answer.output_text

    def hint() -> str | None:
        lines = service_without_pypdf.log_tail(200_000).splitlines()
        return next((line for line in lines if "Cannot read vault.pdf" in line), None)

    line = wait_until(hint)
    assert line is not None, service_without_pypdf.log_tail()
    assert "skipped; to read PDF files, pip install 'pypdf>=5'" in line, line
    assert "pip install -e '.[pdf]'" in line, line

"""A real LLM behind the service: llama-cpp-python's own server (`python -m llama_cpp.server`), on loopback.

What many local users run besides llama.cpp's `llama-server` (test_real_model.py), with two differences the
service must survive: it streams no usage even when asked (`stream_options.include_usage`), counting only the answers
it sends whole, and it reads the answer's length limit from `max_tokens` only, ignoring `max_completion_tokens`.

Needs LLAMA_CPP_PYTHON (a Python that has `llama-cpp-python[server]`) and LLAMA_MODEL_PATH (a GGUF model), or
every test here skips. The template's CI installs it from PyPI into `.tools/llama-cpp-python` (`.ci/run`).
A 135M model's words are not stable: the tests check how answers end and what they count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import openai
import pytest

from engines import LLAMA_ALIAS, LlamaCppPythonServer
from support import ServiceProcess, base_env, serve
from test_real_model import LONG_ANSWER, REAL_MODEL_TIMEOUT, ask

# `chat` calls its LLM without streaming; the others stream from it when their client streams.
NOT_STREAMING_FROM_THE_LLM = "chat"
MODELS = ("chat", "chat_stream", "agent", "llm")
EVERY_MODEL = (*MODELS, "rag", "files_qa")


@pytest.fixture(scope="module")
def llama_cpp_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppPythonServer]:
    python, model_path = os.environ.get("LLAMA_CPP_PYTHON"), os.environ.get("LLAMA_MODEL_PATH")
    if not python or not model_path:
        pytest.skip("LLAMA_CPP_PYTHON and LLAMA_MODEL_PATH are not set (llama-cpp-python[server] and a GGUF model)")
    server = LlamaCppPythonServer(python, model_path, tmp_path_factory.mktemp("llama_cpp_python")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def llama_cpp_python_service(
    llama_cpp_python: LlamaCppPythonServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = base_env(
        OPENAI_API_KEY="no-key-needed", OPENAI_BASE_URL=f"{llama_cpp_python.base_url}/v1", OPENAI_MODEL=LLAMA_ALIAS
    )
    yield from serve(tmp_path_factory.mktemp("llama_cpp_python_service"), "llama_cpp_python_service", env)


@pytest.fixture(scope="module")
def llm_client(llama_cpp_python_service: ServiceProcess) -> openai.OpenAI:
    return llama_cpp_python_service.client(timeout=REAL_MODEL_TIMEOUT)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("model", EVERY_MODEL)
def test_every_example_models_whole_answer_carries_the_servers_count(
    llm_client: openai.OpenAI, model: str, api: str
) -> None:
    """The server counts the answers it sends whole: a client that asks for a whole answer has the LLM asked for a
    whole answer too, whichever example serves it, and gets the server's count (`ask` checks the total adds up)."""
    answer = ask(llm_client, api, model, stream=False)
    assert answer.text.strip(), answer
    assert answer.usage is not None, "the server counted this answer: its count must reach the client"
    assert answer.usage[0] > 0 and answer.usage[1] > 0, answer


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_answer_has_the_servers_count_only_when_it_gave_one(
    llm_client: openai.OpenAI, model: str, api: str
) -> None:
    """The server never counts an answer it streams: a count where it gives one (`chat` asks it for a whole
    answer), else none."""
    answer = ask(llm_client, api, model, stream=True)
    assert answer.text.strip(), answer
    if model == NOT_STREAMING_FROM_THE_LLM:
        assert answer.usage is not None, "the server counted this answer: its count must reach the client"
        assert answer.usage[0] > 0 and answer.usage[1] > 0, answer
    else:
        assert answer.usage is None, "the server counted nothing: no count, never a made-up zero"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("api", "model"), [(api, model) for api in ("chat", "responses") for model in MODELS])
def test_the_length_limit_stops_the_answer(llm_client: openai.OpenAI, api: str, model: str, stream: bool) -> None:
    """`max_output_tokens` and `max_tokens` become `max_completion_tokens`, which this server ignores, unless
    `max_tokens` goes with it: a 3-token cap answered hundreds of tokens."""
    answer = ask(llm_client, api, model, stream=stream, question=LONG_ANSWER, max_tokens=3)
    assert answer.finish == ("length" if api == "chat" else "max_output_tokens"), answer
    if answer.usage is not None:
        assert answer.usage[1] == 3, answer

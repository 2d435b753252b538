"""Without OPENAI_API_KEY every example model still answers (MockChatGenerator), the agent with its tool."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from support import ServiceProcess, base_env, serve, user

MODELS = ("chat", "chat_stream", "agent")


@pytest.mark.parametrize("model", MODELS)
def test_offline_non_stream(offline_service: ServiceProcess, model: str) -> None:
    completion = offline_service.client().chat.completions.create(model=model, messages=user("What time is it?"))
    choice = completion.choices[0]
    assert choice.message.content and choice.message.content.strip()
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_offline_stream(offline_service: ServiceProcess, model: str) -> None:
    stream = offline_service.client().chat.completions.create(
        model=model, messages=user("What time is it?"), stream=True
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    assert not any(chunk.choices[0].delta.tool_calls for chunk in chunks if chunk.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


# What get_current_time returns: "%Y-%m-%d %H:%M:%S (UTC)".
TOOL_RESULT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \(UTC\)")


@pytest.mark.parametrize("stream", [False, True])
def test_offline_agent_uses_its_tool(offline_service: ServiceProcess, stream: bool) -> None:
    """The offline agent calls get_current_time and its answer carries the tool's result."""
    client = offline_service.client()
    if stream:
        chunks = list(client.chat.completions.create(model="agent", messages=user("What time is it?"), stream=True))
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        text = (
            client.chat.completions.create(model="agent", messages=user("What time is it?")).choices[0].message.content
        )
    assert text and "get_current_time" in text, text
    assert TOOL_RESULT.search(text), text


def test_offline_chat_answers_the_question(offline_service: ServiceProcess) -> None:
    """The offline stand-in echoes the question, so a user sees their request went through."""
    text = offline_service.client().chat.completions.create(model="chat", messages=user("tell me X42")).choices[0]
    assert "tell me X42" in (text.message.content or "")


RAG_SYSTEM = (
    "Answer from these passages.\n"
    "[1] handbook.txt: The lighthouse keeper's cat is called Marmalade.\n"
    "[2] menu.txt: The bakery opens at seven."
)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_offline_answer_quotes_the_context_that_matches_the_question(
    offline_service: ServiceProcess, stream: bool
) -> None:
    """A retriever's passages in the system message: the offline answer quotes the one about the question."""
    messages = [{"role": "system", "content": RAG_SYSTEM}, *user("What is the cat called?")]
    client = offline_service.client()
    if stream:
        chunks = client.chat.completions.create(model="llm", messages=messages, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        text = client.chat.completions.create(model="llm", messages=messages).choices[0].message.content or ""
    assert text == (
        "[offline: set OPENAI_API_KEY for a real model] You said: What is the cat called?\n"
        "From the context:\n"
        "> [1] handbook.txt: The lighthouse keeper's cat is called Marmalade."
    )


def test_offline_answer_reads_a_prompt_with_the_documents_above_the_question(offline_service: ServiceProcess) -> None:
    """A RAG template that puts the documents and the question in one user message, on the Responses API."""
    prompt = "Context:\nThe cat is called Marmalade.\nThe bakery opens at seven.\nQuestion: When does the bakery open?"
    answer = offline_service.client().responses.create(model="llm", input=prompt).output_text
    assert answer.endswith(
        "You said: Question: When does the bakery open?\nFrom the context:\n> The bakery opens at seven."
    )


def test_offline_answer_without_context_only_repeats_the_question(offline_service: ServiceProcess) -> None:
    text = offline_service.client().chat.completions.create(model="llm", messages=user("Zebra?")).choices[0]
    assert text.message.content == "[offline: set OPENAI_API_KEY for a real model] You said: Zebra?"


def test_offline_answer_quotes_a_long_passage_around_the_match(offline_service: ServiceProcess) -> None:
    """A retriever's passage is one long line: the quote is the part of it around the first shared word."""
    filler = " ".join(f"word{number}" for number in range(60))
    passage = f"[1] handbook.txt: {filler} The keeper's cat is called Marmalade. {filler}"
    messages = [{"role": "system", "content": passage}, *user("What is the cat called?")]
    text = offline_service.client().chat.completions.create(model="llm", messages=messages).choices[0].message.content
    quote = (text or "").split("\n> ", 1)[1]
    assert "The keeper's cat is called Marmalade." in quote and len(quote) < len(passage) / 2, quote
    assert quote.startswith("...") and quote.endswith("..."), quote


def test_a_huge_message_gets_a_short_offline_answer(offline_service: ServiceProcess) -> None:
    """The offline stand-in repeats at most 500 characters of the question: echoing a 20 MB message word by word
    held the event loop (every other request, health probes included) for 25 s or more."""
    question = "word " * 800_000 + "what is the last word?"
    stream = offline_service.client().chat.completions.create(model="chat_stream", messages=user(question), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("[offline: set OPENAI_API_KEY for a real model] You said: word word")
    assert len(text) < 1000, len(text)


# A hold of the event loop this long is logged by the watched service below (the default, 0.5 s, is for production).
LOOP_HOLD_LOGGED_SECONDS = 0.2
HUGE_QUESTION = "word " * 4_000_000 + "what is the last word?"  # 20 MB


@pytest.fixture(scope="module")
def watched_offline_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The offline examples, with the loop watch logging shorter holds of the event loop."""
    env = base_env(LOOP_BLOCKED_WARN_SECONDS=str(LOOP_HOLD_LOGGED_SECONDS))
    yield from serve(tmp_path_factory.mktemp("watched_offline"), "watched_offline_service", env)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("model", ["chat_stream", "llm"])
def test_the_offline_stand_in_does_not_hold_the_event_loop_on_a_huge_message(
    watched_offline_service: ServiceProcess, model: str, stream: bool
) -> None:
    """Both run the stand-in on the event loop. Haystack's MockChatGenerator counted every word of a 20 MB message
    for its usage there: the loop watch logged holds of 0.3 to 1.1 s, during which every other request waited."""
    service = watched_offline_service
    logged_before = len(service.log_path.read_bytes())
    client = service.client()
    if stream:
        chunks = client.chat.completions.create(model=model, messages=user(HUGE_QUESTION), stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        text = client.chat.completions.create(model=model, messages=user(HUGE_QUESTION)).choices[0].message.content
    assert (text or "").startswith("[offline: set OPENAI_API_KEY for a real model] You said: word word"), text
    with service.http() as http:  # answered after the loop watch's next look, which logs a hold that has ended
        assert http.get("/health/live").status_code == 200
    log = service.log_path.read_bytes()[logged_before:].decode(errors="replace")
    assert "The event loop was held" not in log, log[-2000:]

"""The `rag` example: the documents its retriever finds go into the LLM's prompt, and the answer names them.

Ordinary clients get a "Sources" list after the answer, on both APIs, streamed and not; Open WebUI (told
apart by the X-OpenWebUI-* headers it forwards) gets its sources events instead; offline (no
OPENAI_API_KEY) the model still answers and lists its sources.
"""

from __future__ import annotations

import re

import pytest

from support import ServiceProcess, stream_raw, user
from upstream import ScriptedUpstream

QUESTION = "How do I upload files to the service?"
ANSWER = "Upload them with POST /v1/files, then refer to them by id."
FILES_DOCUMENT = "Clients upload files with the Files API (POST /v1/files)"  # the text of the "Files" document
PROMPT_DOCUMENT = re.compile(r"^\[\d+\] ([^:]+): ", re.MULTILINE)


def ask(service: ServiceProcess, api: str, stream: bool) -> str:
    """The whole answer text, as the official SDK gives it."""
    client = service.client()
    if api == "chat" and not stream:
        return client.chat.completions.create(model="rag", messages=user(QUESTION)).choices[0].message.content or ""
    if api == "chat":
        chunks = client.chat.completions.create(model="rag", messages=user(QUESTION), stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    if not stream:
        return client.responses.create(model="rag", input=QUESTION).output_text
    events = client.responses.create(model="rag", input=QUESTION, stream=True)
    return "".join(event.delta for event in events if event.type == "response.output_text.delta")


def titles_in_prompt(upstream: ScriptedUpstream) -> list[str]:
    """The titles of the documents the LLM was given, best first."""
    system = upstream.requests[-1]["messages"][0]["content"]
    return PROMPT_DOCUMENT.findall(system)


def sources_list(titles: list[str]) -> str:
    return "\n\nSources:" + "".join(f"\n- {title}" for title in titles)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_answer_ends_with_the_documents_in_the_prompt(
    service: ServiceProcess, upstream: ScriptedUpstream, api: str, stream: bool
) -> None:
    upstream.script(text=ANSWER)
    answer = ask(service, api, stream)
    assert FILES_DOCUMENT in upstream.requests[-1]["messages"][0]["content"], "the retrieved text is in the prompt"
    assert upstream.requests[-1]["messages"][-1] == {"role": "user", "content": QUESTION}
    titles = titles_in_prompt(upstream)
    assert titles[0] == "Files", "the best match comes first"
    assert answer == ANSWER + sources_list(titles)


def test_open_webui_gets_sources_events_instead_of_the_list(
    service: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script(text=ANSWER)
    body = {"model": "rag", "messages": user(QUESTION), "stream": True}
    with service.http() as http:
        http.headers["X-OpenWebUI-Chat-Id"] = "5d1e2f3a-0000-4000-8000-000000000002"
        _, sse = stream_raw(http, "/v1/chat/completions", body)
    chunks = sse.chunks()
    text = "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk.get("choices", []))
    assert text == ANSWER, "no Sources list in the text for Open WebUI"
    sources = [chunk["event"]["data"] for chunk in chunks if chunk.get("event", {}).get("type") == "source"]
    titles = titles_in_prompt(upstream)
    assert [source["source"]["name"] for source in sources] == titles
    assert FILES_DOCUMENT in sources[0]["document"][0], "each source quotes its document"


@pytest.mark.parametrize(("api", "stream"), [("chat", False), ("responses", True)])
def test_offline_the_model_answers_and_lists_its_sources(
    offline_service: ServiceProcess, api: str, stream: bool
) -> None:
    answer = ask(offline_service, api, stream)
    reply, _, listed = answer.partition("\n\nSources:")
    assert "From the context:" in reply and "upload files with the Files API" in reply, "the stand-in quotes no source"
    assert listed.splitlines()[1:2] == ["- Files"], answer


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", ["rag_sync", "rag_sync_threaded", "rag_sync_pulled"])
def test_streaming_generator_passes_include_outputs_from_in_every_run_mode(
    test_service: ServiceProcess, upstream: ScriptedUpstream, model: str, stream: bool
) -> None:
    """The sync helper: on the event loop, pushed from the worker thread, pulled by the wrapper (tests/engine/test_wrappers)."""
    upstream.script(text=ANSWER)
    client = test_service.client()
    if stream:
        chunks = client.chat.completions.create(model=model, messages=user(QUESTION), stream=True)
        answer = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        answer = client.chat.completions.create(model=model, messages=user(QUESTION)).choices[0].message.content
    assert answer == ANSWER + sources_list(titles_in_prompt(upstream))

"""Reasoning from a DeepSeek-style upstream reaches the client as `delta.reasoning_content`."""

from __future__ import annotations

from support import ServiceProcess, stream_raw, user
from upstream import ScriptedUpstream

REASONING = "The user greets me, so I should greet back."
TEXT = "Hello!"


def test_chat_stream_forwards_reasoning(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """Open WebUI shows `reasoning_content` apart from the answer: it must survive the service."""
    upstream.script(reasoning=REASONING, text=TEXT)
    with service.http() as http:
        _, sse = stream_raw(
            http, "/v1/chat/completions", {"model": "chat_stream", "messages": user("Hi"), "stream": True}
        )
    deltas = [chunk["choices"][0]["delta"] for chunk in sse.chunks() if chunk["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == REASONING
    assert "".join(d.get("content") or "" for d in deltas) == TEXT
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    last_reasoning = max(i for i, d in enumerate(deltas) if d.get("reasoning_content"))
    assert last_reasoning < first_content, "reasoning streamed by the upstream first should arrive first"


def test_chat_stream_reasoning_via_sdk(service: ServiceProcess, upstream: ScriptedUpstream) -> None:
    """The SDK keeps unknown delta fields in model_extra; the text is still exact."""
    upstream.script(reasoning=REASONING, text=TEXT)
    chunks = list(service.client().chat.completions.create(model="chat_stream", messages=user("Hi"), stream=True))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == REASONING
    assert "".join(d.content or "" for d in deltas) == TEXT

"""A slow pipeline keeps its stream alive with SSE comments, which the SDK skips."""

from __future__ import annotations

from support import ServiceProcess, stream_raw, user


def test_ping_comment_before_first_event(test_service: ServiceProcess) -> None:
    """With KEEPALIVE_SECONDS=1 and a 2.5 s silent start, a `:` comment precedes the first data event."""
    with test_service.http() as http:
        response, sse = stream_raw(
            http, "/v1/chat/completions", {"model": "slow_start", "messages": user("hi"), "stream": True}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse.items, sse.raw
    assert sse.items[0][0] == "comment", sse.items[:3]
    assert all(kind in ("comment", "data") for kind, _ in sse.items)
    assert all(value.strip() for value in sse.data), "keep-alive must never be an empty data event"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in sse.chunks() if c["choices"])
    assert content == "slow start"
    assert sse.data[-1] == "[DONE]"


def test_sdk_parses_stream_with_pings(test_service: ServiceProcess) -> None:
    """The official SDK reads through the comments."""
    stream = test_service.client().chat.completions.create(model="slow_start", messages=user("hi"), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "slow start"

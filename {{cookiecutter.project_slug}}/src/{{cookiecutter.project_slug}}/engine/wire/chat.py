"""Chat Completions on the wire: events in, `chat.completion` JSON or `chat.completion.chunk` SSE out.

The rules that real clients depend on (see the project docs): `role` in the first delta only, and alone in it
as OpenAI sends it (Haystack's OpenAIChatGenerator takes the chunk after it as the start of the text), tool-call
deltas with `index` and the id/name only on their first piece, exactly one finish_reason after all
content, an optional usage chunk with `choices: []`, then `data: [DONE]`. Token usage is sent only when the
run reported it (an LLM server may not count a stream): an unknown count is left out, never given as zero.

A client's own events (`ClientSpecificEvent`) go only to a stream whose client adapter recognised it, in the form
the adapter gives (`ClientAdapter.stream_form`): text of the answer as a content delta, or fields of a chunk with
`choices: []` (Open WebUI's: an `event` key).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import time
from typing import TYPE_CHECKING, Any

from ..runs.events import (
    FINISH_REASONS,
    ClientSpecificEvent,
    Event,
    Finish,
    ReasoningDelta,
    StreamError,
    TextDelta,
    ToolCallDelta,
    Usage,
    merge_deltas,
)
from ..runs.streamed_tool_calls import StreamedToolCalls
from ..runs.token_usage import add_usage
from .ids import new_id
from .json_text import compact_json

if TYPE_CHECKING:
    from ..clients.adapter import ClientAdapter

DONE = "data: [DONE]\n\n"
# OpenAI's first delta: the role alone, before the answer's first piece (text, reasoning or a tool call).
FIRST_DELTA = {"role": "assistant", "content": "", "refusal": None}


def usage_object(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def error_object(error: StreamError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.type, "param": None, "code": error.code}}


class _ToolCallNumbering:
    """Maps a wrapper's tool-call indices (Haystack counts content blocks) onto 0, 1, 2... in order of appearance."""

    def __init__(self) -> None:
        self.wire_index: dict[int, int] = {}

    def is_new(self, call: ToolCallDelta) -> bool:
        return call.index not in self.wire_index

    def number(self, call: ToolCallDelta) -> int:
        return self.wire_index.setdefault(call.index, len(self.wire_index))


class ChatCompletionBuilder:
    """Drains events into one `chat.completion` object, for `stream: false`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls = StreamedToolCalls()
        self.usage: Usage | None = None  # None until the run reports a count
        self.finish_reason: str | None = None
        self.error: StreamError | None = None

    def add(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, TextDelta):
                self.text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                self.reasoning.append(event.text)
            elif isinstance(event, ToolCallDelta):
                self.tool_calls.add(event.index, event.id, event.name, event.arguments)
            elif isinstance(event, Usage):
                self.usage = add_usage(self.usage, event)
            elif isinstance(event, Finish) and event.reason in FINISH_REASONS:
                self.finish_reason = event.reason
            elif isinstance(event, StreamError):
                self.error = event

    def build(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text), "refusal": None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["content"] = message["content"] or None
            message["tool_calls"] = [
                {
                    "id": call.id or new_id("call_", 24),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls.calls()
            ]
        finish_reason = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        completion = {
            "id": new_id("chatcmpl-", 24),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.usage is not None:
            completion["usage"] = usage_object(self.usage)
        return completion


class ChatStreamEncoder:
    """Turns batches of events into SSE text; one instance per response, it remembers what was sent."""

    def __init__(self, model: str, include_usage: bool, client: "ClientAdapter | None" = None) -> None:
        self.include_usage = include_usage
        self.client = client  # whose ClientSpecificEvents are sent; without one they are dropped
        # Every chunk shares id, created and model: build that part of the JSON once.
        head = {"id": new_id("chatcmpl-", 24), "object": "chat.completion.chunk", "created": int(time.time())}
        head["model"] = model
        self._prefix = "data: " + compact_json(head)[:-1] + ',"choices":['
        self._suffix = '],"usage":null}\n\n' if include_usage else "]}\n\n"
        self._role_sent = False
        self._numbering = _ToolCallNumbering()
        self._sent_tool_calls = False
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    def _chunk(self, delta: dict[str, Any]) -> str:
        """One chunk of the answer, after the role-only chunk when it is the first (sent with it, not before:
        until the answer starts, the keep-alive pings are what shows the stream is open)."""
        first = "" if self._role_sent else self._chunk_text(FIRST_DELTA)
        self._role_sent = True
        return first + self._chunk_text(delta)

    def _chunk_text(self, delta: dict[str, Any]) -> str:
        return f'{self._prefix}{{"index":0,"delta":{compact_json(delta)},"logprobs":null,"finish_reason":null}}{self._suffix}'

    def encode(self, events: list[Event]) -> str:
        """SSE text for a batch; runs of text (or reasoning) deltas go out as one chunk."""
        out: list[str] = []
        for event in merge_deltas(events):
            if isinstance(event, TextDelta):
                out.append(self._chunk({"content": event.text}))
            elif isinstance(event, ReasoningDelta):
                out.append(self._chunk({"reasoning_content": event.text}))
            elif isinstance(event, ToolCallDelta):
                out.append(self._chunk({"tool_calls": [self._tool_call(event)]}))
            elif isinstance(event, Usage):
                self._usage = add_usage(self._usage, event)
            elif isinstance(event, Finish) and event.reason in FINISH_REASONS:
                self._finish_reason = event.reason
            elif isinstance(event, ClientSpecificEvent) and self.client is not None:
                out.append(self._client_event(self.client.stream_form(event)))
            elif isinstance(event, StreamError):
                out.append(self.error(event))
                break
        return "".join(out)

    def _client_event(self, form: str | dict[str, Any]) -> str:
        """A client's event in the form its adapter gave: text as a content delta, else fields beside `choices: []`."""
        if isinstance(form, str):
            return self._chunk({"content": form})
        usage = ',"usage":null' if self.include_usage else ""
        return f"{self._prefix}],{compact_json(form)[1:-1]}{usage}}}\n\n"

    def _tool_call(self, event: ToolCallDelta) -> dict[str, Any]:
        self._sent_tool_calls = True
        if self._numbering.is_new(event):
            function = {"name": event.name or "", "arguments": event.arguments}
            return {
                "index": self._numbering.number(event),
                "id": event.id or new_id("call_", 24),
                "type": "function",
                "function": function,
            }
        return {"index": self._numbering.number(event), "function": {"arguments": event.arguments}}

    def start(self) -> str:
        return ""  # the role-only chunk goes out with the answer's first piece

    def finish(self) -> str:
        """The closing chunks: finish_reason, usage when asked for and known, then [DONE]."""
        reason = self._finish_reason or ("tool_calls" if self._sent_tool_calls else "stop")
        first = "" if self._role_sent else self._chunk_text(FIRST_DELTA)  # an answer with nothing in it
        self._role_sent = True
        out = [
            first,
            f'{self._prefix}{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}"}}{self._suffix}',
        ]
        if self.include_usage and self._usage is not None:
            usage = compact_json(usage_object(self._usage))
            out.append(f'{self._prefix}],"usage":{usage}}}\n\n')
        out.append(DONE)
        return "".join(out)

    @staticmethod
    def error(event: StreamError) -> str:
        return f"data: {compact_json(error_object(event))}\n\n"

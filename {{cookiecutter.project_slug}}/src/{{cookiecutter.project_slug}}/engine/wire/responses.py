"""The Responses API on the wire: events in, a `response` object or its stream of typed SSE events out.

Clients are strict about order (see the project docs): `response.created` and `response.in_progress`
first, every output item opened with `output_item.added` and closed with `output_item.done`, its
content or summary part opened and closed around the deltas, `sequence_number` on every event, and
exactly one terminal event: `response.completed`, `response.incomplete` or `response.failed`.
Reasoning becomes a `reasoning` item with a summary, text a `message` item, and a tool call meant for
the client a `function_call` item. `usage` stays null until the run reported token counts: an unknown count
is never given as zero (the key stays: the Open Responses spec requires it).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import time
from typing import Any

from ..runs.events import (
    Event,
    Finish,
    OutputItem,
    ReasoningDelta,
    StreamError,
    TextDelta,
    ToolCallDelta,
    Usage,
    merge_deltas,
)
from ..runs.token_usage import add_usage
from ..state import LoggedEvent
from .ids import new_id
from .json_text import compact_json

# Why a response stopped early, by the chat-style finish reason a wrapper gave.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_object(usage: Usage) -> dict[str, Any]:
    input_tokens, output_tokens = usage.prompt_tokens, usage.completion_tokens
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new response, in progress, echoing the request's settings as OpenAI does, with the spec's defaults.

    Every field the Open Responses specification requires is here; the request's own values were checked by
    the blueprint (`parsing/model_options.py`) before they are echoed. `usage` stays null until the run has
    counted its tokens, and `completed_at` until it completes.
    """
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": None,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": _given(body, "parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": _reasoning(body.get("reasoning")),
        "service_tier": "default",
        "store": body.get("store", True) is not False,
        "temperature": _given(body, "temperature", 1.0),
        "text": _text(body.get("text")),
        "tool_choice": _tool_choice(body.get("tool_choice")),
        "tools": echoed_tools(body),
        "top_logprobs": _given(body, "top_logprobs", 0),
        "top_p": _given(body, "top_p", 1.0),
        "presence_penalty": _given(body, "presence_penalty", 0.0),
        "frequency_penalty": _given(body, "frequency_penalty", 0.0),
        "truncation": _given(body, "truncation", "disabled"),
        "usage": None,
        "safety_identifier": body.get("safety_identifier"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "metadata": body.get("metadata") or {},
        "conversation": _conversation(body.get("conversation")),
    }


def _conversation(reference: str | dict[str, Any] | None) -> dict[str, str] | None:
    """The conversation the request named (an id, or `{"id": ...}`), as the response object names it."""
    if reference is None:
        return None
    return {"id": reference if isinstance(reference, str) else reference["id"]}


def _given(body: dict[str, Any], field: str, default: Any) -> Any:
    """The request's value, or the spec's default when the field is absent or null."""
    value = body.get(field)
    return default if value is None else value


def echoed_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's function tools and remote MCP servers in the response's form, every key present.

    Tools of other types, which no model here is offered, are not listed as available (a `namespace` tool's
    functions are offered, but the Open Responses schema has no place for them here). An unset `strict` is
    false: OpenAI's own default is true, but the LLM is asked for strict arguments only when a tool says so.
    An MCP server's `headers` are never echoed: they may hold its credentials.
    """
    tools = []
    for tool in body.get("tools") or ():
        if tool.get("type") == "function":
            tools.append(
                {
                    "type": "function",
                    "name": tool["name"],
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict") is True,
                }
            )
        elif tool.get("type") == "mcp":
            fields = ("server_label", "server_url", "server_description", "allowed_tools", "require_approval")
            given = {field: tool[field] for field in fields if tool.get(field) is not None}
            tools.append({"type": "mcp", **given, "headers": None})
    return tools


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any]:
    """`tool_choice` in the response's form, rebuilt from its checked parts (nothing else of the request's)."""
    if choice is None or isinstance(choice, str):
        return choice or "auto"
    if choice["type"] == "function":
        return {"type": "function", "name": choice["name"]}
    tools = [{"type": "function", "name": tool["name"]} for tool in choice["tools"]]
    return {"type": "allowed_tools", "mode": choice["mode"], "tools": tools}


def _reasoning(reasoning: dict[str, Any] | None) -> dict[str, Any]:
    reasoning = reasoning or {}
    return {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}


def _text(text: dict[str, Any] | None) -> dict[str, Any]:
    """`text` with its format whole: a json_schema format keeps its schema and gets its description and strict."""
    text = text or {}
    text_format = text.get("format") or {"type": "text"}
    if text_format["type"] == "json_schema":
        text_format = {
            "type": "json_schema",
            "name": text_format["name"],
            "description": text_format.get("description"),
            "schema": text_format.get("schema", {}),
            "strict": bool(text_format.get("strict")),
        }
    else:
        text_format = {"type": text_format["type"]}
    return {"format": text_format, "verbosity": text.get("verbosity") or "medium"}


class _OpenItem:
    """The output item being streamed: its kind, its place in `output`, and the text gathered so far."""

    def __init__(self, kind: str, item: dict[str, Any], output_index: int, tool_index: int | None = None) -> None:
        self.kind = kind
        self.item = item
        self.output_index = output_index
        self.tool_index = tool_index
        self.parts: list[str] = []


class ResponseEncoder:
    """Grows one response from events. `emit=False` (for `stream: false`) skips building the SSE text.

    Each method returns the SSE text of the events it made; with `keep_events`, they are kept instead, for
    `take_events` to give them one by one with their sequence numbers (a background response logs them).
    `first_sequence_number` continues a stream that a run before this one began (a background response started
    again after its process died).
    """

    def __init__(
        self,
        response: dict[str, Any],
        *,
        emit: bool = True,
        keep_events: bool = False,
        first_sequence_number: int = 0,
        namespaced: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.response = response
        # The functions of the request's `namespace` tools, by the name the LLM knows them by (declared_tools.py).
        self.namespaced = namespaced or {}
        self.emit = emit
        self.keep_events = keep_events
        self.error: StreamError | None = None
        self._sequence_number = first_sequence_number
        self._open: _OpenItem | None = None
        self._usage: Usage | None = None
        self._incomplete_reason: str | None = None
        self._out: list[LoggedEvent] = []

    # --- the stream encoder protocol used by wire.sse ---

    def start(self) -> str:
        """`response.created` then `response.in_progress`. A response created in progress (any but a queued
        background one) is the same in both: encoded once for the two."""
        if self.response["status"] != "in_progress" or not self.emit:
            return self.created() + self.in_progress()
        response_json = compact_json(self.response)
        self._response_event("response.created", response_json)
        self._response_event("response.in_progress", response_json)
        return self._flush()

    def created(self) -> str:
        """`response.created`, with the response as it is (a background one may still be queued)."""
        self._event("response.created", response=self.response)
        return self._flush()

    def in_progress(self) -> str:
        self.response["status"] = "in_progress"
        self._event("response.in_progress", response=self.response)
        return self._flush()

    def encode(self, events: list[Event]) -> str:
        for event in merge_deltas(events):
            if isinstance(event, TextDelta):
                self._text(event.text)
            elif isinstance(event, ReasoningDelta):
                self._reasoning(event.text)
            elif isinstance(event, ToolCallDelta):
                self._tool_call(event)
            elif isinstance(event, OutputItem):
                self._service_item(event)
            elif isinstance(event, Usage):
                self._usage = add_usage(self._usage, event)
            elif isinstance(event, Finish):
                self._incomplete_reason = INCOMPLETE_REASONS.get(event.reason)  # stop, tool_calls: completed
            elif isinstance(event, StreamError):
                self._fail(event)
                break
        return self._flush()

    def finish(self) -> str:
        self._close_item()
        self._set_usage()
        if self._incomplete_reason is None:
            self.response["status"] = "completed"
            self.response["completed_at"] = int(time.time())
            self._event("response.completed", response=self.response)
        else:
            self.response["status"] = "incomplete"
            self.response["incomplete_details"] = {"reason": self._incomplete_reason}
            self._event("response.incomplete", response=self.response)
        return self._flush()

    def add_item(self, item: dict[str, Any]) -> str:
        """A whole item made elsewhere (a `compaction`): added and done at once."""
        self._close_item()
        output_index = len(self.response["output"])
        self.response["output"].append(item)
        self._event("response.output_item.added", output_index=output_index, item=item)
        self._event("response.output_item.done", output_index=output_index, item=item)
        return self._flush()

    # --- items ---

    def _text(self, text: str) -> None:
        current = self._open
        if current is None or current.kind != "message":
            item = {
                "id": new_id("msg_"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            current = self._open_item("message", item)
            self._event("response.content_part.added", **self._place(current), part=_output_text(""))
        current.parts.append(text)
        self._event("response.output_text.delta", **self._place(current), delta=text, logprobs=[])

    def _reasoning(self, text: str) -> None:
        current = self._open
        if current is None or current.kind != "reasoning":
            current = self._open_item("reasoning", {"id": new_id("rs_"), "type": "reasoning", "summary": []})
            self._event("response.reasoning_summary_part.added", **self._summary_place(current), part=_summary(""))
        current.parts.append(text)
        self._event("response.reasoning_summary_text.delta", **self._summary_place(current), delta=text)

    def _tool_call(self, call: ToolCallDelta) -> None:
        current = self._open
        if current is None or current.kind != "function_call" or current.tool_index != call.index:
            item = {
                "id": new_id("fc_"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": call.id or new_id("call_"),
                "name": call.name or "",
                "arguments": "",
            }
            if call.name in self.namespaced:
                item["namespace"], item["name"] = self.namespaced[call.name]  # a `namespace` tool's, as declared
            current = self._open_item("function_call", item, tool_index=call.index)
        if call.arguments:
            current.parts.append(call.arguments)
            self._event("response.function_call_arguments.delta", **self._item_place(current), delta=call.arguments)

    def _service_item(self, event: OutputItem) -> None:
        """An item the service made (runs/remote_mcp.py): opened with its type's progress events, closed when done."""
        current = self._open
        if current is None or current.kind != "service" or current.item["id"] != event.item["id"]:
            current = self._open_item("service", _as_opened(event.item))
            place = self._item_place(current)
            if event.item["type"] == "mcp_list_tools":
                self._event("response.mcp_list_tools.in_progress", **place)
            elif event.item["type"] == "mcp_call":
                arguments = event.item["arguments"]
                self._event("response.mcp_call_arguments.delta", **place, delta=arguments)
                self._event("response.mcp_call_arguments.done", **place, arguments=arguments)
                self._event("response.mcp_call.in_progress", **place)
        if event.done:
            current.item = event.item
            self.response["output"][current.output_index] = event.item
            self._close_item()

    def _open_item(self, kind: str, item: dict[str, Any], tool_index: int | None = None) -> _OpenItem:
        self._close_item()
        self._open = _OpenItem(kind, item, len(self.response["output"]), tool_index)
        self.response["output"].append(item)
        self._event("response.output_item.added", output_index=self._open.output_index, item=item)
        return self._open

    def _close_item(self, status: str = "completed") -> None:
        """Finish the open item: its closing events, then `output_item.done` with the item complete."""
        current, self._open = self._open, None
        if current is None:
            return
        text = "".join(current.parts)
        item = current.item
        if current.kind == "message":
            self._event("response.output_text.done", **self._place(current), text=text, logprobs=[])
            self._event("response.content_part.done", **self._place(current), part=_output_text(text))
            item["content"] = [_output_text(text)]
            item["status"] = status
        elif current.kind == "reasoning":
            self._event("response.reasoning_summary_text.done", **self._summary_place(current), text=text)
            self._event("response.reasoning_summary_part.done", **self._summary_place(current), part=_summary(text))
            item["summary"] = [_summary(text)]
        elif current.kind == "service":
            if item["type"] == "mcp_call" and status != "completed":  # the run failed while the call was under way
                item["status"] = status
            failed = item.get("error") is not None or item.get("status") == "failed"
            if item["type"] in ("mcp_list_tools", "mcp_call"):
                outcome = "failed" if failed else "completed"
                self._event(f"response.{item['type']}.{outcome}", **self._item_place(current))
        else:
            item["arguments"] = text
            item["status"] = status
            place = self._item_place(current)
            self._event("response.function_call_arguments.done", **place, name=item["name"], arguments=text)
        self._event("response.output_item.done", output_index=current.output_index, item=item)

    def _fail(self, error: StreamError) -> None:
        self.error = error
        self._close_item(status="incomplete")
        self.response["status"] = "failed"
        self.response["completed_at"] = None  # when an ending at the store's refused what `finish` had completed
        self.response["error"] = {"code": error.code or "server_error", "message": error.message}
        self._set_usage()
        self._event("response.failed", response=self.response)

    def cancel(self) -> str:
        """The end of a cancelled (background) response: the spec has no event of its own for it, so it ends as a
        failed stream does, with `response.failed`, its response's status `cancelled`."""
        self._close_item(status="incomplete")
        self.response["status"] = "cancelled"
        self._set_usage()
        self._event("response.failed", response=self.response)
        return self._flush()

    def _set_usage(self) -> None:
        if self._usage is not None:
            self.response["usage"] = usage_object(self._usage)

    # --- event plumbing ---

    @staticmethod
    def _item_place(item: _OpenItem) -> dict[str, Any]:
        return {"item_id": item.item["id"], "output_index": item.output_index}

    @staticmethod
    def _place(item: _OpenItem) -> dict[str, Any]:
        return {"item_id": item.item["id"], "output_index": item.output_index, "content_index": 0}

    @staticmethod
    def _summary_place(item: _OpenItem) -> dict[str, Any]:
        return {"item_id": item.item["id"], "output_index": item.output_index, "summary_index": 0}

    def _event(self, event_type: str, **fields: Any) -> None:
        """Queue one SSE event; it is serialised now, so later changes to an item do not leak into it."""
        if self.emit:
            payload = {"type": event_type, "sequence_number": self._sequence_number, **fields}
            data = compact_json(payload)
            self._out.append((self._sequence_number, f"event: {event_type}\ndata: {data}\n\n"))
        self._sequence_number += 1

    def _response_event(self, event_type: str, response_json: str) -> None:
        """`_event(event_type, response=...)` with the response encoded already: the same text, built around it."""
        number = self._sequence_number
        data = f'{{"type":"{event_type}","sequence_number":{number},"response":{response_json}}}'
        self._out.append((number, f"event: {event_type}\ndata: {data}\n\n"))
        self._sequence_number += 1

    def _flush(self) -> str:
        if self.keep_events:
            return ""  # they wait for `take_events`
        text = "".join(event for _, event in self._out)
        self._out.clear()
        return text

    def take_events(self) -> list[LoggedEvent]:
        """With `keep_events`, the events made so far, one by one with their sequence numbers (for a log)."""
        events, self._out = self._out, []
        return events


def _as_opened(item: dict[str, Any]) -> dict[str, Any]:
    """A service's item as `output_item.added` shows it: a tool list still empty, a call's arguments still to come."""
    if item["type"] == "mcp_list_tools":
        return {**item, "tools": [], "error": None}
    if item["type"] == "mcp_call":
        return {**item, "arguments": "", "output": None, "error": None, "status": "in_progress"}
    return item


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _summary(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}

"""A human's approval of an Agent's own tool calls, through the Responses API's approval items.

The items are those a remote MCP server's calls use (`runs/remote_mcp.py`), the one standard way to put a human in
the loop over an OpenAI API: a call that needs approval ends the response, `completed`, with an
`mcp_approval_request` item (its `server_label` the model id); the client's `mcp_approval_response` in its next
request (`previous_response_id`, `conversation`, or the whole input sent back) runs the call, as an `mcp_call` item,
before the Agent goes on, or tells the Agent the user denied it. An Agent wrapper opts in with Haystack's own hook
mechanism, a `before_tool` hook:

    self.approvals = ApprovalHook(delete_note)  # the tools that wait for approval
    self.agent = Agent(chat_generator=..., tools=[search, *self.approvals.tools], hooks={"before_tool": [self.approvals]})

    async def run_response_async(self, model, input_items, body):
        turn = await self.approvals.resume(model, input_items)
        messages = await chat_messages_from_openai_response_async(turn.input_items, body.get("instructions"))
        return turn.around(async_streaming_generator(self.agent, {"messages": messages}))

The same hook holds an Agent's calls of the request's remote MCP tools (`remote_mcp_tools()`) that their server's
`require_approval` says wait; their approval request names the server, and the approved call runs on it
(`remote_mcp.py`) before the Agent goes on.

Where no approval can be asked (Chat Completions, or a run that did not `resume`), the hook lets the call through to
the Agent's copy of the tool (`.tools`), which does not run it: its result tells the Agent it needs an approval this
client cannot give (Open WebUI shows that result as it shows any tool's). Haystack's own `ConfirmationHook` asks a
person while the run waits (a console); this one ends the run and resumes it in the next request, on any replica.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import contextvars
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from haystack.components.agents.state.state import State
from haystack.components.agents.state.state_utils import replace_values
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import Tool

from ..parsing.mcp_items import as_llm_sees_it
from ..wire.ids import new_id
from .events import OutputItem
from .remote_mcp import approved_and_not_run, new_call, remote_tool_needing_approval

NOT_ASKED = "This tool needs a person's approval, which this client cannot give: the call was not run."
STOP_REASON = "approval_required"

# The calls this request's run holds for approval; None where no approval can be asked (see the module docstring).
_held_calls: contextvars.ContextVar[list[ToolCall] | None] = contextvars.ContextVar("held_calls", default=None)


@dataclass
class ApprovalTurn:
    """One request of an Agent wrapper with approvals: its input as the Agent sees it, the calls approved in it
    (already run), and `around` to put the approval items in the answer."""

    model: str
    input_items: list[dict[str, Any]]
    ran: list[dict[str, Any]]
    held: list[ToolCall] = field(default_factory=list)

    async def around(self, pieces: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The approved calls that ran, the Agent's answer, then an approval request for each call it held."""
        for call in self.ran:
            yield OutputItem(call)
        async for piece in pieces:
            yield piece
        for call in self.held:  # a remote MCP tool's call names its server; one of the hook's tools, the model
            label, name = remote_tool_needing_approval(call.tool_name) or (self.model, call.tool_name)
            request = {"id": new_id("mcpr_"), "type": "mcp_approval_request", "server_label": label}
            yield OutputItem(request | {"name": name, "arguments": json.dumps(call.arguments)})


class ApprovalHook:
    """A Haystack `before_tool` hook: the calls of its tools wait for a person's approval instead of running.

    Give the Agent `.tools` (stand-ins that never run the real ones) and register the hook as a `before_tool` hook.
    """

    allowed_hook_points = ("before_tool",)

    def __init__(self, *tools: Tool) -> None:
        self._real = {tool.name: tool for tool in tools}  # run by `resume`, once approved
        self.tool_names = frozenset(self._real)
        self.tools = [_not_run(tool) for tool in tools]

    async def resume(self, model: str, input_items: list[dict[str, Any]]) -> ApprovalTurn:
        """Prepare one request: run the calls approved in it (once), and give the Agent its history with approval
        items as the calls and results they stand for. Call it in `run_response_async`."""
        ran = []
        for request in approved_and_not_run(input_items, labels={model}):
            call = new_call(model, request["name"], request["arguments"], request["id"])
            tool = self._real.get(request["name"])
            try:
                if tool is None:
                    raise LookupError(f"the model has no tool '{request['name']}' any more")
                result = await asyncio.to_thread(tool.invoke, **json.loads(request["arguments"]))
                call["output"], call["status"] = result if isinstance(result, str) else json.dumps(result), "completed"
            except Exception as error:  # told to the client and to the Agent, as a remote server's failure is
                call["error"], call["status"] = {"type": "mcp_tool_execution_error", "content": str(error)}, "failed"
            ran.append(call)
        turn = ApprovalTurn(model, as_llm_sees_it([*input_items, *ran], own_label=model), ran)
        _held_calls.set(turn.held)  # the hook, in this run's context, adds to it
        return turn

    def run(self, state: State) -> None:
        messages = state.data.get("messages") or []
        last = messages[-1] if messages else None
        if last is None or not last.tool_calls:
            return
        held = [call for call in last.tool_calls if self._waits(call)]
        if not held:
            return
        waiting = _held_calls.get()
        if waiting is None:  # nobody to ask: the stand-in tools answer that they did not run
            return
        kept = [call for call in last.tool_calls if not self._waits(call)]
        waiting.extend(held)
        kept_message = ChatMessage.from_assistant(text=last.text, tool_calls=kept, meta=last.meta)
        state.set("messages", [*messages[:-1], kept_message], handler_override=replace_values)
        state.set("stop_run", STOP_REASON)  # after the calls that need no approval, before the next LLM call

    async def run_async(self, state: State) -> None:
        self.run(state)

    def _waits(self, call: ToolCall) -> bool:
        """One of this hook's tools, or a remote MCP tool whose server wants its calls approved."""
        return call.tool_name in self.tool_names or remote_tool_needing_approval(call.tool_name) is not None


def _not_run(tool: Tool) -> Tool:
    """The tool as the Agent gets it: the same name, description and parameters, a function that runs nothing."""

    def not_run(**arguments: Any) -> str:
        return NOT_ASKED

    stand_in = copy.copy(tool)
    stand_in.function = not_run
    return stand_in

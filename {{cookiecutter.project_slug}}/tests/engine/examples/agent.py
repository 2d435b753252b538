"""Model `agent`: an Agent with tools it runs itself; clients see its answer, never its tool calls.

Agentic clients (Codex CLI) run every tool call they receive: if the agent's own calls reached them,
they would run them again and loop. So the agent's tool calls stay inside (`forward_tool_calls=False`).
Open WebUI still shows them, as a status while the tool runs and a block with its arguments and result:
the default `on_tool_call_start` / `on_tool_call_end` of the streaming helpers (see `engine/clients/openwebui/adapter.py`).

A tool with effects waits for a person's approval (`ApprovalHook`, docs/tools.md): here `cancel_meeting`.
Through the Responses API the answer then ends with an `mcp_approval_request`, and the client's
`mcp_approval_response` in its next request runs the call, or tells the agent it was denied; through Chat
Completions (Open WebUI), where nobody can be asked, the agent is told the call was not run.

Through the Responses API a client may also give remote MCP servers (`{"type": "mcp", ...}` tools): the agent
gets their tools besides its own (`remote_mcp_tools()`), and their calls that need approval wait for it the same way.

Like every example, it ignores the tools a client declares in `body["tools"]` (Open WebUI sends its own
built-in ones with every request): see docs/openwebui.md for a wrapper that offers them to its LLM.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from haystack.components.agents import Agent
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.tools import Tool, tool

from {{ cookiecutter.project_slug }}.engine import (
    OFFLINE_NOTE,
    ApprovalHook,
    BasePipelineWrapper,
    chat_messages_from_openai,
    chat_messages_from_openai_response_async,
    generation_kwargs,
    remote_mcp_tools,
)

from ._llm import make_chat_generator
from ._streaming import async_streaming_generator

SYSTEM_PROMPT = "You are a helpful assistant. Use your tools when they help; say which tool you used."


@tool
def get_current_time(timezone: Annotated[str, "An IANA time zone such as Europe/Berlin"] = "UTC") -> str:
    """Get the current date and time in a time zone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown time zone {timezone!r}; use an IANA name such as Europe/Berlin."
    return datetime.now(zone).strftime(f"%Y-%m-%d %H:%M:%S ({timezone})")


@tool
def cancel_meeting(title: Annotated[str, "The title of the meeting to cancel"]) -> str:
    """Cancel a meeting in the calendar."""
    return f"The meeting {title!r} is cancelled."  # a stand-in: a tool of yours changes something here


def offline_agent_reply(messages: list[ChatMessage], tools: list[Tool] | None) -> str | ChatMessage:
    """Offline stand-in for the LLM: call the tool first, then answer with its result."""
    last = messages[-1]
    if last.tool_call_result is not None:
        return f"{OFFLINE_NOTE} {last.tool_call_result.origin.tool_name} says: {last.tool_call_result.result}"
    if not tools:
        return f"{OFFLINE_NOTE} I have no tools to call."
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name=tools[0].name, arguments={})])


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.approvals = ApprovalHook(cancel_meeting)  # the tools whose calls wait for a person's approval
        self.agent = Agent(
            chat_generator=make_chat_generator(offline_reply=offline_agent_reply),
            tools=[get_current_time, *self.approvals.tools],
            system_prompt=SYSTEM_PROMPT,
            hooks={"before_tool": [self.approvals]},
        )
        # Checks the components' settings (keys, URLs, timeouts) now: a wrong one fails the model's
        # load, visibly, instead of every request.
        self.agent.warm_up()

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        # The agent runs its tool calls itself: forwarding them would make a client run them again.
        run_args = {"messages": chat_messages_from_openai(messages), "generation_kwargs": generation_kwargs(body)}
        return async_streaming_generator(self.agent, run_args, forward_tool_calls=False)

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        # Runs the calls the client approved in this request, and ends the answer with approval requests.
        turn = await self.approvals.resume(model, input_items)
        messages = await chat_messages_from_openai_response_async(turn.input_items, body.get("instructions"))
        tools = [*self.agent.tools, *remote_mcp_tools()]  # its own, and those of the client's remote MCP servers
        run_args = {"messages": messages, "tools": tools, "generation_kwargs": generation_kwargs(body)}
        return turn.around(async_streaming_generator(self.agent, run_args, forward_tool_calls=False))

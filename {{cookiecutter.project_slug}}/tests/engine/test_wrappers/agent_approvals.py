"""An Agent whose `delete_note` tool waits for a person's approval (`ApprovalHook`); `count_notes` needs none.

Through the Responses API a held call ends the response with an `mcp_approval_request`, and the client's answer in
its next request runs it (counted under `delete-<name>`) or tells the Agent it was denied; through Chat Completions,
where nobody can be asked, the Agent is told the call was not run.
"""

from collections.abc import AsyncIterator
from typing import Any

from haystack.components.agents import Agent
from haystack.tools import tool

from {{ cookiecutter.project_slug }}.engine import (
    ApprovalHook,
    BasePipelineWrapper,
    chat_messages_from_openai,
    chat_messages_from_openai_response_async,
)

from examples._llm import make_chat_generator
from examples._streaming import async_streaming_generator
from test_wrappers import bump


@tool
def delete_note(name: str) -> str:
    """Delete the note called `name`."""
    bump(f"delete-{name}")
    return f"deleted {name}"


@tool
def count_notes() -> str:
    """Count the notes."""
    return "3 notes"


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.approvals = ApprovalHook(delete_note)
        self.agent = Agent(
            chat_generator=make_chat_generator(),
            tools=[*self.approvals.tools, count_notes],
            hooks={"before_tool": [self.approvals]},
        )

    async def run_chat_completion_async(
        self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        return async_streaming_generator(self.agent, {"messages": chat_messages_from_openai(messages)})

    async def run_response_async(
        self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]
    ) -> AsyncIterator[Any]:
        turn = await self.approvals.resume(model, input_items)
        messages = await chat_messages_from_openai_response_async(turn.input_items, body.get("instructions"))
        return turn.around(async_streaming_generator(self.agent, {"messages": messages}))

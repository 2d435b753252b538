"""A sync wrapper streaming an Agent with `streaming_generator`, with tool-call callbacks that inject text.

Its chat generator streams asynchronously, so the service runs the Agent on the event loop and its sync
tools in threads of the step pool: `name_your_thread` answers with the name of the thread it ran in.
"""

import threading
from collections.abc import Iterator

from haystack.components.agents import Agent
from haystack.tools import tool

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, chat_messages_from_openai

from examples._llm import make_chat_generator
from examples._streaming import streaming_generator


@tool
def get_secret_number() -> str:
    """Return the secret number."""
    return "42"


@tool
def name_your_thread() -> str:
    """Return the name of the thread this tool runs in."""
    return threading.current_thread().name


TOOLS = [get_secret_number, name_your_thread]


def announce_start(name: str, arguments: str, call_id: str | None) -> str:
    return f"[calling {name} {arguments}]"


def announce_end(name: str, arguments: str, result: str, error: bool) -> str:
    return f"[{name} -> {result}]"


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = Agent(chat_generator=make_chat_generator(), tools=TOOLS)

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.agent,
            {"messages": chat_messages_from_openai(messages)},
            on_tool_call_start=announce_start,
            on_tool_call_end=announce_end,
        )

"""A sync wrapper streaming an Agent with `streaming_generator`, with tool-call callbacks that inject text."""

from collections.abc import Iterator

from haystack.components.agents import Agent
from haystack.tools import tool

from {{ cookiecutter.project_slug }}.llm import make_chat_generator
from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper


@tool
def get_secret_number() -> str:
    """Return the secret number."""
    return "42"


def announce_start(name: str, arguments: str, call_id: str | None) -> str:
    return f"[calling {name} {arguments}]"


def announce_end(name: str, arguments: str, result: str, error: bool) -> str:
    return f"[{name} -> {result}]"


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = Agent(chat_generator=make_chat_generator(), tools=[get_secret_number])

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.agent,
            {"messages": chat_messages_from_openai(messages)},
            on_tool_call_start=announce_start,
            on_tool_call_end=announce_end,
        )

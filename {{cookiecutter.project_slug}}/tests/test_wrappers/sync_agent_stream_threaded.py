"""`sync_agent_stream` with a chat generator that streams only synchronously.

`Agent.run_async` could not stream it, so `Agent.run` runs the whole agent, its tools included, off the
event loop in the worker thread (`PipelineStream.push_to`).
"""

from collections.abc import Iterator

from haystack.components.agents import Agent

from {{ cookiecutter.project_slug }}.messages import chat_messages_from_openai
from {{ cookiecutter.project_slug }}.streaming import streaming_generator
from {{ cookiecutter.project_slug }}.wrapper import BasePipelineWrapper

from .sync_agent_stream import TOOLS, announce_end, announce_start
from .sync_pipeline_stream_threaded import SyncOnlyLLM


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.agent = Agent(chat_generator=SyncOnlyLLM(), tools=TOOLS)

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        return streaming_generator(
            self.agent,
            {"messages": chat_messages_from_openai(messages)},
            on_tool_call_start=announce_start,
            on_tool_call_end=announce_end,
        )

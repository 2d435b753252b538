"""`sync_agent_stream` with a chat generator that streams only synchronously.

`Agent.run_async` could not stream it, so `Agent.run` runs the whole agent, its tools included, off the
event loop in the worker thread (`PipelineStream.push_to`).
"""

from haystack.components.agents import Agent

from . import sync_agent_stream
from .sync_pipeline_stream_threaded import SyncOnlyLLM


class PipelineWrapper(sync_agent_stream.PipelineWrapper):
    def setup(self) -> None:
        self.agent = Agent(chat_generator=SyncOnlyLLM(), tools=sync_agent_stream.TOOLS)

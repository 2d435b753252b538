"""`rag_sync` with an LLM that streams only synchronously: `Pipeline.run` in the worker thread (`push_to`)."""

from .rag_sync import PipelineWrapper as OnTheEventLoop
from .sync_pipeline_stream_threaded import SyncOnlyLLM


class PipelineWrapper(OnTheEventLoop):
    def setup(self) -> None:
        OnTheEventLoop.setup(self)
        self.pipeline.remove_component("llm")
        self.pipeline.add_component("llm", SyncOnlyLLM())
        self.pipeline.connect("prompt_builder.prompt", "llm.messages")

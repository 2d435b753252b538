"""The `llm` example under another name: a wrapper that offers the client's own tools (`body["tools"]`) to its
LLM and forwards the calls back, as docs/openwebui.md describes for a wrapper that opts in to Open WebUI's tools.
"""

from examples.llm import PipelineWrapper

__all__ = ["PipelineWrapper"]

"""`window_declared` without a `context_window`: the CONTEXT_WINDOW setting, or no limit at all, applies."""

from .window_declared import PipelineWrapper as Declared


class PipelineWrapper(Declared):
    context_window = None

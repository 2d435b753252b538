"""The engine's names the store benchmark's wrappers use, from whichever layout the served package has.

Since template 0.4 the engine is `haystack_service.engine`, and wrapper code imports it through that one surface.
stores.py serves these same wrappers from a baseline commit's template too; for baselines from before template
0.4's engine package (dd65fdb and earlier) the names come from their old modules.
Modules starting with `_` are not models.
"""

try:
    from haystack_service.engine import BasePipelineWrapper, get_last_user_input_text
except ImportError:  # before template 0.4's engine package (if neither imports, the traceback shows both)
    from haystack_service.messages import get_last_user_input_text
    from haystack_service.wrapper import BasePipelineWrapper

__all__ = ["BasePipelineWrapper", "get_last_user_input_text"]

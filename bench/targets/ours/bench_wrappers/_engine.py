"""The engine's names the bench wrappers use, from whichever layout the served package has.

Since template 0.4 the engine is `haystack_service.engine`, and wrapper code imports it through that one surface.
`run.py --baseline REV` serves these same wrappers from the template at REV; for baselines from before template
0.4's engine package (dd65fdb and earlier) the names come from their old modules.
bench/baseline.py counts the import as satisfied when either branch imports. Modules starting with `_` are not models.
"""

try:
    from haystack_service.engine import BasePipelineWrapper
except ImportError:  # before template 0.4's engine package (if neither imports, the traceback shows both)
    from haystack_service.wrapper import BasePipelineWrapper

__all__ = ["BasePipelineWrapper"]

"""Runs: the registry of wrappers, the runner that calls them, the stream of events a run makes, background runs.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

"""Runs: the registry of wrappers, the runner that calls them, the stream of events a run makes, background runs."""

"""Fails at import: the service must start anyway and leave this model out."""

raise ImportError("broken_import fails on purpose")

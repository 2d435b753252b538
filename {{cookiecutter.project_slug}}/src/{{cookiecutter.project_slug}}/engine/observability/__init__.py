"""Observability: request ids, log lines, Prometheus metrics, OpenTelemetry traces.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

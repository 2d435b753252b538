"""Observability: request ids, log lines, Prometheus metrics, OpenTelemetry traces."""

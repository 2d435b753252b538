"""Traces with OpenTelemetry: one span per request, with the spans of the pipelines it runs under it.

Off unless the standard OpenTelemetry variables name where to send them: OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), an OTLP/HTTP collector such as the OpenTelemetry Collector, Jaeger or Tempo.
The SDK reads the rest itself (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_TRACES_SAMPLER...); OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off. Haystack traces its
pipelines, components and Agent steps through its own tracer, which `start_tracing` points at OpenTelemetry:
those spans carry the messages only when HAYSTACK_CONTENT_TRACING_ENABLED=true (Haystack's own setting).

The request span is named after the route (`POST /v1/chat/completions`) and carries the request id
(`request.id`), the model, the status code, and the caller's trace when its request had a `traceparent` header.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from haystack import tracing as haystack_tracing
from haystack_integrations.tracing.opentelemetry import OpenTelemetryTracer
from opentelemetry import propagate, trace

from ..settings import SERVICE_PACKAGE
from .request_tracking import RequestInfo

logger = logging.getLogger(__name__)

SERVICE_NAME = SERVICE_PACKAGE  # unless OTEL_SERVICE_NAME says otherwise


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OpenTelemetry variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or environ.get("OTEL_TRACES_EXPORTER") == "none":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class RequestTracer:
    """Opens each request's span (see `request_info.TrackRequests`) and flushes what is left at shutdown."""

    def __init__(self, tracer: trace.Tracer, provider: Any) -> None:
        self._tracer = tracer
        self._provider = provider  # the SDK's TracerProvider when the service created it, else None

    @contextmanager
    def request_span(self, scope: dict[str, Any], info: RequestInfo) -> Iterator[None]:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        attributes = {"http.request.method": info.method, "url.path": scope["path"], "request.id": info.id}
        with self._tracer.start_as_current_span(
            info.method, context=propagate.extract(headers), kind=trace.SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                yield
            finally:
                span.update_name(f"{info.method} {info.route}")
                span.set_attribute("http.route", info.route)
                if info.model:
                    span.set_attribute("gen_ai.request.model", info.model)
                if info.status:
                    span.set_attribute("http.response.status_code", info.status)
                if info.status >= 500:
                    span.set_status(trace.StatusCode.ERROR)

    def shutdown(self) -> None:
        """Send the spans still waiting in the batch (when the service created the tracer provider)."""
        if self._provider is not None:
            self._provider.shutdown()


# Tags Haystack sets on every span although they hold the messages (a pipeline's whole input); treated as content.
CONTENT_TAGS = ("haystack.pipeline.input_data",)


class ContentOnlyWhenAsked(OpenTelemetryTracer):
    """Haystack's OpenTelemetry tracer, with the pipeline's input traced only as content (when
    HAYSTACK_CONTENT_TRACING_ENABLED=true), as its components' inputs and outputs are."""

    @contextmanager
    def trace(
        self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: haystack_tracing.Span | None = None
    ) -> Iterator[haystack_tracing.Span]:
        tags = dict(tags or {})
        content = {key: tags.pop(key) for key in CONTENT_TAGS if key in tags}
        with super().trace(operation_name, tags, parent_span) as span:
            for key, value in content.items():
                span.set_content_tag(key, value)
            yield span


def start_tracing() -> RequestTracer | None:
    """Set up OpenTelemetry for the service and for Haystack when the environment asks for it; None otherwise."""
    if not tracing_requested():
        return None
    # Imported only here: tracing off, the SDK and its exporter cost neither startup time (~0.1 s) nor memory.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    created = None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # else `opentelemetry-instrument` set one up
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        created = TracerProvider(resource=resource)
        created.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(created)
    haystack_tracing.enable_tracing(ContentOnlyWhenAsked(trace.get_tracer("haystack")))
    logger.info("Tracing on: spans go to the OTLP endpoint of the OTEL_* settings")
    return RequestTracer(trace.get_tracer(SERVICE_NAME), created)

"""Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, each request is one span with its pipeline's spans under it.

The service runs in hypercorn's own process, where the test cannot reach the SDK's in-memory exporter, so the test
plays the collector: an OTLP/HTTP receiver on loopback keeps the spans the service exports in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from support import PACKAGE, TESTS_DIR, ServiceProcess, base_env, free_port, user, wait_until
from upstream import ScriptedUpstream

QUESTION = "what is in the secret box?"


@dataclass
class ReceivedSpan:
    name: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]
    service_name: str


@dataclass
class OtlpReceiver:
    """The traces endpoint of an OpenTelemetry Collector (OTLP over HTTP, protobuf), keeping spans in a list."""

    port: int = field(default_factory=free_port)
    spans: list[ReceivedSpan] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def keep(self, export: ExportTraceServiceRequest) -> None:
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.spans.append(
                        ReceivedSpan(
                            span.name,
                            span.trace_id,
                            span.span_id,
                            span.parent_span_id,
                            attributes,
                            resource["service.name"],
                        )
                    )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def request_span(self, request_id: str) -> ReceivedSpan | None:
        return next((s for s in list(self.spans) if s.attributes.get("request.id") == request_id), None)

    def children_of(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [s for s in list(self.spans) if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def _traced_service(
    upstream: ScriptedUpstream, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory, **extra: str
) -> ServiceProcess:
    env = base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
        OPENAI_MODEL="scripted-model",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
        OTEL_BSP_SCHEDULE_DELAY="100",  # export every 100 ms instead of 5 s
        **extra,
    )
    return ServiceProcess(name="traced_service", workdir=tmp_path_factory.mktemp("traced"), env=env).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traced_service(
    upstream: ScriptedUpstream, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    service = _traced_service(upstream, receiver, tmp_path_factory)
    yield service
    service.stop()


PIPELINE = ("haystack.pipeline.run", "haystack.component.run")
AGENT = ("haystack.agent.run", "haystack.agent.step")


@pytest.mark.parametrize(
    ("model", "stream", "spans", "components"),
    [
        ("sync_pipeline_stream", False, PIPELINE, {"llm"}),
        # A lone LLM: the shortcut that skips Pipeline's scheduling steps aside, for the spans.
        ("sync_pipeline_stream", True, PIPELINE, {"llm"}),
        ("sync_pipeline_stream_stepped", True, PIPELINE, {"messages", "llm"}),  # Pipeline.stream on the event loop
        ("sync_pipeline_stream_threaded", True, PIPELINE, {"messages", "llm"}),  # Pipeline.run in the worker thread
        ("sync_pipeline_stream_pulled", True, PIPELINE, {"llm"}),  # Pipeline.run in a thread of its own
        ("sync_agent_stream", True, AGENT, set()),
    ],
)
def test_one_request_span_with_the_pipeline_under_it(
    traced_service: ServiceProcess,
    receiver: OtlpReceiver,
    upstream: ScriptedUpstream,
    model: str,
    stream: bool,
    spans: tuple[str, str],
    components: set[str],
) -> None:
    upstream.set_default(text="traced answer")
    request_id = f"req-trace-{model}-{stream}"
    answer = traced_service.client().chat.completions.create(
        model=model, messages=user(QUESTION), stream=stream, extra_headers={"X-Request-Id": request_id}
    )
    if stream:
        assert "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices) == "traced answer"
    else:
        assert answer.choices[0].message.content == "traced answer"

    assert wait_until(lambda: receiver.request_span(request_id), timeout=30), traced_service.log_tail()
    request_span = receiver.request_span(request_id)
    assert request_span is not None
    assert request_span.name == "POST /v1/chat/completions"
    assert request_span.parent_span_id == b"", "the request span is the root of its trace"
    assert request_span.service_name == PACKAGE
    assert request_span.attributes["http.route"] == "/v1/chat/completions"
    assert request_span.attributes["http.response.status_code"] == 200
    assert request_span.attributes["gen_ai.request.model"] == model

    top_name, step_name = spans
    assert wait_until(lambda: receiver.children_of(request_span), timeout=30), [s.name for s in receiver.spans]
    (top,) = receiver.children_of(request_span)
    assert top.name == top_name
    assert wait_until(lambda: [s for s in receiver.children_of(top) if s.name == step_name], timeout=30)
    steps = [s for s in receiver.children_of(top) if s.name == step_name]
    assert {s.attributes.get("haystack.component.name") for s in steps} == (components or {None})
    everything = [s for s in receiver.spans if s.trace_id == request_span.trace_id]
    assert not any(QUESTION in str(s.attributes) for s in everything), "messages are traced only when opted in"


def test_message_contents_only_when_opted_in(
    upstream: ScriptedUpstream, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """HAYSTACK_CONTENT_TRACING_ENABLED=true (Haystack's own setting) puts the messages into the component spans."""
    service = _traced_service(upstream, receiver, tmp_path_factory, HAYSTACK_CONTENT_TRACING_ENABLED="true")
    try:
        upstream.set_default(text="traced answer")
        service.client().chat.completions.create(
            model="sync_pipeline_stream", messages=user(QUESTION), extra_headers={"X-Request-Id": "req-content"}
        )
        assert wait_until(lambda: receiver.request_span("req-content"), timeout=30)
        request_span = receiver.request_span("req-content")
        assert request_span is not None

        def traced_question() -> bool:
            return any(QUESTION in str(s.attributes) for s in receiver.spans if s.trace_id == request_span.trace_id)

        assert wait_until(traced_question, timeout=30)
    finally:
        service.stop()

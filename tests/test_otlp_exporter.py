"""llmtrace's OTLP/HTTP exporter: the same bytes as OpenTelemetry's encoder, over real HTTP, with the
OTLP exporter's settings and retry contract."""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from llmtrace.exporters._otlp_proto import encode_spans
from llmtrace.exporters.otlp import OtlpHttpSpanExporter


def make_spans() -> tuple[ReadableSpan, ...]:
    """Spans covering every field the encoder writes: two scopes, events, links, statuses, remote parents,
    every attribute value type, defaults that proto3 omits."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "replicas": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("llmtrace", "1.0", schema_url="https://opentelemetry.io/schemas/1.30.0")
    other = provider.get_tracer("other")
    remote = SpanContext(7, 9, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")]))
    attributes = {"s": "é ✓", "b": False, "i": -5, "big": 2**62, "f": 1.5, "e": "", "z": 0, "ints": [1, 2],
                  "strs": ["a", ""], "bools": [True], "floats": [0.0, -2.5]}  # fmt: skip
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes) as span:
        span.add_event("gen_ai.choice", {"index": 1})
        span.set_status(Status(StatusCode.ERROR, "RateLimitError"))
        with other.start_as_current_span("inner", links=[Link(remote, {"l": 1})]) as inner:
            inner.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("child of remote", context=set_span_in_context(NonRecordingSpan(remote))):
        pass
    with tracer.start_as_current_span("", kind=SpanKind.SERVER):
        pass
    return memory.get_finished_spans()


def test_encoding_is_byte_for_byte_opentelemetrys() -> None:
    spans = make_spans()
    assert encode_spans(spans) == official_encode(spans).SerializeToString()


def test_an_attribute_value_that_cannot_be_encoded_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    span = make_spans()[-1]
    span._attributes = {"ok": 1, "bad": object()}  # type: ignore[attr-defined]  # the SDK would refuse it
    request = ExportTraceServiceRequest.FromString(encode_spans([span]))
    assert [kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes] == ["ok"]
    assert "attribute 'bad' not exported" in caplog.text


class Collector:
    """A real HTTP server answering each POST with the next queued status (200 when the queue is empty)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = collector.statuses.pop(0) if collector.statuses else 200
                self.send_response(status)
                if status in (429, 503):  # retry at once: the test checks the retries, not the backoff
                    self.send_header("retry-after", "0")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self, index: int = -1) -> list[str]:
        _, headers, body = self.requests[index]
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        return [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


def test_spans_are_posted_as_otlp_protobuf_with_env_headers(collector: Collector) -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-team = ml ,broken"}
    exporter = OtlpHttpSpanExporter(collector.url + "?tenant=t1", env=env)
    assert exporter.export(make_spans()) is SpanExportResult.SUCCESS
    assert exporter.export(make_spans()[:1]) is SpanExportResult.SUCCESS  # on the same connection
    path, headers, _ = collector.requests[0]
    assert path == "/v1/traces?tenant=t1"
    assert headers["content-type"] == "application/x-protobuf"
    assert (headers["authorization"], headers["x-team"]) == ("Bearer abc", "ml")
    assert collector.spans(0) == ["inner", "chat gpt-4o", "child of remote", ""]
    assert collector.spans(1) == ["inner"]


def test_traces_specific_settings_win_and_gzip_compresses(collector: Collector) -> None:
    env = {"OTEL_EXPORTER_OTLP_COMPRESSION": "none", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"}
    exporter = OtlpHttpSpanExporter(collector.url, env=env)
    assert exporter.export(make_spans()) is SpanExportResult.SUCCESS
    assert collector.requests[0][1]["content-encoding"] == "gzip"
    assert collector.spans() == ["inner", "chat gpt-4o", "child of remote", ""]


def test_retryable_statuses_are_retried_until_accepted(collector: Collector) -> None:
    collector.statuses = [503, 429]
    exporter = OtlpHttpSpanExporter(collector.url, timeout=30, env={})
    assert exporter.export(make_spans()[:1]) is SpanExportResult.SUCCESS
    assert len(collector.requests) == 3


def test_a_refused_batch_fails_at_once_and_says_why(collector: Collector, caplog: pytest.LogCaptureFixture) -> None:
    collector.statuses = [400]
    exporter = OtlpHttpSpanExporter(collector.url, env={})
    assert exporter.export(make_spans()[:1]) is SpanExportResult.FAILURE
    assert len(collector.requests) == 1
    assert "could not export 1 spans" in caplog.text and "HTTP 400" in caplog.text


def test_an_unreachable_collector_fails_within_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    exporter = OtlpHttpSpanExporter("http://127.0.0.1:9/v1/traces", timeout=0.5, env={})
    assert exporter.export(make_spans()[:1]) is SpanExportResult.FAILURE
    assert "ConnectionRefusedError" in caplog.text


def test_after_shutdown_nothing_is_sent(collector: Collector) -> None:
    exporter = OtlpHttpSpanExporter(collector.url, env={})
    exporter.shutdown()
    assert exporter.export(make_spans()[:1]) is SpanExportResult.FAILURE
    assert collector.requests == []


@pytest.mark.parametrize("endpoint", ["localhost:4318", "ftp://collector/v1/traces", "http:///v1/traces"])
def test_a_bad_endpoint_is_refused_with_the_fix(endpoint: str) -> None:
    with pytest.raises(ValueError, match=re.escape("not an http(s) URL; set e.g. http://localhost:4318")):
        OtlpHttpSpanExporter(endpoint, env={})

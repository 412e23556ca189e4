"""The OTLP port takes real exporters' spans into otel_traces (and llm_calls), and refuses garbage."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as SpanStatus

from llmtrace import semconv
from tests.server_process import ServerProcess, http, otlp_request, post_spans, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("otlp") / "data")
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


def export_one_span(server: ServerProcess, service: str, compression: Compression = Compression.NoCompression) -> Any:
    """Emit a parent and a GenAI child span through the SDK and the real OTLP/HTTP exporter."""
    exporter = OTLPSpanExporter(endpoint=f"{server.otlp_url}/v1/traces", compression=compression)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.otlp", "1.2.3")
    with (
        tracer.start_as_current_span("handle request") as parent,
        tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span,
    ):
        span.set_attribute(semconv.OPERATION_NAME, "chat")
        span.set_attribute(semconv.PROVIDER_NAME, "openai")
        span.set_attribute(semconv.REQUEST_MODEL, "gpt-4o-mini")
        span.set_attribute(semconv.USAGE_INPUT_TOKENS, 120)
        span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 30)
        span.set_attribute(semconv.REQUEST_TEMPERATURE, 0.5)
        span.set_attribute(semconv.RESPONSE_FINISH_REASONS, ["stop"])
        span.set_status(SpanStatus(StatusCode.ERROR, "rate limited"))
    provider.shutdown()
    return parent.get_span_context(), span.get_span_context()


def test_sdk_exporter_spans_land_in_otel_traces_with_ids_and_attributes(server: ServerProcess, client: Any) -> None:
    parent, child = export_one_span(server, "proto-svc")
    rows = client.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanKind, ServiceName, ScopeName, ScopeVersion, StatusCode,"
        " StatusMessage, SpanAttributes FROM otel_traces"
        " WHERE ServiceName = 'proto-svc' AND SpanName = 'chat gpt-4o-mini'"
    ).result_rows
    assert len(rows) == 1
    trace_id, span_id, parent_id, kind, service, scope, version, status, message, attrs = rows[0]
    assert trace_id == format(child.trace_id, "032x") and span_id == format(child.span_id, "016x")
    assert parent_id == format(parent.span_id, "016x")
    assert (kind, service, scope, version, status, message) == (
        "Client",
        "proto-svc",
        "tests.otlp",
        "1.2.3",
        "Error",
        "rate limited",
    )
    assert attrs[semconv.USAGE_INPUT_TOKENS] == "120"
    assert attrs[semconv.REQUEST_TEMPERATURE] == "0.5"
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == '["stop"]'


def test_gzip_exports_are_stored(server: ServerProcess, client: Any) -> None:
    export_one_span(server, "gzip-svc", Compression.Gzip)
    assert client.command("SELECT count() FROM otel_traces WHERE ServiceName = 'gzip-svc'") == 2


def test_genai_spans_are_typed_into_llm_calls(server: ServerProcess, client: Any) -> None:
    export_one_span(server, "typed-svc")
    rows = client.query(
        "SELECT Provider, RequestModel, InputTokens, OutputTokens, IsError FROM llm_calls"
        " WHERE ServiceName = 'typed-svc'"
    ).result_rows
    assert rows == [("openai", "gpt-4o-mini", 120, 30, 1)]


def test_json_requests_are_stored_and_answered_in_json(server: ServerProcess, client: Any) -> None:
    start = time.time_ns()  # recent: rows already past the table TTL would be dropped on insert
    payload = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "j"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "json span",
            "kind": 3, "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**9),
            "attributes": [{"key": "n", "value": {"intValue": "7"}}]}]}]}]}  # fmt: skip
    status, headers, body = post_spans(server, json.dumps(payload).encode(), "application/json")
    assert (status, headers["content-type"], body) == (200, "application/json", b"{}")
    rows = client.query(
        "SELECT TraceId, SpanId, Duration, SpanAttributes['n'] FROM otel_traces WHERE ServiceName = 'json-svc'"
    )
    assert rows.result_rows == [("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", 1_000_000_000, "7")]


def test_protobuf_success_is_an_empty_export_response(server: ServerProcess) -> None:
    status, headers, body = post_spans(server, otlp_request(3, service="pb-response").SerializeToString())
    assert (status, headers["content-type"]) == (200, "application/x-protobuf")
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert not response.HasField("partial_success")


def test_malformed_protobuf_is_a_400_with_the_reason(server: ServerProcess) -> None:
    status, _, body = post_spans(server, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert status == 400
    reason = Status()
    reason.ParseFromString(body)
    assert "protobuf" in reason.message


def test_malformed_json_is_a_400_with_the_reason(server: ServerProcess) -> None:
    status, _, body = post_spans(server, b'{"resourceSpans": [{"scopeSpans": 3}]}', "application/json")
    assert status == 400 and "scopeSpans must be an array" in json.loads(body)["message"]


def test_timestamps_past_2262_are_refused(server: ServerProcess) -> None:
    request = otlp_request(1)
    request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**64 - 1
    status, _, body = post_spans(server, request.SerializeToString())
    assert status == 400 and b"2262" in body


def test_unknown_content_types_are_415(server: ServerProcess) -> None:
    assert post_spans(server, b"hello", "text/plain")[0] == 415


def test_other_methods_are_405(server: ServerProcess) -> None:
    assert http("GET", f"{server.otlp_url}/v1/traces")[0] == 405


def test_bodies_over_the_limit_are_413(server: ServerProcess) -> None:
    assert post_spans(server, b"\0" * (17 * 1024 * 1024))[0] == 413


def test_gzip_bombs_are_413(server: ServerProcess) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    assert post_spans(server, bomb, headers={"Content-Encoding": "gzip"})[0] == 413


def test_corrupt_gzip_is_a_400(server: ServerProcess) -> None:
    assert post_spans(server, b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"})[0] == 400


def test_an_acknowledged_batch_is_visible_to_the_next_query(server: ServerProcess, client: Any) -> None:
    for _ in range(5):
        assert post_spans(server, otlp_request(200, service="visible").SerializeToString())[0] == 200
    assert client.command("SELECT count() FROM otel_traces WHERE ServiceName = 'visible'") == 1000

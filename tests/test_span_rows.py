"""SDK spans read directly into rows give exactly the rows of their OTLP encoding."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceState

from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, rows_from_request
from llmtrace.store.span_rows import rows_from_spans

ODD_VALUES: dict[str, Any] = {
    "s": "é <b> & \u2028",
    "empty": "",
    "t": True,
    "f": False,
    "i": -(2**63),
    "huge": 2**70,  # the OTLP encoder cannot encode it and leaves the attribute out
    "d": 1e-7,
    "nan": float("nan"),
    "whole": 3.0,
    "strs": ("stop", "<tool>"),
    "ints": (1, 2),
    "floats": (0.5, 1e21),
    "bools": (True, False),
    "with_none": ("a", None),
    "blob": b"\x00\xff",
}


def finished_spans() -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope", "1.2")
    other = SpanContext(0xABC, 0xDEF, is_remote=True, trace_state=TraceState([("k", "v")]))
    remote_parent = NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=True, trace_state=TraceState([("a", "1")])))
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=ODD_VALUES) as root:
        root.add_event("evt", {"x": 1, "y": ("a",)})
        root.add_event("bare")
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT, links=[Link(other, {"l": 2.5})]) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    with tracer.start_as_current_span("remote", context=trace.set_span_in_context(remote_parent)) as span:
        span.set_status(Status(StatusCode.OK))
    provider.get_tracer("no-version").start_span("plain", kind=SpanKind.CONSUMER).end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_rows_equal_those_of_the_otlp_encoding_for_every_field_and_value_kind() -> None:
    spans = finished_spans()
    expected = sorted(rows_from_request(encode_spans(spans)), key=lambda row: row[2])
    got = sorted(rows_from_spans(spans), key=lambda row: row[2])
    for want, have in zip(expected, got, strict=True):
        assert dict(zip(OTEL_TRACES_COLUMNS, have, strict=True)) == dict(zip(OTEL_TRACES_COLUMNS, want, strict=True))


def test_odd_values_read_as_the_collector_stores_them() -> None:
    (root,) = [row for row in rows_from_spans(finished_spans()) if row[5] == "root"]
    attributes = root[OTEL_TRACES_COLUMNS.index("SpanAttributes")]
    assert "huge" not in attributes
    assert attributes["strs"] == '["stop","\\u003ctool\\u003e"]' and attributes["with_none"] == '["a",null]'
    assert (attributes["nan"], attributes["whole"], attributes["blob"]) == ("json: unsupported value: NaN", "3", "AP8=")

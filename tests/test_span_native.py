"""The direct exporter's Native block: the bytes clickhouse-connect's own serializer writes for the
rows of the same spans (so the server stores the rows ``rows_from_spans`` gives), for every value kind."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES
from llmtrace.store.span_native import native_block
from llmtrace.store.span_rows import rows_from_spans
from tests.test_span_rows import finished_spans


def clickhouse_connect_native(rows: list[tuple[Any, ...]]) -> bytes:
    """What clickhouse-connect sends for these rows (the exporter's INSERT before this module)."""
    types = [get_from_name(name) for name in OTEL_TRACES_TYPES]
    columns = [list(column) for column in zip(*rows, strict=True)]
    context = InsertContext("otel_traces", list(OTEL_TRACES_COLUMNS), types, columns, column_oriented=True)
    context.current_block = 1  # the block alone, without the HTTP "INSERT ... FORMAT Native" prefix
    return b"".join(NativeTransform().build_insert(context))


def many_spans() -> list[Any]:
    """300 spans (a 2-byte LowCardinality index for their names), text over 127 bytes (a 2-byte
    length), NUL, unicode and ASCII-only columns, spans with and without events and links."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "ünï"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for i in range(300):
        with tracer.start_as_current_span(f"op {i}") as span:
            span.set_attributes({"long": "x" * (100 + i), "nul": "a\x00b" if i % 7 == 0 else "ab", "i": i})
            if i % 3 == 0:
                span.add_event(f"e{i % 5}", {"k": "é" if i % 2 else "e"})
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_the_block_is_clickhouse_connects_for_every_field_and_value_kind() -> None:
    spans = finished_spans()
    assert native_block(spans) == clickhouse_connect_native(rows_from_spans(spans))


def test_the_block_is_clickhouse_connects_for_long_text_nul_and_wide_dictionaries() -> None:
    spans = many_spans()
    assert native_block(spans) == clickhouse_connect_native(rows_from_spans(spans))
    assert native_block(spans[:1]) == clickhouse_connect_native(rows_from_spans(spans[:1]))

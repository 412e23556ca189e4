"""The direct ClickHouse span exporter: real SDK spans into real chDB, and a database that is down."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult

from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

DOWN_URL = "http://127.0.0.1:1"  # nothing listens on port 1


def provider_for(exporter: ClickHouseSpanExporter, *, batch: bool = False) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "exporter-test"}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def emit_llm_span(provider: TracerProvider, name: str = "chat gpt-4o") -> None:
    with provider.get_tracer("test").start_as_current_span(name) as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                             "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3})  # fmt: skip


def test_spans_flow_through_a_batch_processor_into_otel_traces_and_llm_calls(store: ChdbClient, store_url: str) -> None:
    exporter = ClickHouseSpanExporter(store_url)
    provider = provider_for(exporter, batch=True)
    for _ in range(5):
        emit_llm_span(provider)
    provider.shutdown()
    assert store.query("SELECT count(), any(ServiceName), any(SpanKind) FROM otel_traces").result_rows == [
        (5, "exporter-test", "Internal"),
    ]  # fmt: skip
    assert store.query("SELECT count(), sum(InputTokens), sum(TotalTokens) FROM llm_calls").result_rows == [(5, 60, 75)]
    assert (exporter.exported_spans, exporter.dropped_spans) == (5, 0)


def test_exporter_accepts_an_existing_client(store: ChdbClient) -> None:
    exporter = ClickHouseSpanExporter(client=store)
    provider = provider_for(exporter)
    emit_llm_span(provider)
    assert store.query("SELECT count() FROM llm_calls").result_rows == [(1,)]


def test_database_down_returns_failure_without_raising() -> None:
    exporter = ClickHouseSpanExporter(DOWN_URL, max_buffered_spans=100)
    provider = provider_for(exporter)
    emit_llm_span(provider)  # SimpleSpanProcessor calls export inline: an exception would surface here
    assert exporter.force_flush() is False
    assert exporter.buffered_spans == 1


def test_spans_beyond_the_buffer_are_dropped_and_counted() -> None:
    exporter = ClickHouseSpanExporter(DOWN_URL, max_buffered_spans=2)
    provider = provider_for(exporter)
    for _ in range(5):
        emit_llm_span(provider)
    assert (exporter.buffered_spans, exporter.dropped_spans) == (2, 3)


def test_shutdown_with_the_database_down_counts_the_buffered_spans_as_dropped() -> None:
    exporter = ClickHouseSpanExporter(DOWN_URL, max_buffered_spans=10)
    provider = provider_for(exporter)
    emit_llm_span(provider)
    provider.shutdown()
    assert (exporter.buffered_spans, exporter.dropped_spans) == (0, 1)


def test_database_down_is_logged_once_with_its_url(caplog: pytest.LogCaptureFixture) -> None:
    exporter = ClickHouseSpanExporter(DOWN_URL)
    provider = provider_for(exporter)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            emit_llm_span(provider)
            exporter.force_flush()
    ours = [r for r in caplog.records if r.name == "llmtrace.exporters.clickhouse"]
    assert len(ours) == 1
    assert "127.0.0.1:1" in ours[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith(("urllib3", "clickhouse_connect"))]


def test_buffered_spans_are_written_once_the_table_exists(empty_store: ChdbClient, chdb_path: Path) -> None:
    exporter = ClickHouseSpanExporter(f"chdb://{chdb_path}?database={empty_store.database}")
    provider = provider_for(exporter)
    emit_llm_span(provider, "first")
    assert exporter.buffered_spans == 1  # no otel_traces yet: the insert failed, the span waits
    apply_migrations(client_runner(empty_store))
    assert exporter.force_flush() is True
    assert empty_store.query("SELECT SpanName FROM otel_traces").result_rows == [("first",)]
    assert exporter.dropped_spans == 0
    provider.shutdown()


def test_export_after_shutdown_fails() -> None:
    exporter = ClickHouseSpanExporter(DOWN_URL)
    exporter.shutdown()
    assert exporter.export([]) is SpanExportResult.FAILURE


def test_over_http_the_stored_rows_are_the_rows_of_the_sdk_spans(tmp_path: Path) -> None:
    """clickhouse-connect sends typed columns (no DESCRIBE first); every value type, unicode, a
    large attribute, events and links arrive exactly as ``rows_from_spans`` makes them."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
    from llmtrace.store.span_rows import rows_from_spans
    from tests.server_process import ServerProcess

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "http ✓"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test", "1")
    with tracer.start_as_current_span("parent") as parent:
        parent.set_attributes({"s": "日本語 🙂\n\t\\", "i": -(2**63), "f": 1e-7, "b": False, "big": "z" * 200_000,
                               "a": ["x", "y"], "n": [1, 2]})  # fmt: skip
        parent.add_event("ev ✓", {"k": 1})
        with tracer.start_as_current_span("child", links=[trace.Link(parent.get_span_context(), {"l": "v"})]):
            pass
    spans = memory.get_finished_spans()
    as_ns = {"Timestamp": "toUnixTimestamp64Nano(Timestamp)",
             "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"}  # fmt: skip
    columns = ", ".join(as_ns.get(name, f"`{name}`") for name in OTEL_TRACES_COLUMNS)
    server = ServerProcess(tmp_path / "data").wait_ready()
    try:
        exporter = ClickHouseSpanExporter(server.http_url)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        stored = server.client().query(f"SELECT {columns} FROM otel_traces ORDER BY SpanName DESC").result_rows
    finally:
        server.stop()
    expected = sorted(rows_from_spans(spans), key=lambda row: row[5], reverse=True)
    assert len(stored) == 2
    assert [tuple(row) for row in stored] == expected


def test_the_declared_column_types_are_the_migrated_tables(store: ChdbClient) -> None:
    """The exporter sends these types instead of asking the server: they must be the schema's."""
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES

    rows = store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'"
        " ORDER BY position"
    ).result_rows
    assert [tuple(row) for row in rows] == list(zip(OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES, strict=True))


def test_over_http_the_native_blocks_store_the_rows_the_row_insert_stored(tmp_path: Path) -> None:
    """Every column of ``otel_traces``, for spans with events, links, attributes of every kind,
    errors, unicode, long and NUL-holding text: the exporter's Native blocks (two exports in one
    INSERT) store exactly what clickhouse-connect's column insert of ``rows_from_spans`` stored."""
    import uuid

    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES
    from llmtrace.store.span_rows import rows_from_spans
    from tests.server_process import ServerProcess
    from tests.test_span_native import many_spans
    from tests.test_span_rows import finished_spans

    odd, many = finished_spans(), many_spans()
    as_ns = {"Timestamp": "toUnixTimestamp64Nano(Timestamp)",
             "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"}  # fmt: skip
    columns = ", ".join(as_ns.get(name, f"`{name}`") for name in OTEL_TRACES_COLUMNS)
    server = ServerProcess(tmp_path / "data").wait_ready()
    try:
        client = server.client()
        rows = rows_from_spans(odd + many)  # the previous path: rows, then clickhouse-connect's columns
        client.insert("otel_traces", [list(c) for c in zip(*rows, strict=True)], column_names=OTEL_TRACES_COLUMNS,
                      column_type_names=OTEL_TRACES_TYPES, column_oriented=True,
                      settings={"insert_deduplication_token": uuid.uuid4().hex})  # fmt: skip
        exporter = ClickHouseSpanExporter(server.http_url, background=True)
        with exporter._lock:  # both exports queue before the sender starts: one INSERT of two blocks
            exporter._timer = threading.Thread()
        assert exporter.export(odd) == exporter.export(many) == SpanExportResult.SUCCESS
        exporter._timer = None
        assert exporter.force_flush() is True
        exporter.shutdown()
        stored = client.query(f"SELECT {columns} FROM otel_traces ORDER BY SpanId, TraceId").result_rows
    finally:
        server.stop()
    assert len(stored) == 2 * len(rows)
    assert stored[0::2] == stored[1::2]  # each span's two rows are equal in every column
    assert sorted(tuple(row) for row in stored[0::2]) == sorted(rows)


def test_native_blocks_beyond_max_buffered_bytes_are_dropped_oldest_first_and_counted() -> None:
    from tests.test_span_rows import finished_spans

    first, second = finished_spans(), finished_spans()
    exporter = ClickHouseSpanExporter(DOWN_URL, max_buffered_spans=100, max_buffered_bytes=1)
    assert exporter.export(first) is SpanExportResult.FAILURE
    assert (exporter.buffered_spans, exporter.dropped_spans) == (len(first), 0)  # the newest block stays
    assert exporter.export(second) is SpanExportResult.FAILURE
    assert (exporter.buffered_spans, exporter.dropped_spans) == (len(second), len(first))
    assert exporter.buffered_bytes > 0
    exporter.shutdown()

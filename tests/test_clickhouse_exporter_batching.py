"""The direct exporter batching like the server: few large INSERTs, none later than max_delay_s."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from tests.test_span_rows import finished_spans


class CountingClient:
    """The real client, counting its INSERTs (the one thing the table cannot tell)."""

    def __init__(self, client: ChdbClient) -> None:
        self.client = client
        self.inserts: list[int] = []

    def insert(self, table: str, rows: list[Any], column_names: Any, settings: Any = None) -> Any:
        summary = self.client.insert(table, rows, column_names=column_names, settings=settings)
        self.inserts.append(len(rows))  # once done: the test may use the connection again
        return summary


def stored(store: ChdbClient) -> int:
    return int(store.query("SELECT count() FROM otel_traces").result_rows[0][0])


def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_exports_are_held_until_insert_spans_are_pending_then_go_in_one_insert(store: ChdbClient) -> None:
    spans = finished_spans()
    n = len(spans)
    client = CountingClient(store)
    exporter = ClickHouseSpanExporter(client=client, insert_spans=2 * n + 1, max_delay_s=3600)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert (client.inserts, exporter.buffered_spans, stored(store)) == ([], 2 * n, 0)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert (client.inserts, exporter.buffered_spans, stored(store)) == ([3 * n], 0, 3 * n)
    exporter.shutdown()


@pytest.mark.parametrize("background", [False, True])
def test_spans_waiting_longer_than_max_delay_are_inserted_without_another_export(
    store: ChdbClient, background: bool
) -> None:
    spans = finished_spans()
    client = CountingClient(store)
    exporter = ClickHouseSpanExporter(client=client, insert_spans=1000, max_delay_s=0.2, background=background)
    started = time.monotonic()
    exporter.export(spans)
    assert wait_for(lambda: client.inserts == [len(spans)])  # not polling the table: one chDB connection
    assert time.monotonic() - started >= 0.2 and stored(store) == len(spans)
    exporter.shutdown()


def test_force_flush_and_shutdown_insert_what_is_held(store: ChdbClient) -> None:
    spans = finished_spans()
    exporter = ClickHouseSpanExporter(client=store, insert_spans=1000, max_delay_s=3600)
    exporter.export(spans)
    assert exporter.force_flush() is True and stored(store) == len(spans)
    exporter.export(finished_spans())  # new spans (an identical block would be deduplicated)
    exporter.shutdown()
    assert stored(store) == exporter.exported_spans == 2 * len(spans)


def test_insert_spans_above_the_buffer_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="raise max_buffered_spans"):
        ClickHouseSpanExporter(client=object(), insert_spans=20_000, max_buffered_spans=10_000)

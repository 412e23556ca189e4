"""The direct exporter with ``background=True``: a sender thread INSERTs while ``export()`` converts
the next spans; rows queued meanwhile go in one INSERT; flush, shutdown and faults keep every row
(stored, or counted in ``dropped_spans``). Real chDB and a real ``llmtrace server`` process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExportResult

from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from tests.server_process import ServerProcess
from tests.test_span_rows import finished_spans

WAIT = 30.0  # generous bound for events that must happen; never a synchronisation sleep
DOWN_URL = "http://127.0.0.1:1"


class GatedClient:
    """A real client whose INSERTs wait for the test: ``entered`` is set when one starts, and it
    proceeds once ``opened`` is set (so the test knows an INSERT is in flight, and for how long)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.inserts: list[int] = []
        self.events: list[str] = []

    def insert(self, table: str, rows: list[Any], column_names: Any, settings: Any = None) -> Any:
        self.entered.set()
        assert self.opened.wait(WAIT), "the test never let the INSERT proceed"
        summary = self.client.insert(table, rows, column_names=column_names, settings=settings)
        self.inserts.append(len(rows))
        self.events.append("inserted")
        return summary


def stored(client: Any) -> int:
    return int(client.query("SELECT count() FROM otel_traces").result_rows[0][0])


def in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_export_returns_while_its_insert_is_in_flight(store: ChdbClient) -> None:
    spans = finished_spans()
    gated = GatedClient(store)
    exporter = ClickHouseSpanExporter(client=gated, background=True)
    results: list[SpanExportResult] = []
    exporting = in_thread(lambda: results.append(exporter.export(spans)))
    assert gated.entered.wait(WAIT)
    exporting.join(WAIT)  # without the sender thread, export() would be inside the held INSERT
    assert not exporting.is_alive() and results == [SpanExportResult.SUCCESS]
    assert exporter.buffered_spans == len(spans) and gated.inserts == []
    gated.opened.set()
    assert exporter.force_flush() is True
    assert (gated.inserts, stored(store), exporter.exported_spans) == ([len(spans)], len(spans), len(spans))
    exporter.shutdown()


def test_rows_queued_during_an_insert_go_in_the_next_one(store: ChdbClient) -> None:
    first, second, third = finished_spans(), finished_spans(), finished_spans()
    n = len(first)
    gated = GatedClient(store)
    exporter = ClickHouseSpanExporter(client=gated, background=True)
    assert exporter.export(first) is SpanExportResult.SUCCESS
    assert gated.entered.wait(WAIT)
    assert exporter.export(second) is SpanExportResult.SUCCESS  # queued behind the INSERT in flight
    assert exporter.export(third) is SpanExportResult.SUCCESS
    assert exporter.buffered_spans == 3 * n
    gated.opened.set()
    assert exporter.force_flush() is True
    assert gated.inserts == [n, 2 * n]  # not [n, n, n]: one INSERT's fixed cost for both
    assert stored(store) == exporter.exported_spans == 3 * n
    exporter.shutdown()


def test_shutdown_waits_for_the_rows_in_flight(store: ChdbClient) -> None:
    spans = finished_spans()
    gated = GatedClient(store)
    exporter = ClickHouseSpanExporter(client=gated, background=True)
    exporter.export(spans)
    assert gated.entered.wait(WAIT)
    closing = in_thread(lambda: (exporter.shutdown(), gated.events.append("shutdown returned")))
    closing.join(0.5)  # a shutdown that did not wait would have returned by now
    gated.opened.set()
    closing.join(WAIT)
    assert gated.events == ["inserted", "shutdown returned"]
    assert (stored(store), exporter.exported_spans, exporter.dropped_spans) == (len(spans), len(spans), 0)


def test_database_down_keeps_rows_for_retry_counts_what_it_drops_and_never_raises() -> None:
    spans = finished_spans()
    room = len(spans) + 1
    exporter = ClickHouseSpanExporter(DOWN_URL, background=True, max_buffered_spans=room)
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # queued; the sender has not failed yet
    assert exporter.force_flush() is False
    assert exporter.buffered_spans == len(spans)
    assert exporter.export(spans) is SpanExportResult.FAILURE  # failing: kept for retry, up to the buffer
    # Over HTTP an export's spans are one Native block: to make room the oldest export goes whole.
    assert (exporter.buffered_spans, exporter.dropped_spans) == (len(spans), len(spans))
    exporter.shutdown()
    assert (exporter.buffered_spans, exporter.dropped_spans) == (0, 2 * len(spans))
    assert exporter.export(spans) is SpanExportResult.FAILURE


def test_server_killed_while_a_batch_is_in_flight_loses_no_acknowledged_span(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).wait_ready()
    gated = GatedClient(server.client())
    exporter = ClickHouseSpanExporter(client=gated, background=True)
    first, second = finished_spans(), finished_spans()
    try:
        assert exporter.export(first) is SpanExportResult.SUCCESS
        assert gated.entered.wait(WAIT)
        server.kill9()  # the INSERT the sender holds now meets a dead server
        gated.opened.set()
        with exporter._lock:
            assert exporter._wake.wait_for(lambda: exporter._failures == 1, WAIT)
        assert exporter.export(second) is SpanExportResult.FAILURE  # down: kept, not lost
        assert (exporter.buffered_spans, exporter.dropped_spans) == (len(first) + len(second), 0)
        server = ServerProcess(data, ports=(server.otlp_port, server.http_port)).wait_ready()
        assert exporter.force_flush() is True
        assert stored(server.client()) == exporter.exported_spans == len(first) + len(second)
        assert exporter.dropped_spans == 0
        exporter.shutdown()
    finally:
        server.stop()


def test_export_waits_while_half_the_buffer_is_queued_behind_an_insert(store: ChdbClient) -> None:
    first, second = finished_spans(), finished_spans()
    n = len(first)
    gated = GatedClient(store)
    exporter = ClickHouseSpanExporter(client=gated, background=True, max_buffered_spans=2 * n)
    assert exporter.export(first) is SpanExportResult.SUCCESS
    assert gated.entered.wait(WAIT)
    waiting = in_thread(lambda: exporter.export(second))
    waiting.join(0.5)  # back-pressure: n rows queued = half the buffer, so it waits for the INSERT
    assert waiting.is_alive() and exporter.dropped_spans == 0
    gated.opened.set()
    waiting.join(WAIT)
    assert not waiting.is_alive()
    assert exporter.force_flush() is True and stored(store) == 2 * n and exporter.dropped_spans == 0
    exporter.shutdown()


def test_the_exporter_llmtrace_builds_for_a_clickhouse_url_sends_in_the_background() -> None:
    """``instrument(clickhouse_url=...)`` feeds it 512-span batches: each would otherwise be an
    INSERT of its own (~5x the server CPU per span, README)."""
    from llmtrace import config
    from llmtrace._setup import _build_exporter

    settings = config.resolve(known_providers=(), env={}, clickhouse_url=DOWN_URL)
    lazy = _build_exporter(settings)
    built = lazy.exporter  # type: ignore[attr-defined]
    assert isinstance(built, ClickHouseSpanExporter) and built._background
    assert (built._insert_spans, built._max_delay_s) == (8192, 1.0)  # large INSERTs below saturation too
    built.shutdown()


def test_a_healthy_database_slower_than_the_app_makes_export_wait_instead_of_dropping(store: ChdbClient) -> None:
    """The INSERT in flight and the spans queued behind it may not fill the buffer: an ``export()``
    that would overflow it waits for that INSERT (before, it dropped the oldest queued spans while
    answering SUCCESS: 31% of the spans acknowledged in ``benchmarks/direct_exporter.py``)."""
    first, second, third = finished_spans(), finished_spans(), finished_spans()
    n = len(first)
    gated = GatedClient(store)
    exporter = ClickHouseSpanExporter(client=gated, background=True, max_buffered_spans=3 * n - 1)
    assert exporter.export(first) is SpanExportResult.SUCCESS
    assert gated.entered.wait(WAIT)
    assert exporter.export(second) is SpanExportResult.SUCCESS  # n + n fit in 3n - 1
    waiting = in_thread(lambda: exporter.export(third))  # n + 2n would not
    waiting.join(0.5)
    assert waiting.is_alive() and exporter.dropped_spans == 0
    gated.opened.set()
    waiting.join(WAIT)
    assert exporter.force_flush() is True
    assert (stored(store), exporter.exported_spans, exporter.dropped_spans) == (3 * n, 3 * n, 0)
    exporter.shutdown()

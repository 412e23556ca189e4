"""The direct exporter's retries store each span exactly once: a block whose reply was lost after
the server wrote it is sent again unchanged under its deduplication token, so neither
``otel_traces`` nor the tables its views feed (``llm_calls``, the ``llm_calls_1m`` rollup) count it
twice. A real ``llmtrace server`` behind a proxy that loses replies or refuses INSERTs, and chDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from tests.flaky_proxy import FlakyProxy
from tests.server_process import ServerProcess

WAIT = 30.0  # bound for events that must happen; never a synchronisation sleep
MODES = {  # how the exporter inserts: each keeps a failed block for its retry
    "each-export": {},
    "background": {"background": True},
    "insert-spans": {"insert_spans": 25, "max_delay_s": 3600.0},
}


def llm_spans(service: str, n: int) -> list[ReadableSpan]:
    """``n`` finished GenAI spans of ``service`` (each one row of ``llm_calls``)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("test").start_as_current_span("chat gpt-4o") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                 "gen_ai.usage.input_tokens": 10 + i, "gen_ai.usage.output_tokens": 3})  # fmt: skip
    provider.shutdown()
    return list(memory.get_finished_spans())


def stored(client: Any, service: str) -> tuple[int, int, int, int]:
    """(spans, distinct span ids, llm_calls rows, llm_calls_1m calls) of ``service``."""
    where = {"service": service}
    row = client.query(
        "SELECT count(), uniqExact(SpanId) FROM otel_traces WHERE ServiceName = {service:String}", parameters=where
    ).result_rows[0]
    calls = client.query("SELECT count() FROM llm_calls WHERE ServiceName = {service:String}", parameters=where)
    rollup = client.query("SELECT sum(Calls) FROM llm_calls_1m WHERE ServiceName = {service:String}", parameters=where)
    return int(row[0]), int(row[1]), int(calls.result_rows[0][0]), int(rollup.result_rows[0][0] or 0)


def wait_failures(exporter: ClickHouseSpanExporter, failures: int) -> None:
    """Until the exporter has seen ``failures`` failed INSERTs (background mode fails in its sender)."""
    with exporter._lock:
        assert exporter._wake.wait_for(lambda: exporter._failures >= failures, WAIT)


def export_failing(exporter: ClickHouseSpanExporter, spans: list[ReadableSpan]) -> None:
    """Export ``spans`` while INSERTs fail: the export reports FAILURE (background: its sender fails)."""
    if exporter._background:
        failures = exporter._failures
        exporter.export(spans)
        wait_failures(exporter, failures + 1)
    elif exporter._insert_spans > len(spans):
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # held for batching
        assert exporter.force_flush() is False  # its INSERT fails
    else:
        assert exporter.export(spans) is SpanExportResult.FAILURE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("retry") / "data").wait_ready()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(server.http_port)
    try:
        yield flaky
    finally:
        flaky.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_block_written_whose_reply_was_lost_is_stored_once_after_the_retry(
    server: ServerProcess, proxy: FlakyProxy, mode: str
) -> None:
    service = f"lost-reply-{mode}"
    first, during, after = llm_spans(service, 20), llm_spans(service, 7), llm_spans(service, 30)
    exporter = ClickHouseSpanExporter(proxy.url, **MODES[mode])  # type: ignore[arg-type]
    direct = server.client()
    try:
        proxy.lose_replies = True
        export_failing(exporter, first)
        assert proxy.lost >= 1 and stored(direct, service) == (20, 20, 20, 20)  # written, reply lost
        exporter.export(during)  # during the outage: kept behind the failed block
        assert exporter.buffered_spans == 27 and exporter.dropped_spans == 0
        proxy.lose_replies = False
        assert exporter.force_flush() is True
        assert exporter.export(after) is SpanExportResult.SUCCESS
        assert exporter.force_flush() is True
        assert stored(direct, service) == (57, 57, 57, 57)  # the retried block was not counted again
        assert (exporter.exported_spans, exporter.dropped_spans, exporter.buffered_spans) == (57, 0, 0)
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("mode", MODES)
def test_a_block_that_never_arrived_is_stored_once_after_the_retry(
    server: ServerProcess, proxy: FlakyProxy, mode: str
) -> None:
    service = f"refused-{mode}"
    first, during = llm_spans(service, 20), llm_spans(service, 7)
    exporter = ClickHouseSpanExporter(proxy.url, **MODES[mode])  # type: ignore[arg-type]
    direct = server.client()
    try:
        proxy.refuse_inserts = True
        export_failing(exporter, first)
        assert proxy.refused >= 1 and stored(direct, service) == (0, 0, 0, 0)
        exporter.export(during)
        proxy.refuse_inserts = False
        assert exporter.force_flush() is True
        assert stored(direct, service) == (27, 27, 27, 27)
        assert (exporter.exported_spans, exporter.dropped_spans) == (27, 0)
    finally:
        exporter.shutdown()


def test_retrying_inserts_the_failed_block_unchanged_under_its_token_then_the_new_rows(
    server: ServerProcess, proxy: FlakyProxy
) -> None:
    """The retry is the same block (rows, order, token); rows exported meanwhile follow in a block
    with a token of their own."""
    sent: list[tuple[int, str]] = []

    class Recording:
        def __init__(self, client: Any) -> None:
            self.client = client

        def insert(self, table: str, rows: list[Any], column_names: Any, settings: dict[str, Any]) -> Any:
            sent.append((len(rows), settings["insert_deduplication_token"]))
            assert settings["insert_deduplicate"] == 1
            assert settings["deduplicate_blocks_in_dependent_materialized_views"] == 1
            return self.client.insert(table, rows, column_names=column_names, settings=settings)

    import clickhouse_connect

    service = "unchanged"
    exporter = ClickHouseSpanExporter(
        client=Recording(clickhouse_connect.get_client(host="127.0.0.1", port=proxy.port))
    )
    proxy.lose_replies = True
    assert exporter.export(llm_spans(service, 5)) is SpanExportResult.FAILURE
    assert exporter.export(llm_spans(service, 3)) is SpanExportResult.FAILURE  # in the back-off: not sent
    proxy.lose_replies = False
    assert exporter.force_flush() is True
    (first, token), (retried, same), (new, other) = sent
    assert (first, retried, new) == (5, 5, 3) and same == token and other != token
    assert stored(server.client(), service) == (8, 8, 8, 8)
    exporter.shutdown()


class LosingReplies:
    """A real chDB client whose first ``n`` INSERTs are written and then reported as failed."""

    def __init__(self, client: ChdbClient, n: int) -> None:
        self.client, self.n = client, n

    def insert(self, table: str, rows: list[Any], column_names: Any, settings: Any = None) -> Any:
        summary = self.client.insert(table, rows, column_names=column_names, settings=settings)
        if self.n:
            self.n -= 1
            raise ConnectionResetError("the reply was lost after the write")
        return summary


@pytest.mark.parametrize("mode", MODES)
def test_on_chdb_a_written_block_whose_reply_was_lost_is_stored_once(
    chdb_path: Path, store: ChdbClient, mode: str
) -> None:
    """``chdb://`` stores open with llmtrace's engine config, whose MergeTree tables keep a deduplication window."""
    service = f"chdb-{mode}"
    exporter = ClickHouseSpanExporter(client=LosingReplies(store, 2), **MODES[mode])  # type: ignore[arg-type]
    export_failing(exporter, llm_spans(service, 20))
    assert stored(store, service) == (20, 20, 20, 20)
    exporter.export(llm_spans(service, 7))
    assert exporter.force_flush() is False  # the retry is written and its reply lost again
    assert exporter.force_flush() is True
    assert stored(store, service) == (27, 27, 27, 27)
    assert (exporter.exported_spans, exporter.dropped_spans) == (27, 0)
    exporter.shutdown()


def test_a_trimmed_failed_block_keeps_its_token_and_stores_each_remaining_span_once(store: ChdbClient) -> None:
    """Over ``max_buffered_spans`` the oldest rows go, those of a failed block included: its
    remaining rows retried under its token are stored once (the first attempt wrote them all)."""
    service = "trimmed"
    exporter = ClickHouseSpanExporter(client=LosingReplies(store, 1), max_buffered_spans=30)
    assert exporter.export(llm_spans(service, 20)) is SpanExportResult.FAILURE
    assert exporter.export(llm_spans(service, 15)) is SpanExportResult.FAILURE
    assert (exporter.buffered_spans, exporter.dropped_spans) == (30, 5)
    assert exporter.force_flush() is True
    assert stored(store, service) == (35, 35, 35, 35)  # the 5 "dropped" were written by the first attempt
    exporter.shutdown()

"""Migration 028 gives otel_traces and every table its views feed a deduplication window, so a block
retried under its ``insert_deduplication_token`` is stored once in each, on a ClickHouse server as
shipped (``non_replicated_deduplication_window`` 0): here chDB opened without llmtrace's engine config
stands in for one. Other writers' distinct inserts are all kept."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrace.exporters.clickhouse import ClickHouseSpanExporter
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, render
from tests.conftest_store import otel_row
from tests.test_clickhouse_exporter_retry import LosingReplies, llm_spans, stored

WINDOW = re.compile(r"\bnon_replicated_deduplication_window = (\d+)")


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbClient]:
    """A migrated store whose engine has ClickHouse's defaults (no llmtrace config: no window)."""
    from chdb import session

    path: Path = tmp_path_factory.mktemp("stock")
    client = ChdbClient(session.Session(str(path)), owns_session=True)
    assert (
        client.command(
            "SELECT value FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'"
        )
        == "0"
    )
    apply_migrations(client_runner(client))
    try:
        yield client
    finally:
        client.close()


def fed_tables(client: ChdbClient) -> set[str]:
    """otel_traces and every table a materialized view writes to."""
    views = client.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    ).result_rows
    return {"otel_traces"} | {re.search(r"\bTO \w+\.(\w+)", str(sql)).group(1) for (sql,) in views}  # type: ignore[union-attr]


def counts(client: ChdbClient, tables: set[str]) -> dict[str, int]:
    return {table: int(client.query(f"SELECT count() FROM {table}").result_rows[0][0]) for table in sorted(tables)}


def test_otel_traces_and_every_table_its_views_feed_keep_a_deduplication_window(stock: ChdbClient) -> None:
    tables = fed_tables(stock)
    assert {"llm_calls", "llm_calls_1m", "llm_traces", "otel_traces_content"} <= tables
    rows = stock.query(
        "SELECT name, engine_full FROM system.tables"
        " WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": sorted(tables)},
    ).result_rows
    windows = {name: WINDOW.search(str(engine)) for name, engine in rows}
    assert {name: int(m.group(1)) if m else 0 for name, m in windows.items()} == dict.fromkeys(tables, 1000)


def test_on_a_stock_server_a_block_whose_reply_was_lost_is_stored_once_in_every_table(stock: ChdbClient) -> None:
    service = "stock-lost-reply"
    tables = fed_tables(stock)
    exporter = ClickHouseSpanExporter(client=LosingReplies(stock, 1))
    assert exporter.export(llm_spans(service, 20)).name == "FAILURE"
    written = counts(stock, tables)  # the first attempt reached every table
    assert stored(stock, service) == (20, 20, 20, 20)
    assert exporter.force_flush() is True  # the retry: same block, same token
    assert counts(stock, tables) == written
    assert stored(stock, service) == (20, 20, 20, 20)
    exporter.shutdown()


def test_other_writers_distinct_inserts_are_all_kept_even_when_their_rollup_rows_are_equal(stock: ChdbClient) -> None:
    """A Collector-like writer (no token, ClickHouse's default insert_deduplicate): two inserts of
    different spans that sum to equal per-minute rollup blocks both count."""
    service = "collector-like"
    minute = time.time_ns() // 60_000_000_000 * 60_000_000_000
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.usage.input_tokens": "10", "gen_ai.usage.output_tokens": "2"}  # fmt: skip
    for second in (1, 2):
        row = otel_row(attributes, service_name=service, start_ns=minute + second * 1_000_000_000, duration_ns=10**9)
        stock.insert("otel_traces", [row], column_names=_columns())
    assert stored(stock, service) == (2, 2, 2, 2)


def test_a_block_sent_twice_without_a_token_is_stored_once_and_its_rollups_count_it_once(stock: ChdbClient) -> None:
    """The same spans INSERTed again without a token (a Collector or script retrying after a lost
    reply) are the same spans: stored once, in otel_traces and in every table its views feed.
    (ClickHouse 26.x's ``deduplicate_insert`` decides this even where ``insert_deduplicate`` is
    off, as llmtrace's engine sets it; the window of 028 makes the views' targets agree.)"""
    service = "sent-twice"
    tables = fed_tables(stock)
    start = time.time_ns() // 60_000_000_000 * 60_000_000_000
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.usage.input_tokens": "7", "gen_ai.usage.output_tokens": "3"}  # fmt: skip
    rows = [otel_row(attributes, service_name=service, start_ns=start + i * 1_000_000) for i in range(5)]
    stock.insert("otel_traces", rows, column_names=_columns())
    once = counts(stock, tables)
    stock.insert("otel_traces", rows, column_names=_columns())
    assert counts(stock, tables) == once
    assert stored(stock, service) == (5, 5, 5, 5)


def test_a_cluster_drops_the_window_its_replicated_tables_do_not_read() -> None:
    text = Path(__file__).resolve().parent.parent.joinpath("schemas", "028_deduplication_window.sql").read_text()
    assert render(text, cluster="llmtrace") == ""
    assert render(text).count("MODIFY SETTING non_replicated_deduplication_window = 1000") == 13


def _columns() -> list[str]:
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    return list(OTEL_TRACES_COLUMNS)

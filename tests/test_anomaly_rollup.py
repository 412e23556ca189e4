"""The 5-minute anomaly rollup (schema 025 ``llm_anomaly_5m``) and the counts read from it.

The rollup must hold exactly what its view selects over every stored call (backfilled calls,
calls inserted in several batches into the same buckets), and the detector's counts from it must
equal the counts from every call of ``llm_calls`` where they are counts (calls, failures,
truncations, empty outputs, trials) and stay within a bin of them where they are calls past a
threshold (the thresholds are bins, 2.2% wide, and a call in the threshold's bin counts half)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import anomalies, anomalies_levels, anomalies_sql, frame
from llmtrace.analytics.anomalies_sql import rollup_answers
from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import render, schema_files, split_statements
from tests.test_anomalies import LAST_3_DAYS
from tests.test_anomalies import store as _store  # the synthetic store with injected incidents
from tests.test_anomalies import store_url as _store_url

store, store_url = _store, _store_url
KEYS = "Bucket, ServiceName, Environment, Release, Provider, RequestModel"
COUNTS = ("calls", "errors", "ok", "truncated", "empty", "lat_n", "ttft_n", "tok_n", "cost_n")
PAST = ("lat_x", "ttft_x", "tok_x", "tok_lo", "cost_x", "lat_x2", "ttft_x2", "tok_x2", "cost_x2")
# what a bucket row holds, histograms without the bins a correction emptied (their sums wrap to 0)
_MERGED = f"""
    SELECT {KEYS}, sum(Calls), sum(Errors), sum(Truncated), sum(Empty),
           {
    ", ".join(
        f"arraySort(arrayFilter(x -> x.2 != 0, arrayZip(sumMap({h}).1, sumMap({h}).2)))"
        for h in ("Latency", "Ttft", "Tokens", "Cost")
    )
}
    FROM ({{source}}) GROUP BY {KEYS} ORDER BY {KEYS}"""


def _view_select(client: Any) -> str:
    return str(client.query("SELECT as_select FROM system.tables WHERE name = 'llm_anomaly_5m_mv'"
                            " AND database = currentDatabase()").result_rows[0][0])  # fmt: skip


def assert_rollup_is_its_view_over_every_call(client: Any) -> int:
    """The rollup's rows, merged, equal its view's SELECT over all of ``llm_calls``; returns the rows."""
    stored = client.query(_MERGED.format(source="SELECT * FROM llm_anomaly_5m")).result_rows
    direct = client.query(_MERGED.format(source=_view_select(client))).result_rows
    assert stored == direct
    return len(stored)


def _history(client: ChdbClient, seed: int, calls: int = 3000) -> None:
    end = int(datetime(2026, 12, 1, 18, tzinfo=timezone.utc).timestamp()) * 10**9
    sql, params = scenarios.history_sql(calls, 3, end, seed=seed)
    client.command(sql, parameters=params)


def _backfill_statement() -> str:
    (path,) = [p for p in schema_files() if p.name.startswith("025_")]
    (insert,) = [s for s in split_statements(render(path.read_text())) if s.startswith("INSERT INTO llm_anomaly_5m")]
    return insert


def test_the_rollup_holds_what_its_view_selects_over_batches_into_the_same_buckets(store: ChdbClient) -> None:
    _history(store, seed=1)
    _history(store, seed=2)  # a second batch over the same 3 days: every bucket gets a second row
    assert store.query("SELECT count() FROM llm_anomaly_5m").result_rows[0][0] > 0
    rows = assert_rollup_is_its_view_over_every_call(store)
    assert rows > 500
    # ... and the histograms are really there: every successful call in a latency and a tokens bin
    got = store.query(
        "SELECT sum(Calls - Errors), sum(arraySum(Latency.2)), sum(arraySum(Tokens.2)), sum(Errors) FROM llm_anomaly_5m"
    ).result_rows[0]
    assert got[0] == got[1] == got[2] and got[3] > 0


def test_the_migration_backfills_calls_stored_before_it(store: ChdbClient) -> None:
    _history(store, seed=3)
    store.command("TRUNCATE TABLE llm_anomaly_5m")
    store.command(_backfill_statement())
    assert assert_rollup_is_its_view_over_every_call(store) > 500
    before = store.query("SELECT count() FROM llm_anomaly_5m").result_rows
    store.command(_backfill_statement())  # run again (a re-applied migration): skipped, the table has rows
    assert store.query("SELECT count() FROM llm_anomaly_5m").result_rows == before


@pytest.fixture(scope="module")
def params() -> Iterator[dict[str, Any]]:
    yield anomalies.plan(LAST_3_DAYS).params()


def _both(store: Any, by: tuple[str, ...], dims: str, step: int, p: dict[str, Any]) -> pd.DataFrame:
    raw = frame(store, anomalies_sql.counts_sql(by, dims, step), p)
    rolled = frame(store, anomalies_sql.rollup_counts_sql(by, dims, step), p)
    keys = [c for c in raw.columns if c.startswith("g_") or c == "_all"] + ["b"]
    assert len(raw) > 100 and len(rolled) == len(raw)
    return raw.merge(rolled, on=keys, suffixes=("", "_rollup"), validate="one_to_one")


@pytest.mark.parametrize(
    ("by", "step"),
    [((), 300), (("service",), 300), (("service", "model", "environment"), 300), (("service", "model"), 900),
     (("service",), 7200)],
)  # fmt: skip
def test_counts_from_the_rollup_equal_the_raw_counts_and_calls_past_a_bar_within_its_bin(
    store: Any, params: dict[str, Any], by: tuple, step: int
) -> None:
    both = _both(store, by, "", step, params)
    for column in COUNTS:
        assert (both[column] == both[f"{column}_rollup"]).all(), column
    for column in PAST:
        raw, rolled = int(both[column].sum()), int(both[f"{column}_rollup"].sum())
        # measured on this store: +1.7% to +7.4% past single bars, up to +13% past twice a bar (~100
        # calls): the half of the bar's own bin counted is a little more than the raw share above the bar
        over = 0.20 if column.endswith("_x2") else 0.10
        assert 0.97 * raw - 3 <= rolled <= (1 + over) * raw + 3, (column, raw, rolled)
    for column in ("errors", "truncated", "lat_x", "ttft_x", "tok_x", "tok_lo", "cost_x", "lat_x2"):
        assert both[column].sum() > 0, column  # the store exercises every count compared


def test_counts_from_the_rollup_with_a_dimension_filter(store: Any) -> None:
    plan = anomalies.plan(replace(LAST_3_DAYS, services=("chat-ui", "support-bot")))
    dims, dim_params = anomalies._dims(plan)
    both = _both(store, ("service", "model"), dims, 300, {**dim_params, **plan.params()})
    assert dims and set(both["g_service"]) == {"chat-ui", "support-bot"}
    assert all((both[c] == both[f"{c}_rollup"]).all() for c in COUNTS)


def test_the_rollup_answers_its_own_keys_at_whole_five_minutes_only() -> None:
    assert rollup_answers(("service", "model", "environment", "provider", "release"), 300)
    assert rollup_answers((), 3600) and rollup_answers(("service",), 900)
    assert not rollup_answers(("service",), 60)  # 1-minute buckets: llm_calls
    assert not rollup_answers(("service", "prompt"), 300)  # not a key of the rollup
    assert not rollup_answers(("operation",), 300)


def test_detection_finds_the_same_injected_incidents_from_either_source(store: Any) -> None:
    """The reference scenario's incidents, judged once from the rollup and once from every call."""
    from_rollup = anomalies.detect(store, LAST_3_DAYS, include_calls=False)
    saved = anomalies_levels.rollup_answers
    anomalies_levels.rollup_answers = lambda by, step: False
    try:
        from_calls = anomalies.detect(store, LAST_3_DAYS, include_calls=False)
    finally:
        anomalies_levels.rollup_answers = saved

    def found(report: Any) -> set[tuple[str, str]]:
        return {(a.metric, a.series.get("service", "")) for a in report.episodes() if a.severity == "critical"}

    assert found(from_calls) and found(from_rollup) == found(from_calls)


def test_grouping_by_a_column_the_rollup_lacks_reads_every_call(store: Any) -> None:
    report = anomalies.detect(store, LAST_3_DAYS, by="prompt", include_calls=False)
    assert report.by == ("prompt",)

"""Latency's tokens/s percentiles from the hourly speed rollup (schema 022 ``llm_speed_1h``) plus the partial
hours from ``llm_calls``: calls counted exactly as direct SQL, p50/p95 within t-digest's error of the exact
quantiles (real chDB, demo history through the materialized views)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import latency
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, schema_files

END = datetime.now(timezone.utc).replace(second=0, microsecond=0)
DAY = Filter(END - timedelta(days=1, minutes=17), END - timedelta(hours=2, minutes=41))
WEEK = Filter(END - timedelta(days=7, minutes=17), END - timedelta(minutes=3))
TDIGEST_RANK = 0.02  # quantilesTDigest errs in rank, not value: 62.5 tokens/s came back 60.4 (-3.3%)
# in one CI run, yet within a percent of the median in rank; value tolerances flaked where the density is low
SIDEBAR = {"services": "ServiceName", "environments": "Environment", "releases": "Release",
           "providers": "Provider", "models": "RequestModel", "users": "UserId", "sessions": "SessionId"}  # fmt: skip


def _load(client: ChdbClient, rows: int = 12_000, days: int = 8) -> ChdbClient:
    sql, params = scenarios.history_sql(rows, days, int(END.timestamp()) * 10**9, seed=9)
    client.command(sql, parameters=params)
    return client


def assert_matches_direct_sql(client: Any, f: Filter, min_calls: int = 300, rank: float = TDIGEST_RANK) -> None:
    sql = f"""SELECT RequestModel AS model, count() AS calls
              FROM llm_calls WHERE {f.where()} AND OutputTokensPerSecond > 0
              GROUP BY model ORDER BY calls DESC, model"""
    want = client.query(sql, parameters=f.params()).result_rows
    got = latency.tokens_per_second(client, f)
    assert list(zip(got["model"], got["calls"], strict=True)) == [tuple(row) for row in want] and want
    checked = 0
    for (model, calls), p50, p95 in zip(want, got["p50"], got["p95"], strict=True):
        if calls >= min_calls:
            for level, value in ((0.5, p50), (0.95, p95)):
                below, upto = ranks(client, f, model, value)
                assert below - rank <= level <= upto + rank, (model, level, value, below, upto)
            checked += 1
    assert checked or min_calls > max(n for _, n in want)


def ranks(client: Any, f: Filter, model: str, value: float) -> tuple[float, float]:
    """Shares of the model's exact speeds below and up to ``value``: its rank, as t-digest's error is stated.
    The digest keeps Float32 centroids (1000/7 comes back as 142.85714721679688), hence the 1e-6 either side."""
    sql = f"""SELECT avg(OutputTokensPerSecond < {{v:Float64}} * (1 - 1e-6)),
                     avg(OutputTokensPerSecond <= {{v:Float64}} * (1 + 1e-6))
              FROM llm_calls WHERE {f.where()} AND OutputTokensPerSecond > 0 AND RequestModel = {{m:String}}"""
    below, upto = client.query(sql, parameters={**f.params(), "v": float(value), "m": model}).result_rows[0]
    return float(below), float(upto)


@pytest.mark.parametrize("f", [DAY, WEEK], ids=["day", "week"])
def test_tokens_per_second_counts_calls_exactly_and_percentiles_within_tdigest_error(store: ChdbClient,
                                                                                    f: Filter) -> None:  # fmt: skip
    assert_matches_direct_sql(_load(store), f)


def test_every_sidebar_filter_gives_the_direct_sql_figures(store: ChdbClient) -> None:
    _load(store)
    for field, column in SIDEBAR.items():
        sql = f"SELECT {column} FROM llm_calls WHERE {WEEK.where()} GROUP BY 1 ORDER BY count() DESC, 1 LIMIT 1"
        value = store.query(sql, parameters=WEEK.params()).result_rows[0][0]
        f = Filter(WEEK.start, WEEK.end, **{field: (value,)})
        assert_matches_direct_sql(store, f, min_calls=1000, rank=0.03)  # smaller states: t-digest errs more


def test_whole_hours_come_from_the_rollup(store: ChdbClient) -> None:
    _load(store)
    rolled = store.query("SELECT sum(Calls), count() FROM llm_speed_1h").result_rows[0]
    assert rolled[0] == store.query("SELECT countIf(OutputTokensPerSecond > 0) FROM llm_calls").result_rows[0][0]
    store.command("TRUNCATE TABLE llm_speed_1h")
    edges = latency.tokens_per_second(store, WEEK)["calls"].sum()
    assert 0 < edges < rolled[0] / 20  # with the rollup gone only the partial hours' calls remain


def test_the_migration_backfills_the_speed_rollup(empty_store: ChdbClient) -> None:
    files = schema_files()
    run = client_runner(empty_store)
    apply_migrations(run, files=[p for p in files if p.name < "022"])
    _load(empty_store, rows=6000, days=3)
    apply_migrations(run, files=files)
    assert_matches_direct_sql(empty_store, Filter(END - timedelta(days=2, minutes=5), END - timedelta(minutes=9)))

"""The 5-minute anomaly rollup (schema 025 ``llm_anomaly_5m``) and the counts read from it.

The rollup must hold exactly what its view selects over every stored call (backfilled calls,
calls inserted in several batches into the same buckets), and the detector's counts from it must
equal the counts from every call of ``llm_calls`` where they are counts (calls, failures,
truncations, empty outputs, trials) and stay within a bin of them where they are calls past a
threshold (the thresholds are bins, 2.2% wide, and a call in the threshold's bin counts half)."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import anomalies, anomalies_levels, anomalies_sql, frame
from llmtrace.analytics.anomalies_sql import rollup_answers
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, render, schema_files, split_statements
from tests.test_anomalies import LAST_3_DAYS
from tests.test_anomalies import store as _store  # the synthetic store with injected incidents
from tests.test_anomalies import store_url as _store_url

store, store_url = _store, _store_url
KEYS = "Bucket, ServiceName, Environment, Release, Provider, RequestModel"
COUNTS = ("calls", "errors", "ok", "truncated", "empty", "lat_n", "ttft_n", "tok_n", "cost_n", "pt_n", "tpt_n")
PAST = (
    "lat_x", "ttft_x", "tok_x", "tok_lo", "cost_x", "lat_x2", "ttft_x2", "tok_x2", "cost_x2", "pt_x", "pt_x3", "tpt_x3",
)  # fmt: skip
# what a bucket row holds, histograms without the bins a correction emptied (their sums wrap to 0)
_MERGED = f"""
    SELECT {KEYS}, sum(Calls), sum(Errors), sum(Truncated), sum(Empty),
           {
    ", ".join(
        f"arraySort(arrayFilter(x -> x.2 != 0, arrayZip(sumMap({h}).1, sumMap({h}).2)))"
        for h in ("Latency", "Ttft", "Tokens", "Cost", "PerToken", "TtftPerToken")
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


def _backfill_statement(schema: str = "025_") -> str:
    (path,) = [p for p in schema_files() if p.name.startswith(schema)]
    (insert,) = [s for s in split_statements(render(path.read_text())) if s.startswith("INSERT INTO llm_anomaly_5m")]
    return insert


@pytest.fixture
def fresh(store: Any, store_url: str) -> Iterator[ChdbClient]:
    """A new database with the whole schema, in the synthetic store's chDB directory (one a process)."""
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    store.command(f"CREATE DATABASE {name}")
    client = ChdbClient.open(store_url.removeprefix("chdb://"), database=name)
    apply_migrations(client_runner(client))
    yield client
    client.close()
    store.command(f"DROP DATABASE {name} SYNC")


def test_the_rollup_holds_what_its_view_selects_over_batches_into_the_same_buckets(fresh: ChdbClient) -> None:
    _history(fresh, seed=1)
    _history(fresh, seed=2)  # a second batch over the same 3 days: every bucket gets a second row
    assert fresh.query("SELECT count() FROM llm_anomaly_5m").result_rows[0][0] > 0
    rows = assert_rollup_is_its_view_over_every_call(fresh)
    assert rows > 500
    # ... and the histograms are really there: every successful call in a latency and a tokens bin
    got = fresh.query(
        "SELECT sum(Calls - Errors), sum(arraySum(Latency.2)), sum(arraySum(Tokens.2)), sum(Errors) FROM llm_anomaly_5m"
    ).result_rows[0]
    assert got[0] == got[1] == got[2] and got[3] > 0


def test_the_migration_backfills_calls_stored_before_it(fresh: ChdbClient) -> None:
    _history(fresh, seed=3)
    fresh.command("TRUNCATE TABLE llm_anomaly_5m")
    fresh.command(_backfill_statement())
    fresh.command(_backfill_statement("032_"))  # the per-token histogram, added later (see the test below)
    assert assert_rollup_is_its_view_over_every_call(fresh) > 500
    before = fresh.query("SELECT count() FROM llm_anomaly_5m").result_rows
    fresh.command(_backfill_statement())  # run again (a re-applied migration): skipped, the table has rows
    fresh.command(_backfill_statement("032_"))
    assert fresh.query("SELECT count() FROM llm_anomaly_5m").result_rows == before


def test_the_per_token_backfill_counts_earlier_calls_once_and_not_again(fresh: ChdbClient) -> None:
    """Schema 032 adds the per-token histogram to a store holding calls: they are counted by its backfill
    (rows carrying that histogram alone), and a second run (a re-applied migration) adds nothing."""
    _history(fresh, seed=4)
    wanted = fresh.query(
        "SELECT countIf(IsError = 0 AND OutputTokens >= 20 AND DurationUs > 0) FROM llm_calls"
    ).result_rows[0][0]
    assert wanted > 500
    fresh.command("TRUNCATE TABLE llm_anomaly_5m")
    fresh.command(_backfill_statement())  # the store as it was before 032: no per-token histogram
    assert fresh.query("SELECT sum(arraySum(PerToken.2)) FROM llm_anomaly_5m").result_rows[0][0] == 0
    fresh.command(_backfill_statement("032_"))
    assert assert_rollup_is_its_view_over_every_call(fresh) > 500
    assert fresh.query("SELECT sum(arraySum(PerToken.2)) FROM llm_anomaly_5m").result_rows[0][0] == wanted
    fresh.command(_backfill_statement("032_"))
    assert fresh.query("SELECT sum(arraySum(PerToken.2)) FROM llm_anomaly_5m").result_rows[0][0] == wanted


_SPAN_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "ResourceAttributes",
    "ScopeName", "SpanAttributes", "Duration", "StatusCode", "StatusMessage",
]  # fmt: skip


def test_calls_without_tokens_or_with_a_first_token_after_their_end_are_stored(
    fresh: ChdbClient,
) -> None:
    """The per-token bin is computed for every call: no output tokens, zero duration, a TTFT past the
    duration (clock skew) or a huge duration must not fail the insert; calls of 20 tokens or more are binned."""
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    rows = [  # (duration µs, ttft µs or None, output tokens, reasoning tokens)
        (0, None, 0, 0), (1_000_000, None, 0, 0), (500_000, 900_000, 50, 0), (2**40, None, 25, 0),
        (1_000_000, None, 19, 0), (2_000_000, 1_000_000, 100, 0), (3_000_000, 2_000_000, 200, 100),
        (3_000_000, None, 200, 100), (3_000_000, 0, 200, 100), (3_000_000, 2_000_000, 200, 19),
    ]  # fmt: skip
    for i, (duration, ttft, tokens, reasoning) in enumerate(rows):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.output_tokens": str(tokens),
                 "gen_ai.usage.input_tokens": "10", "gen_ai.usage.reasoning.output_tokens": str(reasoning)}  # fmt: skip
        if ttft is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = str(ttft / 1e6)
        row = [now + timedelta(seconds=i), f"{i:032x}", f"{i:016x}", "", "chat gpt-4o-mini", "Client", "svc", {},
               "llmtrace", attrs, duration * 1000, "Ok", ""]  # fmt: skip
        fresh.insert("otel_traces", [row], column_names=_SPAN_COLUMNS)
    assert fresh.query("SELECT count() FROM llm_calls").result_rows[0][0] == len(rows)
    assert fresh.query("SELECT sum(Calls) FROM llm_anomaly_5m").result_rows[0][0] == len(rows)
    bins = fresh.query("SELECT sumMap(PerToken).1, sumMap(PerToken).2 FROM llm_anomaly_5m").result_rows[0]
    # 0.5 s over 50 tokens, 2^40 µs over 25, 2 s over 100, 3 s over 200 (four calls): 10,000 µs, 2^40 / 25,
    # 20,000 and 15,000 µs a token
    want = dict(Counter(math.floor(32 * math.log2(us)) for us in (10_000, 2**40 / 25, 20_000) + (15_000,) * 4))
    assert dict(zip(bins[0], bins[1], strict=True)) == want
    # the first token per reasoning token: only the call with a first token (2 s) and 100 reasoning tokens
    firsts = fresh.query("SELECT sumMap(TtftPerToken).1, sumMap(TtftPerToken).2 FROM llm_anomaly_5m").result_rows[0]
    assert list(firsts[0]) == [math.floor(32 * math.log2(20_000))] and list(firsts[1]) == [1]


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
        over = 0.20 if column.endswith(("_x2", "_x3")) else 0.10
        assert 0.97 * raw - 3 <= rolled <= (1 + over) * raw + 3, (column, raw, rolled)
    exercised = ("errors", "truncated", "lat_x", "ttft_x", "tok_x", "tok_lo", "cost_x", "lat_x2", "pt_n", "pt_x")
    for column in (*exercised, "pt_x3"):
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


def test_the_outliers_history_from_the_rollup_has_the_exact_quartiles_within_a_fraction_of_a_bin(
    store: Any, params: dict[str, Any]
) -> None:
    """Interpolated within their bins (0.022 wide in log), the history's log quartiles of latency and cost
    are within half a bin of the exact ones (measured: at most 0.007, mostly < 0.001), per series and model."""
    from llmtrace.analytics.anomalies_calls import _rollup_history

    keys = "g_service, RequestModel"
    rolled = frame(store, _rollup_history(("service",), "", keys), params).set_index("k")
    exact = frame(
        store,
        f"""SELECT cityHash64({keys}) AS k,
                   quantilesExactIf(0.25, 0.5, 0.75)(log(DurationUs / 1000), DurationUs > 0) AS q_slow_call,
                   quantilesExactIf(0.25, 0.5, 0.75)(log(CostUsd), CostUsd > 0) AS q_expensive_call,
                   countIf(CostUsd > 0) AS n_expensive_call
            FROM (SELECT *, toString(ServiceName) AS g_service FROM llm_calls
                  WHERE Timestamp >= {{hist_start:DateTime64(6, 'UTC')}}
                    AND Timestamp < {{judge_start:DateTime64(6, 'UTC')}} AND IsError = 0)
            GROUP BY {keys}""",
        params,
    ).set_index("k")
    assert len(exact) >= 5 and set(rolled.index) == set(exact.index)
    for kind in ("slow_call", "expensive_call"):
        for k in exact.index:
            got, want = rolled.at[k, f"q_{kind}"], exact.at[k, f"q_{kind}"]
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 0.011
    assert (rolled.loc[exact.index, "n_expensive_call"].to_numpy() == exact["n_expensive_call"].to_numpy()).all()


@pytest.mark.parametrize(("by", "services"), [((), ()), (("service",), ()), (("service", "model"), ()),
                                              (("model",), ("chat-ui",))])  # fmt: skip
def test_the_outliers_prefilter_keeps_every_outlier_and_drops_most_calls(
    store: Any, by: tuple[str, ...], services: tuple[str, ...]
) -> None:
    """The calls under their columns' lowest bars are dropped before they are hashed (most of the
    window's), and the outliers are those the join on the history finds: the same rows, scores and traces."""
    from llmtrace.analytics.anomalies_calls import (
        _outlier_history,
        _rollup_history,
        outlier_bars_params,
        outlier_bars_sql,
        outliers_sql,
    )

    plan = anomalies.plan(replace(LAST_3_DAYS, services=services))
    dims, dim_params = anomalies._dims(plan)
    p = {**dim_params, **plan.params()}
    order = ["kind", "score", "trace_id"]  # the query orders by kind and score; ties in any order

    def outliers(prefilter: bool, bound: bool = False) -> pd.DataFrame:
        bars = outlier_bars_params(by, store.query(outlier_bars_sql(by, dims), parameters=p).result_rows[0])
        found = frame(store, outliers_sql(by, dims, 1000, rollup=True, prefilter=prefilter, bound=bound),
                      {**p, **(bars or {})})  # fmt: skip
        assert found.groupby("kind").size().max() < 1000  # every outlier, none cut by the limit
        return found.sort_values(order, ascending=[True, False, True]).reset_index(drop=True)

    every = outliers(prefilter=False)
    assert len(every) > 0
    pd.testing.assert_frame_equal(outliers(prefilter=True), every)
    pd.testing.assert_frame_equal(outliers(prefilter=True, bound=True), every)  # the history as parameters
    keys = ", ".join([*(f"g_{b}" for b in by), "RequestModel"])
    with_clause, below, _ = _outlier_history(by, _rollup_history(by, dims, keys))
    window = "Timestamp >= {judge_start:DateTime64(6, 'UTC')} AND Timestamp < {judge_end:DateTime64(6, 'UTC')}"
    calls, passing = store.query(
        f"{with_clause} SELECT count(), countIf({below}) FROM llm_calls WHERE {window}{dims} AND IsError = 0",
        parameters=p,
    ).result_rows[0]
    assert len(every) <= passing < calls / 10


def test_the_injected_slow_call_is_found_against_the_rollups_history(store: Any) -> None:
    report = anomalies.detect(store, LAST_3_DAYS)
    slow = [a for a in report.anomalies if a.kind == "slow_call"]
    assert [a.trace_ids for a in slow if a.series.get("service") == "chat-ui"] == [["0" * 31 + "1"]]


_STORMS = """
    SELECT Bucket, ServiceName, Environment, Release, Provider, RequestModel, StormKey, sum(Errors), sum(Ok),
           min(First), max(Last), max(LastError), max(LastOk), argMaxMerge(LastTrace)
    FROM ({source})
    GROUP BY ALL ORDER BY ALL"""


def _storm_view(client: Any) -> str:
    return str(client.query("SELECT as_select FROM system.tables WHERE name = 'llm_storm_5m_mv'"
                            " AND database = currentDatabase()").result_rows[0][0])  # fmt: skip


def assert_storm_rollup_is_its_view_over_every_call(client: Any) -> int:
    """``llm_storm_5m`` (027), merged, equals its view's SELECT over all of ``llm_calls``; returns the rows."""
    view = _storm_view(client)
    stored = client.query(_STORMS.format(source="SELECT * FROM llm_storm_5m")).result_rows
    direct = client.query(_STORMS.format(source=view)).result_rows
    assert stored == direct
    return len(stored)


def test_the_storm_rollup_holds_what_its_view_selects_and_is_backfilled_once(fresh: ChdbClient) -> None:
    _history(fresh, seed=4)
    _history(fresh, seed=5)  # a second batch over the same days: keys and buckets get a second row
    assert assert_storm_rollup_is_its_view_over_every_call(fresh) > 500
    got = fresh.query("SELECT sum(Errors), sum(Ok), count() FROM llm_storm_5m").result_rows[0]
    calls = fresh.query("SELECT countIf(IsError = 1), countIf(IsError = 0), count() FROM llm_calls").result_rows[0]
    assert got[:2] == calls[:2] and got[0] > 0 and got[2] < calls[2]
    (path,) = [p for p in schema_files() if p.name.startswith("027_")]
    (insert,) = [s for s in split_statements(render(path.read_text())) if s.startswith("INSERT INTO llm_storm_5m")]
    fresh.command("TRUNCATE TABLE llm_storm_5m")
    fresh.command(insert)
    assert assert_storm_rollup_is_its_view_over_every_call(fresh) > 500
    before = fresh.query("SELECT count() FROM llm_storm_5m").result_rows
    fresh.command(insert)  # run again (a re-applied migration): skipped, the table has rows
    assert fresh.query("SELECT count() FROM llm_storm_5m").result_rows == before


def test_the_outliers_of_a_window_without_history_are_none_with_or_without_the_prefilter(store: Any) -> None:
    """The store's first day judged: no series has a history to be slow against, so neither query
    finds an outlier (the prefilter's scalar history is empty, not an error)."""
    from llmtrace.analytics.anomalies_calls import outliers_sql

    first = store.query("SELECT min(Timestamp) FROM llm_calls").result_rows[0][0].replace(tzinfo=timezone.utc)
    start = first.replace(minute=0, second=0, microsecond=0)
    plan = anomalies.plan(replace(LAST_3_DAYS, start=start, end=start + (LAST_3_DAYS.end - LAST_3_DAYS.start) / 3))
    dims, dim_params = anomalies._dims(plan)
    p = {**dim_params, **plan.params()}
    judged = "Timestamp >= {judge_start:DateTime64(6, 'UTC')} AND Timestamp < {judge_end:DateTime64(6, 'UTC')}"
    assert store.query(f"SELECT count() FROM llm_calls WHERE {judged}", parameters=p).result_rows[0][0] > 0
    for prefilter in (True, False):
        assert frame(store, outliers_sql(("service",), dims, 1000, rollup=True, prefilter=prefilter), p).empty


# A series of 3,000 calls an hour (~200 ms, a 3% spread) for 2 days of history and 1 judged day, a day
# a partition of ~9 granules: the outliers' query may read only the hours the rollup points at.
_BUSY_END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
_BUSY = """
    INSERT INTO llm_calls (Timestamp, TraceId, SpanId, ServiceName, Provider, RequestModel, DurationUs, CostUsd,
                           IsError)
    SELECT toDateTime64({start:UInt32}, 9, 'UTC') + toIntervalMicrosecond(number * 1200000) AS ts,
           lower(hex(cityHash64('t', number))), lower(hex(cityHash64('s', number))), 'busy', 'openai', 'gpt-4o',
           toUInt64(200000 * exp(0.03 * (cityHash64(number) % 1000 / 500 - 1))), 0.001, 0
    FROM numbers({n:UInt64})"""


def _one_call(client: ChdbClient, at: datetime, duration_us: int, trace_id: str) -> None:
    client.command(
        "INSERT INTO llm_calls (Timestamp, TraceId, SpanId, ServiceName, Provider, RequestModel, DurationUs,"
        " CostUsd, IsError) SELECT {at:DateTime64(6, 'UTC')}, {trace:String}, {trace:String}, 'busy', 'openai',"
        " 'gpt-4o', {us:UInt64}, 0.001, 0",
        parameters={"at": at.replace(tzinfo=None), "trace": trace_id, "us": duration_us},
    )


def test_the_outliers_query_reads_only_the_hours_whose_rollup_bins_reach_a_bar_and_loses_no_call_at_the_bar(
    fresh: ChdbClient,
) -> None:
    """The slow call just past its series' bar (the lowest duration that passes both tests) is the only
    outlier of its 5 minutes and its hour, and it is found; one just under the bar (in the bar's bin or the
    one under it, so its hour is read too) is not. The outliers'
    query reads the granules of that one hour, not the judged day's 24, and finds the same rows as the
    join over every call of the window (``prefilter=False``)."""
    from llmtrace.analytics import anomalies_calls as calls_sql

    days = 3
    start = _BUSY_END - timedelta(days=days)
    fresh.command(_BUSY, parameters={"start": int(start.timestamp()), "n": days * 24 * 3000})
    window = Filter(start=_BUSY_END - timedelta(days=1), end=_BUSY_END)
    plan = anomalies.plan(window, now=_BUSY_END)
    by = ("service", "model")
    p = plan.params()
    row = fresh.query(calls_sql.outlier_bars_sql(by, ""), parameters=p).result_rows[0]
    bars = calls_sql.outlier_bars_params(by, row)
    assert bars is not None
    _, _, _, series, _ = calls_sql._history_parts(by)
    (bar_ms,) = bars[f"ob{series + 1}"]  # the series' own slow-call bar (just under the exact edge)
    edge_us = bar_ms * 1000 / (1 - calls_sql.BAR_MARGIN)
    # the slow call: the first whole microsecond past the edge, at 13:21; one just under the bar at 13:41
    _one_call(fresh, plan.judge_start + timedelta(hours=13, minutes=21), math.ceil(edge_us) + 1, "a" * 32)
    _one_call(fresh, plan.judge_start + timedelta(hours=13, minutes=41), math.floor(bar_ms * 1000), "b" * 32)
    sql = calls_sql.outliers_sql(by, "", 1000, rollup=True, bound=True)
    found = frame(fresh, sql, {**p, **bars})
    assert found[["kind", "trace_id"]].values.tolist() == [["slow_call", "a" * 32]]
    every = frame(fresh, calls_sql.outliers_sql(by, "", 1000, rollup=True, prefilter=False), p)
    pd.testing.assert_frame_equal(found, every)
    read = sum(int(r[3]) for r in fresh.query(f"EXPLAIN ESTIMATE {sql}", parameters={**p, **bars}).result_rows
               if r[1] == "llm_calls")  # fmt: skip
    judged = fresh.query(
        "SELECT count() FROM llm_calls WHERE Timestamp >= {judge_start:DateTime64(6, 'UTC')}"
        " AND Timestamp < {judge_end:DateTime64(6, 'UTC')}",
        parameters=p,
    ).result_rows[0][0]
    # the granules of one hour (two where a granule ends in it) and the two calls' own parts
    assert 0 < read <= 2 * 8192 + 2 < judged / 4


def test_no_outliers_query_runs_without_a_history_to_judge_by(fresh: ChdbClient) -> None:
    """Judged from the store's first call: no series has 30 calls before the window, so the bars' row is
    empty and there is no outliers' query to run (its analysis alone cost ~0.2 s at 10M calls)."""
    from llmtrace.analytics import anomalies_calls as calls_sql

    start = _BUSY_END - timedelta(days=1)
    fresh.command(_BUSY, parameters={"start": int(start.timestamp()), "n": 24 * 3000})
    plan = anomalies.plan(Filter(start=start, end=_BUSY_END), now=_BUSY_END)
    row = fresh.query(calls_sql.outlier_bars_sql(("service",), ""), parameters=plan.params()).result_rows[0]
    assert calls_sql.outlier_bars_params(("service",), row) is None


def test_embeddings_and_reranks_are_never_empty_outputs(fresh: ChdbClient) -> None:
    # v12 (blind): a provider serving chat and embeddings had its empty-output share follow the
    # mix (0.35 by day, 0.77 at night), 22 false episodes in 20 weeks
    at = "2026-12-01 12:01:00"
    rows = [("chat", 0), ("chat", 0), ("chat", 120), ("embeddings", 0), ("embeddings", 0), ("rerank", 0)]
    selects = " UNION ALL ".join(
        f"SELECT toDateTime64('{at}', 9, 'UTC'), 'svc', 'openai', 'm', '{op}', 0, {tokens}" for op, tokens in rows
    )
    fresh.command(
        "INSERT INTO llm_calls (Timestamp, ServiceName, Provider, RequestModel, Operation, IsError, OutputTokens) "
        + selects
    )
    assert fresh.query("SELECT sum(Calls), sum(Empty) FROM llm_anomaly_5m").result_rows == [(6, 2)]
    assert_rollup_is_its_view_over_every_call(fresh)
    end = datetime(2026, 12, 1, 13, tzinfo=timezone.utc)
    p = anomalies.plan(Filter(start=end - timedelta(hours=2), end=end)).params()
    raw = frame(fresh, anomalies_sql.counts_sql((), "", 300), p)
    assert int(raw["empty"].sum()) == 2 and int(raw["ok"].sum()) == 6

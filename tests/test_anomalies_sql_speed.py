"""The faster anomaly SQL returns what the SQL it replaced returned (the detector's input is the contract).

``before_outliers`` is the call-level outlier query as it was before both kinds were read in one
pass (commit 1c42905), ``before_counts`` the counts query as it was before its calls met their
thresholds on one hash key, ``before_storms`` the retry storms before sessions were hashed,
``before_volume`` the volume history as it was before it read the
minute rollup (both main 0ac5e8c): kept here only as the references the new queries are held to, on the
synthetic store with injected slow calls, cost jumps, error bursts and truncations, ungrouped
and grouped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import anomalies, anomalies_sql, frame
from llmtrace.analytics import anomalies_calls as calls_sql
from llmtrace.analytics.anomalies_calls import CALL_RATIO, CALL_Z, _groups
from llmtrace.analytics.anomalies_sql import (
    HIGH,
    LOW,
    THRESHOLD_HOURS,
    TRUNCATED,
    _select_groups,
    _trailing,
    series_columns,
)
from llmtrace.analytics.filters import sql_time
from tests.test_anomalies import LAST_3_DAYS
from tests.test_anomalies import store as _store  # the synthetic store with a slow call
from tests.test_anomalies import store_url as _store_url

store, store_url = _store, _store_url

_BEFORE_VALUES = {"slow_call": "toFloat64(DurationUs) / 1000", "expensive_call": "CostUsd"}
_BEFORE_METRICS = {"slow_call": "latency_ms", "expensive_call": "cost_usd"}


def before_outliers(by: Sequence[str], dims: str, limit: int) -> str:
    """The replaced query: one UNION ALL arm per kind, each reading the window and the history."""
    keys = ", ".join([*(f"g_{b}" for b in by), "RequestModel"])
    arms = []
    for kind, value in _BEFORE_VALUES.items():
        arms.append(f"""
            SELECT '{kind}' AS kind, '{_BEFORE_METRICS[kind]}' AS metric, {series_columns(by)}, Timestamp AS start,
                   TraceId AS trace_id, v AS observed, exp(q[2]) AS expected,
                   (log(v) - q[2]) / greatest((q[3] - q[1]) / 1.349, 0.05) AS score
            FROM (SELECT *, {_groups(by)}, {value} AS v FROM llm_calls
                  WHERE {calls_sql._WINDOW}{dims} AND IsError = 0 AND v > 0) AS c
            INNER JOIN (
                SELECT {keys}, quantilesDeterministic(0.25, 0.5, 0.75)(log(v), sipHash64(SpanId)) AS q, count() AS n
                FROM (SELECT RequestModel, SpanId, {_groups(by)}, {value} AS v FROM llm_calls
                      WHERE {calls_sql._HISTORY}{dims} AND IsError = 0)
                WHERE v > 0 GROUP BY {keys} HAVING n >= 30
            ) AS h USING ({keys})
            WHERE score >= {CALL_Z} AND v >= {CALL_RATIO} * exp(q[2])
            ORDER BY score DESC LIMIT {limit}""")
    return " UNION ALL ".join(f"SELECT * FROM ({arm})" for arm in arms)


def before_counts(by: Sequence[str], dims: str, step: int) -> str:
    """The replaced counts query (main 0ac5e8c): calls joined to their hour's thresholds on the
    series' strings and the hour."""
    g = series_columns(by)
    on = " AND ".join(f"c.{col} = t.{col}" for col in [*g.split(", "), "h"])
    ok = "IsError = 0"
    return f"""
        WITH
        calls AS (
            SELECT {_select_groups(by)}, toStartOfHour(Timestamp) AS h,
                   toStartOfInterval(Timestamp, toIntervalSecond({step})) AS b,
                   IsError, DurationUs, ifNull(TtftUs, 0) AS ttft, TtftUs IS NOT NULL AS has_ttft,
                   OutputTokens, ifNull(CostUsd, 0) AS cost, CostUsd IS NOT NULL AS priced, {TRUNCATED} AS cut
            FROM llm_calls
            WHERE Timestamp >= {{hist_start:DateTime64(6, 'UTC')}}
              AND Timestamp < {{judge_end:DateTime64(6, 'UTC')}}{dims}
        ),
        hourly AS (
            SELECT {g}, h, countIf({ok}) AS okn,
                   quantileExactIf({HIGH})(DurationUs, {ok}) AS lat90,
                   quantileExactIf({HIGH})(ttft, {ok} AND has_ttft) AS ttft90,
                   quantileExactIf({HIGH})(OutputTokens, {ok}) AS tok90,
                   quantileExactIf({LOW})(OutputTokens, {ok}) AS tok10,
                   quantileExactIf({HIGH})(cost, {ok} AND priced) AS cost90
            FROM calls GROUP BY {g}, h
        ),
        thresholds AS (
            SELECT {g}, h, {_trailing("lat90")} AS lat_t, {_trailing("ttft90")} AS ttft_t,
                   {_trailing("tok90")} AS tok_t, {_trailing("tok10")} AS tok_l, {_trailing("cost90")} AS cost_t
            FROM hourly
            WINDOW past AS (PARTITION BY {g} ORDER BY h ROWS BETWEEN {THRESHOLD_HOURS} PRECEDING AND 1 PRECEDING)
        )
        SELECT {", ".join(f"c.{col} AS {col}" for col in g.split(", "))}, toDateTime(c.b, 'UTC') AS b,
               count() AS calls, sum(c.IsError) AS errors, countIf(c.{ok}) AS ok,
               countIf(c.{ok} AND c.cut) AS truncated, countIf(c.{ok} AND c.OutputTokens = 0) AS empty,
               countIf(c.{ok} AND t.lat_t > 0) AS lat_n,
               countIf(c.{ok} AND t.lat_t > 0 AND c.DurationUs > t.lat_t) AS lat_x,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0) AS ttft_n,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0 AND c.ttft > t.ttft_t) AS ttft_x,
               countIf(c.{ok} AND t.tok_t > 0) AS tok_n,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens > t.tok_t) AS tok_x,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens < t.tok_l) AS tok_lo,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0) AS cost_n,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0 AND c.cost > t.cost_t) AS cost_x,
               countIf(c.{ok} AND t.lat_t > 0 AND c.DurationUs > 2 * t.lat_t) AS lat_x2,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0 AND c.ttft > 2 * t.ttft_t) AS ttft_x2,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens > 2 * t.tok_t) AS tok_x2,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0 AND c.cost > 2 * t.cost_t) AS cost_x2
        FROM calls AS c LEFT JOIN thresholds AS t ON {on}
        GROUP BY {g}, b
        ORDER BY {g}, b"""


def before_volume(by: Sequence[str], dims: str, step: int) -> str:
    """The replaced volume history query: calls counted in ``llm_calls``."""
    return f"""
        SELECT {_select_groups(by)}, toDateTime(toStartOfInterval(Timestamp, toIntervalSecond({step})), 'UTC') AS b,
               count() AS calls
        FROM llm_calls
        WHERE Timestamp >= {{vol_start:DateTime64(6, 'UTC')}}
          AND Timestamp < {{hist_start:DateTime64(6, 'UTC')}}{dims}
        GROUP BY {series_columns(by)}, b"""


def before_storms(by: Sequence[str], dims: str) -> str:
    """The replaced retry-storm query: sessions and traces as 's:<id>' / 't:<id>' strings."""
    return calls_sql.storms_sql(by, dims).replace(
        "if(SessionId != '', cityHash64('s', SessionId), cityHash64('t', TraceId))",
        "if(SessionId != '', concat('s:', SessionId), concat('t:', TraceId))",
    )


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(observed=df["observed"].astype(float), trace_id=df["trace_id"].astype(str))
    return df.sort_values(["kind", "score", "trace_id"], ascending=[True, False, True]).reset_index(drop=True)


@pytest.fixture(scope="module")
def params() -> Iterator[dict[str, Any]]:
    yield anomalies.plan(LAST_3_DAYS).params()


@pytest.mark.parametrize("by", [(), ("service",), ("service", "model")])
@pytest.mark.parametrize("limit", [2, 50])
def test_outliers_in_one_pass_equal_the_query_per_kind(
    store: Any, params: dict[str, Any], by: tuple, limit: int
) -> None:
    before = _rows(frame(store, before_outliers(by, "", limit), params))
    after = _rows(frame(store, calls_sql.outliers_sql(by, "", limit), params))
    assert len(before) > 0  # the injected slow call at least
    assert set(before["kind"]) >= {"slow_call"}
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False, rtol=1e-12)


def test_outliers_with_a_dimension_filter_equal_the_query_per_kind(store: Any) -> None:
    plan = anomalies.plan(replace(LAST_3_DAYS, services=("chat-ui",)))
    dims, dim_params = anomalies._dims(plan)
    p = {**dim_params, **plan.params()}
    before = _rows(frame(store, before_outliers(("model",), dims, 50), p))
    after = _rows(frame(store, calls_sql.outliers_sql(("model",), dims, 50), p))
    assert dims and len(before) > 0
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False, rtol=1e-12)


def test_both_kinds_are_compared(store: Any, params: dict[str, Any]) -> None:
    """The store holds expensive calls as well as slow ones, so the equality above covers both arms."""
    after = frame(store, calls_sql.outliers_sql(("service", "model"), "", 50), params)
    assert set(after["kind"]) == {"slow_call", "expensive_call"}


@pytest.mark.parametrize(
    ("by", "step"),
    [((), 300), (("service",), 300), (("service", "model", "environment"), 300), (("service", "model"), 900),
     (("service",), 7200)],
)  # fmt: skip
def test_counts_from_one_read_equal_judging_every_call_in_a_second_read(
    store: Any, params: dict[str, Any], by: tuple, step: int
) -> None:
    """Every count of every series and bucket, trials and exceedances included (7200 s buckets
    span two hours, each call judged against its own hour's bar)."""
    before = frame(store, before_counts(by, "", step), params)
    after = frame(store, anomalies_sql.counts_sql(by, "", step), params)
    assert len(before) > 100
    for column in ("errors", "truncated", "lat_x", "ttft_x", "tok_x", "tok_lo", "cost_x", "lat_x2"):
        assert before[column].sum() > 0, column  # the store exercises every count compared
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


def test_counts_with_a_dimension_filter_equal_the_second_read(store: Any) -> None:
    plan = anomalies.plan(replace(LAST_3_DAYS, services=("chat-ui", "support-bot")))
    dims, dim_params = anomalies._dims(plan)
    p = {**dim_params, **plan.params()}
    before = frame(store, before_counts(("service", "model"), dims, 300), p)
    after = frame(store, anomalies_sql.counts_sql(("service", "model"), dims, 300), p)
    assert dims and set(before["g_service"]) == {"chat-ui", "support-bot"}
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.mark.parametrize(("by", "step"), [((), 300), (("service", "model", "environment"), 300), (("service",), 3600)])
def test_volume_history_from_the_minute_rollup_equals_counting_the_calls(store: Any, by: tuple, step: int) -> None:
    plan = anomalies.plan(LAST_3_DAYS, step=step)
    p = plan.params(vol_start=sql_time(plan.history.start - timedelta(days=3)))
    p["hist_start"] = sql_time(plan.judge_start)  # the synthetic store holds four days: read them
    before = _sorted(frame(store, before_volume(by, "", step), p))
    after = _sorted(frame(store, anomalies_sql.volume_sql(by, "", step), p))
    assert before["calls"].sum() > 10_000
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


def test_volume_history_with_a_dimension_filter_equals_counting_the_calls(store: Any) -> None:
    plan = anomalies.plan(replace(LAST_3_DAYS, models=("gpt-4o-mini",)))
    dims, dim_params = anomalies._dims(plan)
    p = {**dim_params, **plan.params(vol_start=sql_time(plan.history.start - timedelta(days=3)))}
    p["hist_start"] = sql_time(plan.judge_start)
    before = _sorted(frame(store, before_volume(("service", "model"), dims, 300), p))
    after = _sorted(frame(store, anomalies_sql.volume_sql(("service", "model"), dims, 300), p))
    assert dims and set(before["g_model"]) == {"gpt-4o-mini"}
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


@pytest.mark.parametrize("by", [(), ("service", "model")])
def test_storms_by_hashed_session_equal_the_string_keys(store: Any, params: dict[str, Any], by: tuple) -> None:
    """Every column equal; the example traces (any three of a series' storms) as many."""
    before = _sorted_by_series(frame(store, before_storms(by, ""), params))
    after = _sorted_by_series(frame(store, calls_sql.storms_sql(by, ""), params))
    assert "concat('s:'" in before_storms(by, "") and before["storms"].sum() > 0
    columns = [c for c in before.columns if c != "trace_ids"]
    pd.testing.assert_frame_equal(after[columns], before[columns], check_dtype=False)
    assert [len(t) for t in after["trace_ids"]] == [len(t) for t in before["trace_ids"]]


def _sorted_by_series(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values([c for c in df.columns if c.startswith(("g_", "_all"))]).reset_index(drop=True)

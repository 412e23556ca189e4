"""The faster anomaly SQL returns what the SQL it replaced returned (the detector's input is the contract).

``before_outliers`` is the call-level outlier query as it was before both kinds were read in one
pass (commit 1c42905), ``before_counts`` the counts query as it was before its calls met their
thresholds on one hash key, ``before_storms`` the retry storms before sessions were hashed,
``before_volume`` the volume history as it was before it read the
minute rollup (both main 0ac5e8c), ``before_storms_hashed`` and ``before_examples`` the retry storms
and the example traces as they were before they read only the candidates' calls (main 2742107): kept
here only as the references the new queries are held to, on the synthetic store with injected slow
calls, cost jumps, error bursts and truncations (and, for storms, hand-made ones), ungrouped and
grouped."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from llmtrace import semconv
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
    threshold_windows,
)
from llmtrace.analytics.filters import sql_time
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.conftest_store import otel_row
from tests.server_process import ServerProcess
from tests.test_anomalies import END, LAST_3_DAYS
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
            {threshold_windows(g, THRESHOLD_HOURS)}
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


def before_storms_hashed(by: Sequence[str], dims: str) -> str:
    """The replaced retry-storm query (main 2742107): the session or trace of every call of the
    window hashed, twice, and every call's TraceId read. Its example traces were any three of a
    series' storms; here they are picked as the new query picks them (the most failures first),
    so that the storms themselves are compared, traces included."""
    g = series_columns(by)
    key = "if(SessionId != '', cityHash64('s', SessionId), cityHash64('t', TraceId))"
    w = f"toStartOfInterval(Timestamp, toIntervalSecond({calls_sql.STORM_SECONDS}))"
    return f"""
        SELECT 'retry_storm' AS kind, 'retries' AS metric, {g}, min(first) AS start, max(last) AS last,
               count() AS storms, sum(errors) AS observed, toFloat64(0) AS expected, toFloat64(max(errors)) AS score,
               arrayMap(x -> x.3, groupArraySorted(3)((-errors, first, trace_id))) AS trace_ids
        FROM (
            SELECT {g}, countIf(IsError = 1) AS errors, countIf(IsError = 0) AS ok,
                   min(Timestamp) AS first, max(Timestamp) AS last,
                   maxIf(Timestamp, IsError = 1) < maxIf(Timestamp, IsError = 0) AS recovered,
                   argMax(TraceId, Timestamp) AS trace_id
            FROM (SELECT *, {_groups(by)}, {key} AS storm_key, {w} AS w
                  FROM llm_calls WHERE {calls_sql._WINDOW}{dims}
                    AND ({key}, {w}) IN (
                        SELECT {key}, {w} AS fw
                        FROM llm_calls WHERE {calls_sql._WINDOW}{dims} AND IsError = 1
                        GROUP BY 1, fw HAVING count() >= 3))
            GROUP BY {g}, storm_key, w
            HAVING errors >= 3 AND ok >= 1 AND recovered
        )
        GROUP BY {g}"""


def before_storms(by: Sequence[str], dims: str) -> str:
    """The retry-storm query before sessions were hashed: sessions and traces as 's:<id>' / 't:<id>' strings."""
    return before_storms_hashed(by, dims).replace(
        "if(SessionId != '', cityHash64('s', SessionId), cityHash64('t', TraceId))",
        "if(SessionId != '', concat('s:', SessionId), concat('t:', TraceId))",
    )


ANY = "\x01any"  # before_examples: an episode's value for a column its level does not group by


def before_examples(by: Sequence[str], dims: str, step: int) -> str:
    """The replaced example-trace query (main 2742107): every call of [first start, last end)
    hash-joined to the episodes' buckets, the joined rows sorted. Bound as arrays (``ep_start``,
    ``ep_end``, ``ep_metric``, ``ep_g_<by>``; see ``before_examples_params``)."""
    ep_groups = "".join(f", {{ep_g_{b}:Array(String)}}[i] AS g_{b}" for b in by) or ", 0 AS _all"
    match = " AND ".join(f"(e.g_{b} = '{ANY}' OR c.g_{b} = e.g_{b})" for b in by) or "1"
    bucket = f"toUnixTimestamp(toStartOfInterval(Timestamp, toIntervalSecond({step})))"
    span = "toUInt32(toUnixTimestamp({ep_start:Array(DateTime64(6, 'UTC'))}[i]))"
    stop = "toUInt32(toUnixTimestamp({ep_end:Array(DateTime64(6, 'UTC'))}[i]))"
    key = """multiIf(
        metric = 'latency_p95_ms', toFloat64(DurationUs),
        metric = 'ttft_p95_ms', toFloat64(ifNull(TtftUs, 0)),
        metric = 'error_rate', toFloat64(IsError),
        metric = 'cost_per_call_usd', ifNull(CostUsd, 0),
        metric = 'tokens_per_call', toFloat64(OutputTokens),
        metric = 'truncation_rate', toFloat64(FinishReason IN ('length', 'max_tokens')),
        metric = 'empty_output_rate', toFloat64(IsError = 0 AND OutputTokens = 0),
        0)"""
    return f"""
        SELECT ep, groupArray(TraceId) AS trace_ids FROM (
            SELECT e.ep AS ep, c.TraceId AS TraceId, {key} AS k, c.Timestamp AS ts
            FROM (
                SELECT Timestamp, TraceId, DurationUs, TtftUs, IsError, CostUsd, OutputTokens,
                       FinishReason, {_groups(by)}, {bucket} AS bt
                FROM llm_calls
                WHERE Timestamp >= {{min_start:DateTime64(6, 'UTC')}}
                  AND Timestamp < {{max_end:DateTime64(6, 'UTC')}}{dims}
            ) AS c
            INNER JOIN (
                SELECT i AS ep, {{ep_metric:Array(String)}}[i] AS metric{ep_groups},
                       arrayJoin(range({span}, {stop}, {step})) AS bt
                FROM (SELECT arrayJoin(arrayEnumerate({{ep_metric:Array(String)}})) AS i)
            ) AS e ON c.bt = e.bt
            WHERE {match}
            ORDER BY ep, k DESC, ts
            LIMIT 3 BY ep
        ) GROUP BY ep"""


def before_examples_params(episodes: list[tuple[datetime, datetime, str, dict[str, str]]], by: Sequence[str]) -> dict:
    return {
        "ep_start": [sql_time(e[0]) for e in episodes],
        "ep_end": [sql_time(e[1]) for e in episodes],
        "ep_metric": [e[2] for e in episodes],
        "min_start": sql_time(min(e[0] for e in episodes)),
        "max_end": sql_time(max(e[1] for e in episodes)),
        **{f"ep_g_{b}": [e[3].get(b, ANY) for e in episodes] for b in by},
    }


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


LAB = END - timedelta(hours=5)  # a bucket edge inside LAST_3_DAYS' judged day
S = timedelta(seconds=1)
EDGE = LAB + timedelta(minutes=10)  # a five-minute edge


def _lab_call(at: datetime, trace: str, failed: bool, session: str = "", model: str = "m1", env: str = "prod") -> tuple:
    attrs = {
        semconv.OPERATION_NAME: "chat",
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: model,
        semconv.USAGE_INPUT_TOKENS: "100",
        semconv.USAGE_OUTPUT_TOKENS: "0" if failed else "20",
        semconv.ENVIRONMENT: env,
        **({semconv.SESSION_ID: session} if session else {}),
        **({semconv.ERROR_TYPE: "openai.RateLimitError"} if failed else {}),
    }
    return otel_row(
        attrs, service_name="storm-lab", start_ns=int(at.timestamp() * 1e9), duration_ns=200_000_000,
        trace_id=trace, status_code="Error" if failed else "Unset",
    )  # fmt: skip


# (session, trace, model, environment, [(seconds after LAB, failed)]): which are storms is in the names
_LAB = [
    ("big-storm", "a" * 32, "m1", "prod", [(10, 1), (20, 1), (30, 1), (40, 1), (50, 1), (60, 0)]),
    ("small-storm", "b" * 32, "m1", "prod", [(70, 1), (80, 1), (90, 1), (100, 0)]),
    ("mid-storm", "c" * 32, "m1", "prod", [(110, 1), (120, 1), (130, 1), (140, 1), (150, 0)]),
    ("late-storm", "d" * 32, "m1", "prod", [(3600 + s, f) for s, f in [(0, 1), (5, 1), (9, 1), (14, 0)]]),
    ("", "e" * 32, "m1", "prod", [(160, 1), (170, 1), (180, 1), (190, 0)]),  # a storm in a trace, no session
    ("", "f" * 32, "m1", "prod", [(165, 1), (175, 1), (185, 0)]),  # same series and minutes: two failures only
    ("straddles", "1" * 32, "m1", "prod", [(580, 1), (590, 1), (605, 1), (620, 0)]),  # 2 + 1 failures
    ("recovers-late", "2" * 32, "m1", "prod", [(570, 1), (580, 1), (590, 1), (610, 0)]),  # success in the next 5'
    ("no-recovery", "3" * 32, "m1", "prod", [(200, 1), (205, 0), (210, 1), (220, 1)]),
    ("never-ok", "4" * 32, "m1", "prod", [(230, 1), (240, 1), (250, 1), (260, 1)]),
    ("two-models", "5" * 32, "m1", "prod", [(20, 1), (25, 1), (40, 0)]),  # + m2 below: a storm by service only
    ("two-models", "6" * 32, "m2", "prod", [(30, 1)]),
    ("staging-storm", "7" * 32, "m2", "staging", [(20, 1), (25, 1), (27, 1), (40, 0)]),
]


@pytest.fixture(scope="module")
def storm_lab(store: Any) -> Any:
    """The synthetic store plus hand-made storms and near-storms of service storm-lab."""
    rows = [  # a millisecond apart per row of _LAB: no two calls at the same time (the order of ties is free)
        _lab_call(LAB + s * S + i * S / 1000, trace, bool(failed), session, model, env)
        for i, (session, trace, model, env, calls) in enumerate(_LAB)
        for s, failed in calls
    ]
    store.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    return store


def _lab_params(**filters: Any) -> dict[str, Any]:
    plan = anomalies.plan(replace(LAST_3_DAYS, **filters))
    dims, dim_params = anomalies._dims(plan)
    return {"dims": dims, "params": {**dim_params, **plan.params()}}


@pytest.mark.parametrize(
    ("by", "filters"),
    [((), {}), (("service",), {}), (("service", "model"), {}), (("service", "model", "environment"), {}),
     (("model",), {"services": ("storm-lab",)}), (("service", "environment"), {"environments": ("staging",)})],
)  # fmt: skip
def test_storms_from_the_candidates_calls_equal_hashing_every_call(storm_lab: Any, by: tuple, filters: dict) -> None:
    """Same storms, counts, first and last times and example traces as the query that grouped
    every call of the window."""
    lab = _lab_params(**filters)
    before = _sorted_by_series(frame(storm_lab, before_storms_hashed(by, lab["dims"]), lab["params"]))
    after = _sorted_by_series(frame(storm_lab, calls_sql.storms_sql(by, lab["dims"]), lab["params"]))
    assert before["storms"].sum() > 0
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


@pytest.mark.parametrize(
    ("by", "filters"),
    [((), {}), (("service",), {}), (("service", "model"), {}), (("service", "model", "environment"), {}),
     (("model",), {"services": ("storm-lab",)}), (("service", "environment"), {"environments": ("staging",)}),
     (("service", "release"), {"releases": ("",)})],
)  # fmt: skip
def test_storms_from_the_storm_rollup_equal_the_candidates_calls(storm_lab: Any, by: tuple, filters: dict) -> None:
    """The storms read from ``llm_storm_5m`` (027) are those of every call: the same storms,
    counts, first and last times and example traces, in order."""
    lab = _lab_params(**filters)
    before = _sorted_by_series(frame(storm_lab, calls_sql.storms_sql(by, lab["dims"]), lab["params"]))
    after = _sorted_by_series(frame(storm_lab, calls_sql.storms_rollup_sql(by, lab["dims"]), lab["params"]))
    assert before["storms"].sum() > 0
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


@pytest.mark.parametrize(
    ("by", "filters"),
    [((), {}), (("service",), {}), (("service", "model"), {}), (("service", "model", "environment"), {}),
     (("model",), {"services": ("storm-lab",)}), (("service", "release"), {"releases": ("",)})],
)  # fmt: skip
def test_storms_read_in_two_steps_equal_the_storm_rollup_query(storm_lab: Any, by: tuple, filters: dict) -> None:
    """The detector's two reads (storms without traces, then only the examples' traces) give
    :func:`storms_rollup_sql`'s rows: the same storms, counts, times and example traces, in order."""
    lab = _lab_params(**filters)
    before = _sorted_by_series(frame(storm_lab, calls_sql.storms_rollup_sql(by, lab["dims"]), lab["params"]))
    after = _sorted_by_series(pd.DataFrame(calls_sql.rollup_storms(storm_lab, by, lab["dims"], lab["params"])))
    assert before["storms"].sum() > 0
    after["trace_ids"] = after["trace_ids"].map(list)
    before["trace_ids"] = before["trace_ids"].map(list)
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


@pytest.fixture(scope="module")
def storm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The hand-made storms alone in a real ``llmtrace server``, read over HTTP (clickhouse-connect gives
    arrays as lists, chDB as numpy arrays)."""
    server = ServerProcess(tmp_path_factory.mktemp("storm_server")).wait_ready()
    client = server.client()
    rows = [
        _lab_call(LAB + s * S + i * S / 1000, trace, bool(failed), session, model, env)
        for i, (session, trace, model, env, calls) in enumerate(_LAB)
        for s, failed in calls
    ]
    client.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    yield client
    client.close()
    server.stop()


def test_storms_read_in_two_steps_over_http_equal_the_storm_rollup_query(storm_server: Any) -> None:
    """The same two reads through a server's HTTP interface: the same storms and example traces."""
    lab = _lab_params(services=("storm-lab",))
    by = ("service", "model")
    before = _sorted_by_series(frame(storm_server, calls_sql.storms_rollup_sql(by, lab["dims"]), lab["params"]))
    after = _sorted_by_series(pd.DataFrame(calls_sql.rollup_storms(storm_server, by, lab["dims"], lab["params"])))
    assert list(after["g_model"]) == ["m1", "m2"] and list(after["trace_ids"].map(list)[0]) == [
        "a" * 32,
        "c" * 32,
        "b" * 32,
    ]
    after["trace_ids"] = after["trace_ids"].map(list)
    before["trace_ids"] = before["trace_ids"].map(list)
    pd.testing.assert_frame_equal(after[list(before.columns)], before, check_dtype=False)


def test_the_detector_reads_the_storms_from_the_rollup_where_it_answers(storm_lab: Any) -> None:
    """With the rollup emptied the detector finds no storm at 5-minute buckets (it read the
    rollup) and still finds them at 1-minute ones (the rollup's buckets cannot answer)."""
    window = replace(LAST_3_DAYS, services=("storm-lab",))
    assert anomalies.detect(storm_lab, window).find(kind="retry_storm")
    saved = "llm_storm_5m_saved"
    storm_lab.command(f"CREATE TABLE {saved} AS llm_storm_5m")
    storm_lab.command(f"INSERT INTO {saved} SELECT * FROM llm_storm_5m")
    storm_lab.command("TRUNCATE TABLE llm_storm_5m")
    try:
        assert not anomalies.detect(storm_lab, window).find(kind="retry_storm")
        assert anomalies.detect(storm_lab, window, step=60).find(kind="retry_storm")
    finally:
        storm_lab.command(f"INSERT INTO llm_storm_5m SELECT * FROM {saved}")
        storm_lab.command(f"DROP TABLE {saved}")


def test_storm_candidates_are_counted_per_series(storm_lab: Any) -> None:
    """A session's failures spread over two models make a candidate by service, not by service and
    model (its 2 + 1 failures): the rollup's storm query merges only the rows of its series' candidates."""
    lab = _lab_params(services=("storm-lab",))
    two_models = storm_lab.query("SELECT cityHash64('s', 'two-models')").result_rows[0][0]

    def candidates(by: tuple[str, ...]) -> set[int]:
        rows = frame(storm_lab, calls_sql.storm_candidates_sql(by, lab["dims"]), lab["params"])
        return {int(k) for k in rows["StormKey"]}

    by_service, by_model = candidates(("service",)), candidates(("service", "model"))
    assert two_models in by_service and two_models not in by_model
    assert by_model == by_service - {two_models} and len(by_model) >= 5


def test_the_hand_made_storms_are_the_storms(storm_lab: Any) -> None:
    """Four storms in sessions and one in a trace without session (by service and model: the
    session split over two models is not one), the biggest storms' traces first."""
    lab = _lab_params(services=("storm-lab",))
    rows = frame(storm_lab, calls_sql.storms_sql(("service", "model"), lab["dims"]), lab["params"])
    found = {r["g_model"]: (r["storms"], r["observed"], list(r["trace_ids"])) for r in rows.to_dict("records")}
    assert found == {"m1": (5, 18, ["a" * 32, "c" * 32, "b" * 32]), "m2": (1, 3, ["7" * 32])}
    by_service = frame(storm_lab, calls_sql.storms_sql(("service",), lab["dims"]), lab["params"])
    assert list(by_service["storms"]) == [7]  # + two-models (3 failures of the service) and staging together
    rolled = frame(storm_lab, calls_sql.storms_rollup_sql(("service", "model"), lab["dims"]), lab["params"])
    by_model = {r["g_model"]: (r["storms"], r["observed"], list(r["trace_ids"])) for r in rolled.to_dict("records")}
    assert by_model == found  # the rollup's storms too


def _episodes(report: anomalies.AnomalyReport) -> list[tuple[datetime, datetime, str, dict[str, str]]]:
    found = [(a.start, a.end, a.metric, a.series) for a in report.episodes()]
    assert len(found) >= 5 and any(len(e[3]) == 1 for e in found) and any(len(e[3]) >= 2 for e in found)
    five = timedelta(minutes=5)
    start, end, _, series = found[0]
    return [
        *found,
        (start, end, "latency_p95_ms", {}),  # every series
        (start + timedelta(seconds=7), end, "cost_per_call_usd", series),  # off a bucket's start: no calls
        (start, end - timedelta(seconds=7), "error_rate", series),  # its last bucket's calls after its end too
        (start, start + five, "calls", series),  # one bucket
        (start, start, "tokens_per_call", series),  # none
        (LAB, LAB + 2 * five, "error_rate", {"service": "storm-lab", "environment": "prod"}),
        (LAB, LAB + five, "empty_output_rate", {"service": "storm-lab", "model": "m2"}),
    ]  # fmt: skip


def _examples(client: Any, by: tuple, dims: str, params: dict, episodes: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    before = frame(client, before_examples(by, dims, 300), {**params, **before_examples_params(episodes, by)})
    matched = [(*e[:3], {b: e[3][b] for b in by if b in e[3]}) for e in episodes]
    bounds = {"min_start": sql_time(min(e[0] for e in episodes)), "max_end": sql_time(max(e[1] for e in episodes))}
    shapes = calls_sql.example_shapes([e[3] for e in matched])
    new_params = {**params, **bounds, **calls_sql.examples_params(matched, 300, shapes)}
    after = frame(client, calls_sql.examples_sql(dims, shapes, 300), new_params)

    def tidy(df: pd.DataFrame) -> pd.DataFrame:
        df = df.assign(ep=df["ep"].astype(int), trace_ids=df["trace_ids"].map(list))
        return df.sort_values("ep").reset_index(drop=True)

    return tidy(before), tidy(after)


@pytest.mark.parametrize("by", [("service", "model"), ("service", "model", "environment")])
def test_examples_tested_per_call_equal_the_join_on_buckets(storm_lab: Any, by: tuple) -> None:
    """The same trace ids per episode, in order, for the detector's episodes and for edge cases
    (an episode over every series, one off a bucket's start, one ending inside its last bucket,
    one bucket, none)."""
    report = anomalies.detect(storm_lab, LAST_3_DAYS)
    episodes = _episodes(report)
    before, after = _examples(storm_lab, by, "", {}, episodes)
    assert len(before) >= 10 and (before["trace_ids"].map(len) == 3).any()
    pd.testing.assert_frame_equal(after, before, check_dtype=False)


def test_examples_of_episodes_naming_their_service_equal_the_join_on_buckets(storm_lab: Any) -> None:
    """Every episode names its service: the primary key then skips the other services' granules
    (``examples_sql``'s ``services``), and no episode loses a call to it."""
    episodes = [e for e in _episodes(anomalies.detect(storm_lab, LAST_3_DAYS)) if "service" in e[3]]
    before, after = _examples(storm_lab, ("service", "model"), "", {}, episodes)
    assert len(before) >= 5 and (before["trace_ids"].map(len) == 3).any()
    pd.testing.assert_frame_equal(after, before, check_dtype=False)


def test_examples_with_a_dimension_filter_equal_the_join_on_buckets(storm_lab: Any) -> None:
    plan = anomalies.plan(replace(LAST_3_DAYS, services=("search-api", "storm-lab")))
    dims, dim_params = anomalies._dims(plan)
    episodes = _episodes(anomalies.detect(storm_lab, LAST_3_DAYS))
    before, after = _examples(storm_lab, ("service", "model"), dims, dim_params, episodes)
    assert dims and len(before) > 0
    pd.testing.assert_frame_equal(after, before, check_dtype=False)


def test_examples_read_only_the_granules_near_their_episodes(storm_lab: Any) -> None:
    """The primary key skips what no episode covers: one episode of one series over an hour
    reads fewer granules than the hour of every series did."""
    by = ("service", "model")
    episodes = [(LAB, LAB + timedelta(hours=1), "error_rate", {"service": "storm-lab", "model": "m1"})]
    params = {"min_start": sql_time(LAB), "max_end": sql_time(LAB + timedelta(hours=1))}

    def granules(sql: str, p: dict) -> int:
        plan = "\n".join(r[0] for r in storm_lab.query(f"EXPLAIN indexes = 1 {sql}", parameters=p).result_rows)
        return sum(int(n) for n in re.findall(r"Granules: (\d+)/\d+\n(?!.*Granules)", plan + "\n", re.S)[-1:])

    before = granules(before_examples(by, "", 300), {**params, **before_examples_params(episodes, by)})
    bound = {**params, **calls_sql.examples_params(episodes, 300, [by])}
    after = granules(calls_sql.examples_sql("", [by], 300), bound)
    assert 0 < after < before

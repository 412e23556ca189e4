"""The faster anomaly SQL returns what the SQL it replaced returned (the detector's input is the contract).

``BEFORE_OUTLIERS`` is the call-level outlier query as it was before both kinds were read in one
pass (commit 1c42905): kept here only as the reference the new query is held to, on the
synthetic store with injected slow calls and cost jumps, ungrouped and grouped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import anomalies, frame
from llmtrace.analytics import anomalies_calls as calls_sql
from llmtrace.analytics.anomalies_calls import CALL_RATIO, CALL_Z, _groups
from llmtrace.analytics.anomalies_sql import series_columns
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

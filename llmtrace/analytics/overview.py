"""Overview: headline numbers with their change vs the previous window, a time series and
breakdowns by provider, model and service."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import DURATION_MS, TTFT_MS, Filter

# Breakdown key -> grouping column available in every aggregated source.
BREAKDOWNS: dict[str, str] = {
    "provider": "Provider",
    "model": "RequestModel",
    "service": "ServiceName",
    "environment": "Environment",
    "release": "Release",
    "prompt": "concat(PromptName, if(PromptVersion = '', '', concat('@', PromptVersion)))",
    "operation": "Operation",
}

# Spend is NULL, never $0, when no call in the group has a price.
_TOTALS = f"""
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    if(calls = 0, 0, errors / calls) AS error_rate,
    sum(UnpricedCalls) AS unpriced_calls,
    if(calls = unpriced_calls, NULL, sum(CostUsd)) AS cost_usd,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens,
    input_tokens + output_tokens AS tokens,
    {DURATION_MS} AS _d,
    {TTFT_MS} AS _t,
    _d[1] AS p50_ms, _d[3] AS p95_ms, _d[4] AS p99_ms,
    _t[1] AS ttft_p50_ms, _t[3] AS ttft_p95_ms"""

SUMMARY_COLUMNS = [
    "calls",
    "errors",
    "error_rate",
    "cost_usd",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "tokens",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
]


def summary(client: Any, f: Filter) -> pd.DataFrame:
    """One row of headline numbers for the window (percentiles NaN when there are no calls).

    Whole-window figures read hourly t-digest states where they can (``Filter.totals_source``), so
    percentiles are the hourly states' merge: within t-digest's error of the exact ones, like the
    minute states'; counts and sums equal direct SQL."""
    df = frame(client, f"SELECT {_TOTALS} FROM {f.totals_source()}", f.params(**f.whole_hours()))
    return _clean_percentiles(df[SUMMARY_COLUMNS])


def summary_with_previous(client: Any, f: Filter) -> pd.DataFrame:
    """Two rows indexed ``current`` and ``previous`` (the same-length window just before)."""
    rows = [summary(client, f), summary(client, f.previous())]
    return pd.concat(rows, ignore_index=True).set_axis(["current", "previous"])


def timeseries(client: Any, f: Filter, step: int | None = None) -> pd.DataFrame:
    """Per bucket: calls, errors, cost, tokens and p50/p95 latency; empty buckets filled with 0."""
    sql = f"""
        SELECT toTimeZone(Bucket, 'UTC') AS bucket, {_TOTALS}
        FROM {f.source()}
        GROUP BY Bucket
        ORDER BY Bucket"""
    params = f.params(step)
    df = _clean_percentiles(frame(client, sql, params))
    df = df[["bucket", *SUMMARY_COLUMNS]]
    return fill_buckets(df, f, params["step"])


def breakdown(client: Any, f: Filter, by: str, limit: int = 20) -> pd.DataFrame:
    """Per value of ``by`` (a key of :data:`BREAKDOWNS`): the headline numbers, biggest first."""
    column = _breakdown_column(by)
    sql = f"""
        SELECT {column} AS {by}, {_TOTALS}
        FROM {f.totals_source()}
        GROUP BY {by}
        ORDER BY calls DESC, {by}
        LIMIT {{limit:UInt32}}"""
    df = frame(client, sql, f.params(limit=limit, **f.whole_hours()))
    return _clean_percentiles(df[[by, *SUMMARY_COLUMNS]])


def store_counts(client: Any) -> dict[str, int]:
    """Rows in the store at all (``spans`` in otel_traces, ``calls`` in llm_calls): 0 means empty."""
    df = frame(client, "SELECT (SELECT count() FROM otel_traces) AS spans, (SELECT count() FROM llm_calls) AS calls")
    return {"spans": int(df["spans"].iloc[0]), "calls": int(df["calls"].iloc[0])}


def _breakdown_column(by: str) -> str:
    try:
        return BREAKDOWNS[by]
    except KeyError:
        raise ValueError(f"unknown breakdown {by!r}; choose one of {', '.join(BREAKDOWNS)}") from None


def _clean_percentiles(df: pd.DataFrame) -> pd.DataFrame:
    """Percentiles of zero calls come back as 0 or NaN: make them NaN so they show as "—"."""
    df = df.copy()
    for column in ("p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms"):
        if column in df:
            values = pd.to_numeric(df[column], errors="coerce").astype(float)
            df[column] = values.where(df["calls"] > 0) if "calls" in df else values
    return df


def fill_buckets(df: pd.DataFrame, f: Filter, step: int) -> pd.DataFrame:
    """Reindex a per-bucket frame onto every bucket of the window, zero-filling counts."""
    first = pd.Timestamp(f.start).floor(f"{step}s")
    index = pd.date_range(first, f.end, freq=f"{step}s", inclusive="left", tz="UTC", name="bucket")
    if df.empty:
        out = pd.DataFrame(index=index, columns=[c for c in df.columns if c != "bucket"]).reset_index()
    else:
        buckets = pd.to_datetime(df["bucket"], utc=True)
        out = df.assign(bucket=buckets).set_index("bucket").reindex(index).reset_index()
    counts = [c for c in out.columns if c != "bucket" and not c.endswith("_ms")]
    out[counts] = out[counts].fillna(0)
    return out

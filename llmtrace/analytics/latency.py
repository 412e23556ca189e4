"""Latency: duration and time-to-first-token percentiles per model, their distribution and
trend, output tokens per second, and the slowest calls."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import DURATION_MS, TTFT_MS, Filter

METRICS = {"duration": "DurationUs", "ttft": "TtftUs"}
_BINS_PER_DECADE = 10  # must match the llm_latency_1h rollup (schema 020)
_TIME = "DateTime64(6, 'UTC')"
_SPEED_LEVELS = "0.5, 0.95"  # must match the llm_speed_1h rollup's state (schema 022)


def by_model(client: Any, f: Filter) -> pd.DataFrame:
    """Per model: calls, duration p50/p90/p95/p99, TTFT p50/p95 (streams only), mean duration.

    Whole hours merge the hourly rollup's t-digest states (``Filter.totals_source``), the partial hours
    at the edges come from ``llm_calls``."""
    sql = f"""
        SELECT RequestModel AS model, sum(Calls) AS calls,
               {DURATION_MS} AS _d, {TTFT_MS} AS _t,
               _d[1] AS p50_ms, _d[2] AS p90_ms, _d[3] AS p95_ms, _d[4] AS p99_ms,
               _t[1] AS ttft_p50_ms, _t[3] AS ttft_p95_ms,
               sum(DurationSumUs) / calls / 1000 AS mean_ms
        FROM {f.totals_source()}
        GROUP BY model
        ORDER BY calls DESC, model"""
    df = frame(client, sql, f.params(**f.whole_hours()))
    columns = ["model", "calls", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms", "mean_ms"]
    return _nan_for_zero(df[columns])


def tokens_per_second(client: Any, f: Filter) -> pd.DataFrame:
    """Per model: output tokens per second (after the first token) p50/p95, over calls with output.

    Percentiles are t-digest's: whole hours merge the ``llm_speed_1h`` rollup's states (schema 022), the
    partial hours at the window's edges add states of their calls from ``llm_calls`` (the calls counted
    exactly); a user or session filter reads ``llm_calls`` only."""
    speed = f"quantilesTDigestState({_SPEED_LEVELS})(OutputTokensPerSecond)"
    if f.raw_only:
        calls = f"""
            SELECT RequestModel, toUInt64(count()) AS Calls, {speed} AS SpeedQ FROM llm_calls
            WHERE {f.where()} AND OutputTokensPerSecond > 0 GROUP BY RequestModel"""
    else:
        calls = f"""
            SELECT RequestModel, Calls, SpeedQ FROM llm_speed_1h
            WHERE Bucket >= {{hour_start:{_TIME}}} AND Bucket < {{hour_end:{_TIME}}}{f.dimension_clause()}
            UNION ALL
            SELECT RequestModel, toUInt64(count()), {speed} FROM llm_calls
            WHERE {f.raw_edges()}{f.dimension_clause()} AND OutputTokensPerSecond > 0 GROUP BY RequestModel"""
    sql = f"""
        SELECT RequestModel AS model, sum(Calls) AS calls,
               quantilesTDigestMerge({_SPEED_LEVELS})(SpeedQ) AS _q, _q[1] AS p50, _q[2] AS p95
        FROM ({calls})
        GROUP BY model
        ORDER BY calls DESC, model"""
    return frame(client, sql, f.params(**f.whole_hours()))[["model", "calls", "p50", "p95"]]


def histogram(client: Any, f: Filter, metric: str = "duration") -> pd.DataFrame:
    """Calls per model in log-spaced latency bins (``bin_ms`` is the bin's lower edge).

    Whole hours come from the ``llm_latency_1h`` rollup (schema 020, the same bins), the partial
    hours at the window's edges from ``llm_calls``; a user or session filter reads ``llm_calls``."""
    column = _metric_column(metric)
    bin_of = f"toInt16(floor(log10(greatest({column}, 1) / 1000) * {_BINS_PER_DECADE}))"
    if f.raw_only:
        calls = f"""
            SELECT RequestModel, {bin_of} AS Bin, toUInt64(1) AS Calls FROM llm_calls
            WHERE {f.where()} AND {column} IS NOT NULL"""
    else:
        calls = f"""
            SELECT RequestModel, Bin, Calls FROM llm_latency_1h
            WHERE Metric = {{metric:String}} AND Bucket >= {{hour_start:{_TIME}}} AND Bucket < {{hour_end:{_TIME}}}
                  {f.dimension_clause()}
            UNION ALL
            SELECT RequestModel, {bin_of} AS Bin, toUInt64(1) AS Calls FROM llm_calls
            WHERE {f.raw_edges()}{f.dimension_clause()} AND {column} IS NOT NULL"""
    sql = f"""
        SELECT RequestModel AS model, pow(10, Bin / {_BINS_PER_DECADE}) AS bin_ms, sum(Calls) AS calls
        FROM ({calls})
        GROUP BY model, bin_ms
        ORDER BY model, bin_ms"""
    return frame(client, sql, f.params(metric=metric, **f.whole_hours()))


def over_time(client: Any, f: Filter, step: int | None = None) -> pd.DataFrame:
    """Per bucket and model: calls and duration p50/p95, TTFT p50."""
    sql = f"""
        SELECT toTimeZone(Bucket, 'UTC') AS bucket, RequestModel AS model, sum(Calls) AS calls,
               {DURATION_MS} AS _d, {TTFT_MS} AS _t,
               _d[1] AS p50_ms, _d[3] AS p95_ms, _t[1] AS ttft_p50_ms
        FROM {f.source()}
        GROUP BY bucket, model
        ORDER BY bucket, model"""
    df = frame(client, sql, f.params(step))
    return _nan_for_zero(df[["bucket", "model", "calls", "p50_ms", "p95_ms", "ttft_p50_ms"]])


def slowest_calls(client: Any, f: Filter, limit: int = 20) -> pd.DataFrame:
    """The longest calls in the window, with enough context to open their trace."""
    sql = f"""
        SELECT Timestamp AS timestamp, TraceId AS trace_id, SpanId AS span_id, ServiceName AS service,
               RequestModel AS model, DurationUs / 1000 AS duration_ms, TtftUs / 1000 AS ttft_ms,
               OutputTokens AS output_tokens, OutputTokensPerSecond AS tokens_per_s,
               if(IsStream, 'yes', 'no') AS stream, if(StatusCode = 'Error', 'error', 'ok') AS status,
               ErrorType AS error_type
        FROM llm_calls
        WHERE {f.where()}
        ORDER BY DurationUs DESC
        LIMIT {{limit:UInt32}}"""
    return frame(client, sql, f.params(limit=limit))


def _metric_column(metric: str) -> str:
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown latency metric {metric!r}; choose one of {', '.join(METRICS)}") from None


def _nan_for_zero(df: pd.DataFrame) -> pd.DataFrame:
    """A model with no streamed calls has no TTFT: show NaN, not 0."""
    df = df.copy()
    for column in [c for c in df.columns if c.endswith("_ms")]:
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    for column in ("ttft_p50_ms", "ttft_p95_ms"):
        if column in df:
            df[column] = df[column].where(df[column] > 0)
    return df

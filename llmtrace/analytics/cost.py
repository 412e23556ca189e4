"""Cost: spend by dimension and day, the most expensive calls, unpriced calls and a monthly
projection.

Spend sums only priced calls; calls without a known price (``CostUsd`` NULL) are counted
separately in ``unpriced_calls`` and never contribute a $0: a group with no priced call has
``cost_usd`` NULL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import DAY, Filter, utcnow

# Dimension -> grouping expression over an aggregated source (rollup-backed).
SOURCE_DIMENSIONS: dict[str, str] = {
    "model": "RequestModel",
    "provider": "Provider",
    "service": "ServiceName",
    "environment": "Environment",
    "release": "Release",
    "prompt": "concat(PromptName, if(PromptVersion = '', '', concat('@', PromptVersion)))",
}
# Dimensions the filter rollups do not keep: users have their own rollup (below), sessions read llm_calls.
RAW_DIMENSIONS: dict[str, str] = {"user": "UserId", "session": "SessionId"}
_TIME = "DateTime64(6, 'UTC')"
# Per-user rollup columns (schema 022) and the same per call of llm_calls, for the window's partial hours.
_USER_COLUMNS = "UserId, Calls, UnpricedCalls, PricedCalls, CostUsd, InputTokens, OutputTokens"
_USER_CALL = (
    "UserId, toUInt64(1), toUInt64(CostStatus = 'unpriced'), toUInt64(CostUsd IS NOT NULL), ifNull(CostUsd, 0), "
    "InputTokens, OutputTokens"
)
_NO_COST_COLUMNS = "Provider, RequestModel, NoPriceCalls, NoUsageCalls"
_NO_COST_CALL = (
    "Provider, RequestModel, toUInt64(CostUsd IS NULL AND CostStatus != 'no_usage'), "
    "toUInt64(CostUsd IS NULL AND CostStatus = 'no_usage')"
)
DIMENSIONS = [*SOURCE_DIMENSIONS, *RAW_DIMENSIONS]
MONTH = timedelta(days=30)
FUTURE_SLACK = timedelta(minutes=5)  # preset windows end at the end of the current minute

_SPEND = """
    sum(Calls) AS calls,
    sum(UnpricedCalls) AS unpriced_calls,
    sum(PricedCalls) AS priced_calls,
    if(priced_calls = 0, NULL, sum(CostUsd)) AS cost_usd,
    cost_usd / priced_calls AS cost_per_call_usd,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens"""
_RAW_SPEND = """
    count() AS calls,
    countIf(CostStatus = 'unpriced') AS unpriced_calls,
    countIf(CostUsd IS NOT NULL) AS priced_calls,
    if(priced_calls = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd,
    cost_usd / priced_calls AS cost_per_call_usd,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens"""
SPEND_COLUMNS = [
    "calls",
    "unpriced_calls",
    "priced_calls",
    "cost_usd",
    "cost_per_call_usd",
    "input_tokens",
    "output_tokens",
]


def totals(client: Any, f: Filter) -> pd.DataFrame:
    """One row: spend, priced and unpriced calls, and ``projected_month_usd`` at the window's rate.

    The rate is spend over the window's length; a window reaching well into the future (a
    custom range that includes today) counts only its elapsed part, so it is not diluted.
    """
    df = frame(client, f"SELECT {_SPEND} FROM {f.source()}", f.params())[SPEND_COLUMNS]
    now = utcnow()
    end = f.end if f.end <= now + FUTURE_SLACK else max(now, f.start + timedelta(seconds=1))
    elapsed = (end - f.start).total_seconds()
    df["projected_month_usd"] = df["cost_usd"].astype(float) * (MONTH.total_seconds() / elapsed)
    return df


def spend_by(client: Any, f: Filter, dimension: str, limit: int = 50) -> pd.DataFrame:
    """Spend per value of ``dimension`` (see :data:`DIMENSIONS`), most expensive first, with share."""
    if dimension in SOURCE_DIMENSIONS:
        sql = f"""
            SELECT {SOURCE_DIMENSIONS[dimension]} AS {dimension}, {_SPEND}
            FROM {f.source()}
            GROUP BY {dimension}"""
    elif dimension == "user" and not f.sessions:  # a session filter: only llm_calls knows the sessions
        sql = f"SELECT UserId AS user, {_SPEND} FROM {_per_user(f, _USER_COLUMNS, _USER_CALL)} GROUP BY user"
    elif dimension in RAW_DIMENSIONS:
        sql = f"""
            SELECT {RAW_DIMENSIONS[dimension]} AS {dimension}, {_RAW_SPEND}
            FROM llm_calls
            WHERE {f.where()}
            GROUP BY {dimension}"""
    else:
        raise ValueError(f"unknown cost dimension {dimension!r}; choose one of {', '.join(DIMENSIONS)}")
    sql += f" ORDER BY cost_usd DESC NULLS LAST, calls DESC, {dimension} LIMIT {{limit:UInt32}}"
    df = frame(client, sql, f.params(limit=limit, **f.whole_hours()))[[dimension, *SPEND_COLUMNS]]
    spend = df["cost_usd"].astype(float)
    total = float(spend.sum())
    df["share"] = spend / total if total else float("nan")
    return df


def spend_per_day(client: Any, f: Filter, by: str = "model") -> pd.DataFrame:
    """Per UTC day and value of ``by`` (a source dimension): spend and unpriced calls."""
    if by not in SOURCE_DIMENSIONS:
        raise ValueError(f"spend per day can split by {', '.join(SOURCE_DIMENSIONS)}, not {by!r}")
    sql = f"""
        SELECT toTimeZone(Bucket, 'UTC') AS day, {SOURCE_DIMENSIONS[by]} AS {by}, {_SPEND}
        FROM {f.source()}
        GROUP BY day, {by}
        ORDER BY day, {by}"""
    return frame(client, sql, f.params(step=DAY))[["day", by, *SPEND_COLUMNS]]


def most_expensive_calls(client: Any, f: Filter, limit: int = 20) -> pd.DataFrame:
    """The priced calls with the highest cost, with enough context to open their trace."""
    sql = f"""
        SELECT Timestamp AS timestamp, TraceId AS trace_id, SpanId AS span_id, ServiceName AS service,
               RequestModel AS model, PromptName AS prompt, PromptVersion AS prompt_version,
               UserId AS user, InputTokens AS input_tokens, OutputTokens AS output_tokens,
               CostUsd AS cost_usd, DurationUs / 1000 AS duration_ms
        FROM llm_calls
        WHERE {f.where()} AND CostUsd IS NOT NULL
        ORDER BY CostUsd DESC
        LIMIT {{limit:UInt32}}"""
    return frame(client, sql, f.params(limit=limit))


def unpriced(client: Any, f: Filter) -> pd.DataFrame:
    """Calls without a cost, per provider, model and reason, so a price override can be added.

    Reasons: ``no price`` (the model is unknown to the pricing table) or ``failed`` (the call
    failed before reporting usage, so there is nothing to price). Read from the per-user rollup's
    counts by reason (``llm_calls`` for the partial hours, or everything with a session filter).
    """
    if not f.sessions:
        sql = f"""
            SELECT Provider AS provider, RequestModel AS model, r.1 AS reason, r.2 AS unpriced_calls
            FROM (SELECT Provider, RequestModel, sum(NoPriceCalls) AS no_price, sum(NoUsageCalls) AS failed
                  FROM {_per_user(f, _NO_COST_COLUMNS, _NO_COST_CALL)} GROUP BY Provider, RequestModel)
            ARRAY JOIN [('no price', no_price), ('failed', failed)] AS r
            WHERE unpriced_calls > 0
            ORDER BY reason DESC, unpriced_calls DESC, model, provider"""
        return frame(client, sql, f.params(**f.whole_hours()))
    sql = f"""
        SELECT Provider AS provider, RequestModel AS model,
               if(CostStatus = 'no_usage', 'failed', 'no price') AS reason,
               count() AS unpriced_calls
        FROM llm_calls
        WHERE {f.where()} AND CostUsd IS NULL
        GROUP BY provider, model, reason
        ORDER BY reason DESC, unpriced_calls DESC, model, provider"""
    return frame(client, sql, f.params())


def _per_user(f: Filter, columns: str, per_call: str) -> str:
    """A sub-query of ``columns`` of the per-user rollup (schema 022) over the window's whole hours, plus
    ``per_call``, the same columns for one call, from ``llm_calls`` for the partial hours at its edges:
    sums over it equal direct SQL on ``llm_calls``. Every filter applies but a session one (not kept)."""
    where = f.dimension_clause() + (" AND UserId IN {users:Array(String)}" if f.users else "")
    return (
        f"(SELECT {columns} FROM llm_users_1h WHERE Bucket >= {{hour_start:{_TIME}}}"
        f" AND Bucket < {{hour_end:{_TIME}}}{where}"
        f" UNION ALL SELECT {per_call} FROM llm_calls WHERE {f.raw_edges()}{where})"
    )

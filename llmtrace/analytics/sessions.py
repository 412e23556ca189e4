"""Sessions and users: who used the app, how much it cost, how it went, and their traces in order.

Ids come from the calls (``session.id`` / ``gen_ai.conversation.id`` and ``user.id``, set by
``llmtrace.trace(user_id=, session_id=)`` or ``llmtrace.attributes``); calls without one are not
listed. Read from ``llm_calls`` (the rollups do not keep these ids), so history reaches back
``ttl_days``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.scores import with_score_means

__all__ = ["KINDS", "ids", "listing", "totals", "traces_of"]

# What can be listed -> (llm_calls column, the other id column counted per row).
KINDS: dict[str, tuple[str, str]] = {"session": ("SessionId", "UserId"), "user": ("UserId", "SessionId")}
_FIGURES = """
    uniqExact(TraceId) AS traces, count() AS calls, toUInt64(sum(IsError)) AS errors,
    if(countIf(CostUsd IS NOT NULL) = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd,
    sum(InputTokens) + sum(OutputTokens) AS tokens, min(Timestamp) AS first_seen, max(Timestamp) AS last_seen"""


def _column(kind: str) -> tuple[str, str]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind]


def totals(client: Any, f: Filter) -> dict[str, Any]:
    """Counts over calls that carry a session or user id: ``sessions``, ``users``, ``traces``, ``calls``,
    ``errors`` and ``cost_usd`` (None when nothing was priced)."""
    sql = f"""
        SELECT uniqExactIf(SessionId, SessionId != '') AS sessions, uniqExactIf(UserId, UserId != '') AS users,
               uniqExact(TraceId) AS traces, count() AS calls, toUInt64(sum(IsError)) AS errors,
               if(countIf(CostUsd IS NOT NULL) = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd
        FROM llm_calls WHERE {f.where()} AND (SessionId != '' OR UserId != '')"""
    row = frame(client, sql, f.params())
    return {k: (None if row.empty else row[k].iloc[0]) for k in ("sessions", "users", "traces", "calls", "errors",
                                                                 "cost_usd")}  # fmt: skip


def listing(client: Any, f: Filter, kind: str = "session", limit: int = 200) -> pd.DataFrame:
    """Sessions (``kind="session"``) or users (``"user"``) active in the window, most recent first.

    Columns: ``session`` or ``user``; ``users`` (a session's users) or ``sessions`` (a user's session
    count); ``traces``, ``calls``, ``errors``, ``cost_usd`` (NULL when nothing was priced), ``tokens``,
    ``first_seen``, ``last_seen``; then one ``score: <name>`` column per numeric score (mean).
    """
    column, other = _column(kind)
    counted = (
        f"arrayStringConcat(arraySort(arrayFilter(x -> x != '', groupUniqArray({other}))), ', ') AS users"
        if kind == "session"
        else f"uniqExactIf({other}, {other} != '') AS sessions"
    )
    sql = f"""
        SELECT {column} AS {kind}, {counted}, {_FIGURES}
        FROM llm_calls
        WHERE {f.where()} AND {column} != ''
        GROUP BY {column}
        ORDER BY last_seen DESC, {kind}
        LIMIT {{limit:UInt32}}"""
    rows = frame(client, sql, f.params(limit=limit))
    return with_score_means(client, f, rows, kind, column)


def traces_of(client: Any, f: Filter, kind: str, value: str, limit: int = 500) -> pd.DataFrame:
    """The traces of one session or user in the window, in the order they happened (oldest first).

    Columns: ``trace_id``, ``start``, ``duration_ms``, ``session``/``user`` (the other id),
    ``calls``, ``errors``, ``cost_usd``, ``tokens``, ``models``, ``prompts``.
    """
    column, other = _column(kind)
    shown = "user" if kind == "session" else "session"
    sql = f"""
        SELECT TraceId AS trace_id, min(Timestamp) AS start,
               (max(toUnixTimestamp64Micro(Timestamp) + DurationUs) - min(toUnixTimestamp64Micro(Timestamp)))
                   / 1000 AS duration_ms,
               arrayStringConcat(arraySort(arrayFilter(x -> x != '', groupUniqArray({other}))), ', ') AS {shown},
               count() AS calls, toUInt64(sum(IsError)) AS errors,
               if(countIf(CostUsd IS NOT NULL) = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd,
               sum(InputTokens) + sum(OutputTokens) AS tokens,
               arrayStringConcat(arraySort(groupUniqArray(RequestModel)), ', ') AS models,
               arrayStringConcat(arraySort(arrayFilter(x -> x != '', groupUniqArray(PromptName))), ', ') AS prompts
        FROM llm_calls
        WHERE {f.where()} AND {column} = {{value:String}}
        GROUP BY TraceId
        ORDER BY start, trace_id
        LIMIT {{limit:UInt32}}"""
    return frame(client, sql, f.params(value=value, limit=limit))


def ids(client: Any, f: Filter, limit: int = 500) -> dict[str, list[str]]:
    """The user and session ids seen in the window (most recently active first), for the sidebar pickers.

    Ignores the filter's own user/session choices, so a chosen id does not hide the others.
    """
    base = Filter(
        start=f.start,
        end=f.end,
        services=f.services,
        environments=f.environments,
        releases=f.releases,
        providers=f.providers,
        models=f.models,
    )
    out: dict[str, list[str]] = {}
    for kind, (column, _) in KINDS.items():
        sql = f"""
            SELECT {column} AS id FROM llm_calls WHERE {base.where()} AND {column} != ''
            GROUP BY {column} ORDER BY max(Timestamp) DESC, id LIMIT {{limit:UInt32}}"""
        found = frame(client, sql, base.params(limit=limit))
        out[f"{kind}s"] = [str(v) for v in found["id"]] if "id" in found else []  # no rows: no columns either
    return out

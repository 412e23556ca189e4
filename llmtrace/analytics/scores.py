"""Scores read back: the scores of one trace, and score means per release / prompt / model.

A score on an LLM call's span counts for that call's group; a score on a trace or on a non-LLM
span (``llmtrace.trace()``'s parent, a tool) counts once for each group the trace's calls fall
in. Numeric and boolean scores give a mean; labels (``StringValue``) give counts per label.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.groups import COLUMNS

__all__ = [
    "attributed_to",
    "label_counts",
    "means_by",
    "per_trace",
    "score_means",
    "trace_scores",
    "with_score_means",
]


def trace_scores(client: Any, trace_id: str) -> pd.DataFrame:
    """Every score of one trace, oldest first: name, value or label, span, source, comment."""
    sql = """
        SELECT Timestamp AS time, Name AS name, Value AS value, StringValue AS label, SpanId AS span_id,
               Source AS source, Comment AS comment
        FROM llm_scores WHERE TraceId = {trace_id:String}
        ORDER BY Timestamp, Name"""
    return frame(client, sql, {"trace_id": trace_id})


def per_trace(client: Any, trace_ids: list[str]) -> pd.DataFrame:
    """One line per trace that has scores: ``trace_id`` and ``scores``, e.g. "relevance 0.75 · label billing"
    (a name given several times shows its mean, labels their distinct values)."""
    sql = """
        SELECT trace_id, arrayStringConcat(groupArray(shown), ' · ') AS scores
        FROM (
            SELECT TraceId AS trace_id, Name,
                   if(countIf(StringValue = '') > 0,
                      concat(Name, ' ', toString(round(avgIf(Value, StringValue = ''), 2))),
                      concat(Name, ' ', arrayStringConcat(arraySort(groupUniqArray(StringValue)), '/'))) AS shown
            FROM llm_scores WHERE TraceId IN {ids:Array(String)}
            GROUP BY TraceId, Name ORDER BY TraceId, Name)
        GROUP BY trace_id"""
    return frame(client, sql, {"ids": [str(t) for t in trace_ids]})


def _attributed(by: str, window: Filter) -> str:
    """Scores joined to the group value(s) of what they score, calls restricted to ``window``."""
    if by not in COLUMNS:
        raise ValueError(f"cannot group scores by {by!r}; choose one of {', '.join(COLUMNS)}.")
    return attributed_to(COLUMNS[by], window)


def attributed_to(expression: str, window: Filter) -> str:
    """A sub-query of (grp, Name, Value, StringValue): each score with the value of ``expression`` (an
    llm_calls expression written by llmtrace code, never user text) for the call it scores, or for
    each call of its trace when it scores the trace or a non-LLM span."""
    return f"""
        WITH calls AS (SELECT TraceId, SpanId, {expression} AS grp FROM llm_calls WHERE {window.where()}),
        scores AS (SELECT TraceId, SpanId, Name, Value, StringValue FROM llm_scores
                   WHERE TraceId IN (SELECT TraceId FROM calls))
        SELECT c.grp AS grp, s.Name AS Name, s.Value AS Value, s.StringValue AS StringValue
        FROM scores AS s INNER JOIN calls AS c ON c.TraceId = s.TraceId AND c.SpanId = s.SpanId
        UNION ALL
        SELECT t.grp, s.Name, s.Value, s.StringValue
        FROM scores AS s INNER JOIN (SELECT DISTINCT TraceId, grp FROM calls) AS t ON t.TraceId = s.TraceId
        WHERE (s.TraceId, s.SpanId) NOT IN (SELECT TraceId, SpanId FROM calls)"""


def means_by(client: Any, window: Filter, expression: str) -> pd.DataFrame:
    """Mean of every numeric/boolean score per value of ``expression`` (see :func:`attributed_to`), wide:
    a ``grp`` column and one ``score: <name>`` column per score name (NaN where a group has none)."""
    sql = f"""
        SELECT grp, Name AS score, avg(Value) AS mean
        FROM ({attributed_to(expression, window)}) WHERE StringValue = ''
        GROUP BY grp, Name"""
    long = frame(client, sql, window.params())
    if long.empty:
        return pd.DataFrame({"grp": pd.Series(dtype=str)})
    wide = long.pivot(index="grp", columns="score", values="mean")
    return wide.rename(columns=lambda name: f"score: {name}").reset_index().rename_axis(columns=None)


def with_score_means(client: Any, window: Filter, rows: pd.DataFrame, key: str, expression: str) -> pd.DataFrame:
    """``rows`` with one ``score: <name>`` column per score name, joined on ``rows[key]`` = ``expression``."""
    means = means_by(client, window, expression)
    if rows.empty or len(means.columns) == 1:
        return rows
    return rows.merge(means.rename(columns={"grp": key}), on=key, how="left")


def score_means(client: Any, window: Filter, by: str = "release") -> pd.DataFrame:
    """Per group and score name: how many numeric/boolean scores, their mean, min and max."""
    sql = f"""
        SELECT grp AS {by}, Name AS score, count() AS scores, avg(Value) AS mean, min(Value) AS min,
               max(Value) AS max
        FROM ({_attributed(by, window)}) WHERE StringValue = ''
        GROUP BY grp, Name ORDER BY Name, grp"""
    return frame(client, sql, window.params())


def label_counts(client: Any, window: Filter, by: str = "release") -> pd.DataFrame:
    """Per group, score name and label: how many times that label was given."""
    sql = f"""
        SELECT grp AS {by}, Name AS score, StringValue AS label, count() AS scores
        FROM ({_attributed(by, window)}) WHERE StringValue != ''
        GROUP BY grp, Name, StringValue ORDER BY Name, grp, label"""
    return frame(client, sql, window.params())

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

__all__ = ["label_counts", "score_means", "trace_scores"]


def trace_scores(client: Any, trace_id: str) -> pd.DataFrame:
    """Every score of one trace, oldest first: name, value or label, span, source, comment."""
    sql = """
        SELECT Timestamp AS time, Name AS name, Value AS value, StringValue AS label, SpanId AS span_id,
               Source AS source, Comment AS comment
        FROM llm_scores WHERE TraceId = {trace_id:String}
        ORDER BY Timestamp, Name"""
    return frame(client, sql, {"trace_id": trace_id})


def _attributed(by: str, window: Filter) -> str:
    """Scores joined to the group value(s) of what they score, calls restricted to ``window``."""
    if by not in COLUMNS:
        raise ValueError(f"cannot group scores by {by!r}; choose one of {', '.join(COLUMNS)}.")
    column = COLUMNS[by]
    return f"""
        WITH calls AS (SELECT TraceId, SpanId, {column} AS grp FROM llm_calls WHERE {window.where()}),
        scores AS (SELECT TraceId, SpanId, Name, Value, StringValue FROM llm_scores
                   WHERE TraceId IN (SELECT TraceId FROM calls))
        SELECT c.grp AS grp, s.Name AS Name, s.Value AS Value, s.StringValue AS StringValue
        FROM scores AS s INNER JOIN calls AS c ON c.TraceId = s.TraceId AND c.SpanId = s.SpanId
        UNION ALL
        SELECT t.grp, s.Name, s.Value, s.StringValue
        FROM scores AS s INNER JOIN (SELECT DISTINCT TraceId, grp FROM calls) AS t ON t.TraceId = s.TraceId
        WHERE (s.TraceId, s.SpanId) NOT IN (SELECT TraceId, SpanId FROM calls)"""


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

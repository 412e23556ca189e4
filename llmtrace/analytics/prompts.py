"""Prompt versions: every distinct (prompt name, system prompt hash, message template hash) seen.

A version exists as soon as its text does: the hashes come from each call
(``llmtrace.prompt.system_hash`` / ``template_hash``), so an edited prompt is a new row even when
nobody bumped ``llmtrace.prompt(..., version=)``; the versions the app did tag are listed beside
it. Read from ``llm_calls`` (the rollups do not keep the hashes), so history reaches back
``ttl_days``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.scores import with_score_means

__all__ = ["VERSION_KEY", "calls_per_version", "prompt_versions"]

# One string per version, the key scores are grouped by (hash alphabets never contain '/').
VERSION_KEY = "concat(PromptName, '/', PromptSystemHash, '/', PromptTemplateHash)"


def prompt_versions(client: Any, f: Filter, limit: int = 200) -> pd.DataFrame:
    """One row per prompt version in the window, newest last-seen first.

    Columns: ``prompt``, ``system_hash``, ``template_hash``, ``tagged`` (versions the app tagged),
    ``first_seen``, ``last_seen``, ``calls``, ``errors``, ``error_rate``, ``cost_usd`` (NULL when no
    call was priced), ``p50_ms``, ``p95_ms``, ``models``, ``services``, ``key``, then one
    ``score: <name>`` column per numeric score given to its calls or their traces. Calls with
    neither a system prompt nor messages (e.g. some embeddings) have no version and are left out.
    """
    sql = f"""
        SELECT {VERSION_KEY} AS key,
               PromptName AS prompt, PromptSystemHash AS system_hash, PromptTemplateHash AS template_hash,
               arrayStringConcat(arraySort(arrayFilter(v -> v != '', groupUniqArray(PromptVersion))), ', ')
                   AS tagged,
               min(Timestamp) AS first_seen, max(Timestamp) AS last_seen,
               count() AS calls, toUInt64(sum(IsError)) AS errors, errors / calls AS error_rate,
               if(countIf(CostUsd IS NOT NULL) = 0, NULL, sum(ifNull(CostUsd, 0))) AS cost_usd,
               quantile(0.5)(DurationUs) / 1000 AS p50_ms, quantile(0.95)(DurationUs) / 1000 AS p95_ms,
               arrayStringConcat(arraySort(groupUniqArray(RequestModel)), ', ') AS models,
               arrayStringConcat(arraySort(groupUniqArray(ServiceName)), ', ') AS services
        FROM llm_calls
        WHERE {f.where()} AND (PromptSystemHash != '' OR PromptTemplateHash != '')
        GROUP BY PromptName, PromptSystemHash, PromptTemplateHash
        ORDER BY last_seen DESC, key
        LIMIT {{limit:UInt32}}"""
    rows = frame(client, sql, f.params(limit=limit))
    return with_score_means(client, f, rows, "key", VERSION_KEY)


def calls_per_version(client: Any, f: Filter, keys: list[str]) -> pd.DataFrame:
    """Calls per time bucket (``f``'s width) of each version in ``keys`` (see :data:`VERSION_KEY`):
    ``bucket``, ``key``, ``calls`` — when each version was live, e.g. a switch from one to the next."""
    sql = f"""
        SELECT toStartOfInterval(Timestamp, toIntervalSecond({{step:UInt32}})) AS bucket, {VERSION_KEY} AS key,
               count() AS calls
        FROM llm_calls
        WHERE {f.where()} AND {VERSION_KEY} IN {{keys:Array(String)}}
        GROUP BY bucket, key ORDER BY bucket, key"""
    return frame(client, sql, f.params(step=f.bucket_seconds(), keys=[str(k) for k in keys]))

"""The read-only SQL console: example queries and a runner the engine holds to ``readonly=1``.

Read-only is enforced by ClickHouse itself, not by inspecting the text: over HTTP the
``readonly=1`` setting travels with the query (and ``llmtrace server`` also checks the
statement with ClickHouse's parser); on a ``chdb://`` store the statement runs on a fresh
engine handle set to ``readonly=1`` after the same parser check.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmtrace.analytics import frame

MAX_ROWS = 10_000

EXAMPLES: dict[str, str] = {
    "Spend and calls per model, last 24 hours": """\
SELECT RequestModel, count() AS calls, round(sum(CostUsd), 4) AS cost_usd,
       countIf(CostStatus = 'unpriced') AS unpriced_calls
FROM llm_calls
WHERE Timestamp >= now() - INTERVAL 1 DAY
GROUP BY RequestModel
ORDER BY cost_usd DESC""",
    "Latency percentiles per model and hour (rollup)": """\
SELECT Bucket, RequestModel, sum(Calls) AS calls,
       arrayMap(x -> round(x / 1000), quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(DurationQ)) AS p50_p90_p95_p99_ms
FROM llm_calls_1h
WHERE Bucket >= now() - INTERVAL 7 DAY
GROUP BY Bucket, RequestModel
ORDER BY Bucket DESC, RequestModel""",
    "Error types by service": """\
SELECT ServiceName, ErrorType, count() AS errors
FROM llm_calls
WHERE IsError AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY ServiceName, ErrorType
ORDER BY errors DESC""",
    "Most expensive users": """\
SELECT UserId, count() AS calls, round(sum(CostUsd), 4) AS cost_usd
FROM llm_calls
WHERE UserId != '' AND Timestamp >= now() - INTERVAL 7 DAY
GROUP BY UserId
ORDER BY cost_usd DESC
LIMIT 20""",
    "Prompts and completions containing a word": """\
SELECT Timestamp, ServiceName, SpanName,
       SpanAttributes['gen_ai.input.messages'] AS input,
       SpanAttributes['gen_ai.output.messages'] AS output
FROM otel_traces
WHERE Timestamp >= now() - INTERVAL 1 DAY
  AND positionCaseInsensitive(SpanAttributes['gen_ai.input.messages'], 'refund') > 0
ORDER BY Timestamp DESC
LIMIT 50""",
    "Tables and their sizes": """\
SELECT name, engine, total_rows, formatReadableSize(total_bytes) AS size
FROM system.tables
WHERE database = currentDatabase()
ORDER BY name""",
}


def run(client: Any, sql: str, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Run ``sql`` with ``readonly=1``; the result is cut at ``max_rows`` rows.

    Raises whatever the client raises for a refused or failing statement (the server's
    message says why, e.g. "Cannot execute query in readonly mode").
    """
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise ValueError("the query is empty: type a SELECT, or pick an example")
    read_only_frame = getattr(client, "read_only_frame", None)
    if read_only_frame is not None:  # chdb:// : no server between the console and the engine
        return read_only_frame(text, max_rows).head(max_rows)
    # readonly last: once applied, ClickHouse refuses to change any further setting.
    settings = {"max_result_rows": max_rows, "result_overflow_mode": "break", "readonly": 1}
    # The server stops at the first block past the limit; trim to the exact count.
    return frame(client, text, settings=settings).head(max_rows)

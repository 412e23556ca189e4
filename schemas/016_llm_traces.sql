-- One row per trace (per hour it started in) for the trace list, so listing the newest traces of a
-- window reads a few columns of this table instead of grouping every llm_calls row of the window.
-- Two views fill it: llm_traces_calls_mv with each insert block's LLM calls per trace (counts,
-- tokens, cost, the services/models/... the filters pick by), llm_traces_roots_mv with each root
-- span (the trace's name and its full time range). A trace whose spans arrive in several blocks
-- has several rows until merges fold those of the same (Hour, TraceId); readers always aggregate
-- by TraceId (llmtrace.analytics.traces). Cost is the calls' cost at insert: a later re-pricing
-- (014) corrects llm_calls and the rollups, not these rows.
CREATE TABLE IF NOT EXISTS llm_traces {on_cluster}
(
    Hour DateTime CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime64(6)) CODEC(Delta, ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime64(6)) CODEC(Delta, ZSTD(1)),
    RootName SimpleAggregateFunction(max, String) CODEC(ZSTD(1)),
    Services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    Environments SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    Releases SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    Providers SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    Models SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    UserId SimpleAggregateFunction(max, String) CODEC(ZSTD(1)),
    SessionId SimpleAggregateFunction(max, String) CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    Errors SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    UnpricedCalls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    Tokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CostUsd SimpleAggregateFunction(sum, Float64) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_start Start TYPE minmax GRANULARITY 1
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toDate(Hour)
ORDER BY (Hour, TraceId)
TTL Hour + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Existing calls and root spans, once, before the views exist (so nothing is counted twice): a
-- store upgraded with history lists its old traces too. Skipped when the table already has rows.
INSERT INTO llm_traces (Hour, TraceId, Start, End, Services, Environments, Releases, Providers, Models, UserId,
    SessionId, Calls, Errors, UnpricedCalls, Tokens, CostUsd)
SELECT
    toStartOfHour(min(c.Timestamp)), c.TraceId, min(c.Timestamp),
    fromUnixTimestamp64Micro(max(toUnixTimestamp64Micro(c.Timestamp) + toInt64(c.DurationUs))),
    groupUniqArray(toString(c.ServiceName)), groupUniqArray(toString(c.Environment)),
    groupUniqArray(toString(c.Release)), groupUniqArray(toString(c.Provider)),
    groupUniqArray(toString(c.RequestModel)), max(c.UserId), max(c.SessionId), count(),
    toUInt64(sum(c.IsError)), toUInt64(countIf(c.CostStatus = 'unpriced')),
    sum(c.InputTokens + c.OutputTokens), sum(ifNull(c.CostUsd, 0))
FROM llm_calls AS c
WHERE c.TraceId != '' AND (SELECT count() FROM llm_traces) = 0
GROUP BY c.TraceId;

INSERT INTO llm_traces (Hour, TraceId, Start, End, RootName)
SELECT
    toStartOfHour(t.Timestamp), t.TraceId, t.Timestamp,
    fromUnixTimestamp64Micro(toUnixTimestamp64Micro(t.Timestamp) + toInt64(intDiv(t.Duration, 1000))),
    toString(t.SpanName)
FROM otel_traces AS t
WHERE t.ParentSpanId = '' AND t.TraceId != ''
    AND (SELECT count() FROM llm_traces WHERE RootName != '') = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_traces_calls_mv {on_cluster}
TO llm_traces
AS SELECT
    toStartOfHour(min(c.Timestamp)) AS Hour,
    c.TraceId AS TraceId,
    min(c.Timestamp) AS Start,
    fromUnixTimestamp64Micro(max(toUnixTimestamp64Micro(c.Timestamp) + toInt64(c.DurationUs))) AS End,
    groupUniqArray(toString(c.ServiceName)) AS Services,
    groupUniqArray(toString(c.Environment)) AS Environments,
    groupUniqArray(toString(c.Release)) AS Releases,
    groupUniqArray(toString(c.Provider)) AS Providers,
    groupUniqArray(toString(c.RequestModel)) AS Models,
    max(c.UserId) AS UserId,
    max(c.SessionId) AS SessionId,
    toUInt64(count()) AS Calls,
    toUInt64(sum(c.IsError)) AS Errors,
    toUInt64(countIf(c.CostStatus = 'unpriced')) AS UnpricedCalls,
    sum(c.InputTokens + c.OutputTokens) AS Tokens,
    sum(ifNull(c.CostUsd, 0)) AS CostUsd
FROM llm_calls AS c
WHERE c.TraceId != ''
GROUP BY c.TraceId;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_traces_roots_mv {on_cluster}
TO llm_traces
AS SELECT
    toStartOfHour(t.Timestamp) AS Hour,
    t.TraceId AS TraceId,
    toDateTime64(t.Timestamp, 6) AS Start,
    fromUnixTimestamp64Micro(toUnixTimestamp64Micro(t.Timestamp) + toInt64(intDiv(t.Duration, 1000))) AS End,
    toString(t.SpanName) AS RootName
FROM otel_traces AS t
WHERE t.ParentSpanId = '' AND t.TraceId != '';

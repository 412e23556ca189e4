-- Per 5 minutes, filter keys and storm key (the session, else the trace: the retry-storm unit of
-- llmtrace.analytics.anomalies_calls), the calls a retry storm is judged on: failures, successes, the first
-- and last call, the last failure and the last success, and the last call's trace (an example). So the
-- storms of a window are read from a row per key and 5 minutes with calls instead of every call's
-- Timestamp, SessionId and TraceId: at 10M calls over 7 d (200 sessions a day), 1.16M rows, 2.66 -> ~0.3 s
-- of server CPU. Costs do not enter it, so re-pricing leaves it alone. LastError / LastOk are 1970 where
-- a row has no failure / success.
CREATE TABLE IF NOT EXISTS llm_storm_5m {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    RequestModel LowCardinality(String),
    StormKey UInt64,
    Errors SimpleAggregateFunction(sum, UInt64),
    Ok SimpleAggregateFunction(sum, UInt64),
    First SimpleAggregateFunction(min, DateTime64(9)),
    Last SimpleAggregateFunction(max, DateTime64(9)),
    LastError SimpleAggregateFunction(max, DateTime64(9)),
    LastOk SimpleAggregateFunction(max, DateTime64(9)),
    LastTrace AggregateFunction(argMax, String, DateTime64(9))
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (Bucket, ServiceName, Environment, Provider, RequestModel, Release, StormKey)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- Existing calls, once, before the view exists (so nothing is counted twice). Skipped when the table
-- already has rows.
INSERT INTO llm_storm_5m (Bucket, ServiceName, Environment, Release, Provider, RequestModel, StormKey, Errors, Ok,
    First, Last, LastError, LastOk, LastTrace)
SELECT toStartOfFiveMinutes(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    if(c.SessionId != '', cityHash64('s', c.SessionId), cityHash64('t', c.TraceId)) AS k,
    countIf(c.IsError = 1), countIf(c.IsError = 0), min(c.Timestamp), max(c.Timestamp),
    maxIf(c.Timestamp, c.IsError = 1), maxIf(c.Timestamp, c.IsError = 0), argMaxState(c.TraceId, c.Timestamp)
FROM llm_calls AS c
WHERE (SELECT count() FROM llm_storm_5m) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel, k;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_storm_5m_mv {on_cluster}
TO llm_storm_5m
AS SELECT
    toStartOfFiveMinutes(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    if(c.SessionId != '', cityHash64('s', c.SessionId), cityHash64('t', c.TraceId)) AS StormKey,
    toUInt64(countIf(c.IsError = 1)) AS Errors,
    toUInt64(countIf(c.IsError = 0)) AS Ok,
    min(c.Timestamp) AS First,
    max(c.Timestamp) AS Last,
    maxIf(c.Timestamp, c.IsError = 1) AS LastError,
    maxIf(c.Timestamp, c.IsError = 0) AS LastOk,
    argMaxState(c.TraceId, c.Timestamp) AS LastTrace
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel, StormKey;

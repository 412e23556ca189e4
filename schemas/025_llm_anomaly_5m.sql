-- Per 5 minutes and filter keys, what anomaly detection counts (llmtrace.analytics.anomalies_sql), so
-- `llmtrace anomalies` and the Anomalies page read a row per series and 5 minutes instead of every call
-- of the window and its history: at 10M calls the counts cost 2.2 / 4.8 s of server CPU from llm_calls
-- at 24 h / 7 d, 0.2 / 0.6 s from here. Calls, failed calls, and among the successful ones those cut at
-- max tokens and those with no output; and histograms of the successful calls' latency, time to first
-- token (streams), output tokens and cost (priced calls): (bin, calls) pairs with
-- bin = floor(32 * log2(value)), 32 bins an octave (2.2% wide), -32767 for a value of 0. A series'
-- hourly p90 and p10 are read from them as bins, and the calls past a threshold as the bins above it
-- (half of the threshold's own bin), so thresholds are exact to a bin. Counts are UInt64 so that
-- re-pricing's correction rows (llmtrace.store.prices) can take a call out of its old cost bin by
-- adding 2^64 - 1: sums wrap back to the right count.
CREATE TABLE IF NOT EXISTS llm_anomaly_5m {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    RequestModel LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Truncated SimpleAggregateFunction(sum, UInt64),
    Empty SimpleAggregateFunction(sum, UInt64),
    Latency SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))),
    Ttft SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))),
    Tokens SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))),
    Cost SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))),
    PriceVersion SimpleAggregateFunction(max, UInt32) DEFAULT 0
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (ServiceName, Environment, Provider, RequestModel, Release, Bucket)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- Existing calls, once, before the view exists (so nothing is counted twice). Skipped when the table
-- already has rows. Each row carries the newest PriceVersion among its calls (see 022).
INSERT INTO llm_anomaly_5m (Bucket, ServiceName, Environment, Release, Provider, RequestModel, Calls, Errors,
    Truncated, Empty, Latency, Ttft, Tokens, Cost, PriceVersion)
SELECT toStartOfFiveMinutes(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    count(), sum(c.IsError),
    countIf(c.IsError = 0 AND lower(c.FinishReason) IN ('length', 'max_tokens')),
    countIf(c.IsError = 0 AND c.OutputTokens = 0),
    sumMapIf([if(c.DurationUs > 0, toInt16(floor(32 * log2(c.DurationUs))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0),
    sumMapIf([if(c.TtftUs > 0, toInt16(floor(32 * log2(assumeNotNull(c.TtftUs)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.TtftUs IS NOT NULL),
    sumMapIf([if(c.OutputTokens > 0, toInt16(floor(32 * log2(c.OutputTokens))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0),
    sumMapIf([if(c.CostUsd > 0, toInt16(floor(32 * log2(assumeNotNull(c.CostUsd)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.CostUsd IS NOT NULL),
    max(c.PriceVersion)
FROM llm_calls AS c
WHERE (SELECT count() FROM llm_anomaly_5m) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_anomaly_5m_mv {on_cluster}
TO llm_anomaly_5m
AS SELECT
    toStartOfFiveMinutes(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    toUInt64(count()) AS Calls,
    toUInt64(sum(c.IsError)) AS Errors,
    toUInt64(countIf(c.IsError = 0 AND lower(c.FinishReason) IN ('length', 'max_tokens'))) AS Truncated,
    toUInt64(countIf(c.IsError = 0 AND c.OutputTokens = 0)) AS Empty,
    sumMapIf([if(c.DurationUs > 0, toInt16(floor(32 * log2(c.DurationUs))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0) AS Latency,
    sumMapIf([if(c.TtftUs > 0, toInt16(floor(32 * log2(assumeNotNull(c.TtftUs)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.TtftUs IS NOT NULL) AS Ttft,
    sumMapIf([if(c.OutputTokens > 0, toInt16(floor(32 * log2(c.OutputTokens))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0) AS Tokens,
    sumMapIf([if(c.CostUsd > 0, toInt16(floor(32 * log2(assumeNotNull(c.CostUsd)))), toInt16(-32767))], [toUInt64(1)],
             c.IsError = 0 AND c.CostUsd IS NOT NULL) AS Cost
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel;

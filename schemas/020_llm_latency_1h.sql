-- Per-hour latency histogram of llm_calls, so the Latency page's distribution over days reads a few
-- thousand rows instead of every call: calls per (hour, filter keys, metric, log-spaced bin). Bin is
-- floor(log10(ms) * 10) (ten bins per decade; values under 1 ms in bin 0's ms), exactly the bin the
-- page computes from raw rows for the window's partial hours (llmtrace.analytics.latency), so the
-- two add up to the same counts. Metric: 'duration' (every call) or 'ttft' (calls with a first token).
CREATE TABLE IF NOT EXISTS llm_latency_1h {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    RequestModel LowCardinality(String),
    Metric LowCardinality(String),
    Bin Int16,
    Calls SimpleAggregateFunction(sum, UInt64)
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (ServiceName, Environment, Provider, RequestModel, Release, Metric, Bucket, Bin)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- Existing calls, once, before the view exists (so nothing is counted twice). Skipped when the
-- table already has rows.
INSERT INTO llm_latency_1h (Bucket, ServiceName, Environment, Release, Provider, RequestModel, Metric, Bin, Calls)
SELECT toStartOfHour(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    m.1 AS metric, toInt16(floor(log10(greatest(assumeNotNull(m.2), 1) / 1000) * 10)) AS bin, count()
FROM llm_calls AS c
ARRAY JOIN [('duration', toNullable(c.DurationUs)), ('ttft', c.TtftUs)] AS m
WHERE m.2 IS NOT NULL AND (SELECT count() FROM llm_latency_1h) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel, metric, bin;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_latency_1h_mv {on_cluster}
TO llm_latency_1h
AS SELECT
    toStartOfHour(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    m.1 AS Metric,
    toInt16(floor(log10(greatest(assumeNotNull(m.2), 1) / 1000) * 10)) AS Bin,
    toUInt64(count()) AS Calls
FROM llm_calls AS c
ARRAY JOIN [('duration', toNullable(c.DurationUs)), ('ttft', c.TtftUs)] AS m
WHERE m.2 IS NOT NULL
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel, Metric, Bin;

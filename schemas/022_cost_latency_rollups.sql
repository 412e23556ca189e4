-- Two hourly rollups for the dashboard pages at millions of calls (filled by views, backfilled once here).
--
-- llm_users_1h: per-hour spend per user, so the Cost page's "spend by user" reads a row per (hour, user, filter keys)
-- instead of grouping every call of the window by UserId (llmtrace.analytics.cost; the partial hours
-- at the window's edges come from llm_calls, so the page's figures equal direct SQL). The keys are the
-- sidebar's filter dimensions, so every filter but a session one is answered here. The calls without a
-- cost are counted by the Cost page's two reasons (NoUsageCalls: CostStatus 'no_usage', the call failed
-- before reporting usage; NoPriceCalls: any other), so its unpriced table reads this too. Re-pricing
-- (llmtrace.store.prices) adds one correction row per (hour, keys, user) of the calls it re-priced,
-- carrying its PriceVersion like the other rollups' correction rows (017).
CREATE TABLE IF NOT EXISTS llm_users_1h {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    RequestModel LowCardinality(String),
    UserId String CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CostUsd SimpleAggregateFunction(sum, Float64),
    UnpricedCalls SimpleAggregateFunction(sum, UInt64),
    PricedCalls SimpleAggregateFunction(sum, UInt64),
    NoPriceCalls SimpleAggregateFunction(sum, UInt64),
    NoUsageCalls SimpleAggregateFunction(sum, UInt64),
    PriceVersion SimpleAggregateFunction(max, UInt32) DEFAULT 0,
    INDEX idx_user_id UserId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (ServiceName, Environment, Provider, RequestModel, Release, Bucket, UserId)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- Existing calls, once, before the view exists (so nothing is counted twice). Skipped when the table
-- already has rows. Each row carries the newest PriceVersion among its calls: their cost is already
-- the re-priced one, so re-pricing's recovery must not add that version's correction again.
INSERT INTO llm_users_1h (Bucket, ServiceName, Environment, Release, Provider, RequestModel, UserId, Calls,
    InputTokens, OutputTokens, CostUsd, UnpricedCalls, PricedCalls, NoPriceCalls, NoUsageCalls, PriceVersion)
SELECT toStartOfHour(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    c.UserId, count(), sum(c.InputTokens), sum(c.OutputTokens), sum(ifNull(c.CostUsd, 0)),
    countIf(c.CostStatus = 'unpriced'), countIf(c.CostUsd IS NOT NULL),
    countIf(c.CostUsd IS NULL AND c.CostStatus != 'no_usage'), countIf(c.CostUsd IS NULL AND c.CostStatus = 'no_usage'),
    max(c.PriceVersion)
FROM llm_calls AS c
WHERE (SELECT count() FROM llm_users_1h) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel, c.UserId;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_users_1h_mv {on_cluster}
TO llm_users_1h
AS SELECT
    toStartOfHour(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    c.UserId AS UserId,
    toUInt64(count()) AS Calls,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(ifNull(c.CostUsd, 0)) AS CostUsd,
    toUInt64(countIf(c.CostStatus = 'unpriced')) AS UnpricedCalls,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS PricedCalls,
    toUInt64(countIf(c.CostUsd IS NULL AND c.CostStatus != 'no_usage')) AS NoPriceCalls,
    toUInt64(countIf(c.CostUsd IS NULL AND c.CostStatus = 'no_usage')) AS NoUsageCalls
FROM llm_calls AS c
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel, UserId;

-- Per-hour output speed (tokens per second after the first token) per filter keys, so the Latency page's
-- tokens/s percentiles merge a t-digest state per hour and keys instead of reading every call's speed:
-- calls with output, and their speeds' state. The partial hours at the window's edges come from
-- llm_calls (llmtrace.analytics.latency); a user or session filter reads llm_calls only.
CREATE TABLE IF NOT EXISTS llm_speed_1h {on_cluster}
(
    Bucket DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Release LowCardinality(String),
    Provider LowCardinality(String),
    RequestModel LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    SpeedQ AggregateFunction(quantilesTDigest(0.5, 0.95), Float64)
)
ENGINE = {replicated}AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (ServiceName, Environment, Provider, RequestModel, Release, Bucket)
TTL Bucket + toIntervalDay({rollup_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- Existing calls, once, before the view exists. Skipped when the table already has rows.
INSERT INTO llm_speed_1h (Bucket, ServiceName, Environment, Release, Provider, RequestModel, Calls, SpeedQ)
SELECT toStartOfHour(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    count(), quantilesTDigestState(0.5, 0.95)(c.OutputTokensPerSecond)
FROM llm_calls AS c
WHERE c.OutputTokensPerSecond > 0 AND (SELECT count() FROM llm_speed_1h) = 0
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_speed_1h_mv {on_cluster}
TO llm_speed_1h
AS SELECT
    toStartOfHour(c.Timestamp) AS Bucket,
    c.ServiceName AS ServiceName,
    c.Environment AS Environment,
    c.Release AS Release,
    c.Provider AS Provider,
    c.RequestModel AS RequestModel,
    toUInt64(count()) AS Calls,
    quantilesTDigestState(0.5, 0.95)(c.OutputTokensPerSecond) AS SpeedQ
FROM llm_calls AS c
WHERE c.OutputTokensPerSecond > 0
GROUP BY Bucket, ServiceName, Environment, Release, Provider, RequestModel;

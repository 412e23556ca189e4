-- Prices per million tokens in USD, loaded by `llmtrace migrate` from genai-prices
-- (Source 'genai-prices') and from the user's --prices-file (Source 'override'). Readers take,
-- per Model, an override before genai-prices and then the newest UpdatedAt (see
-- llm_calls_priced). NULL cache prices fall back to the input price.
CREATE TABLE IF NOT EXISTS model_prices {on_cluster}
(
    Provider LowCardinality(String),
    Model String,
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Nullable(Float64),
    CacheWritePerMTok Nullable(Float64),
    Source LowCardinality(String),
    UpdatedAt DateTime64(3)
)
ENGINE = {replicated}ReplacingMergeTree(UpdatedAt)
ORDER BY (Model, Provider, Source);

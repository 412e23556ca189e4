-- llm_calls with cost filled in at query time for rows that arrived without one (a model
-- unknown to the price table at call time, or a peer instrumentation that records no cost),
-- from model_prices: first by (Provider, RequestModel), then by RequestModel alone (first-party
-- providers preferred over resellers), then by ResponseModel alone. Overrides beat genai-prices.
-- Rows priced at the call keep their cost. InputTokens include cache reads and writes (OTel
-- GenAI convention), so those are priced apart. CostFromTable = 1 marks a cost computed here.
CREATE VIEW IF NOT EXISTS llm_calls_priced {on_cluster}
AS WITH
by_provider AS (
    SELECT
        Provider,
        Model,
        argMax(InputPerMTok, (Source = 'override', UpdatedAt)) AS InPrice,
        argMax(OutputPerMTok, (Source = 'override', UpdatedAt)) AS OutPrice,
        argMax(ifNull(CacheReadPerMTok, InputPerMTok), (Source = 'override', UpdatedAt)) AS CacheReadPrice,
        argMax(ifNull(CacheWritePerMTok, InputPerMTok), (Source = 'override', UpdatedAt)) AS CacheWritePrice
    FROM model_prices
    GROUP BY Provider, Model
),
by_model AS (
    SELECT
        Model,
        argMax((InPrice, OutPrice, CacheReadPrice, CacheWritePrice), Provider IN (
            '', 'openai', 'anthropic', 'gcp.gemini', 'mistral_ai', 'deepseek', 'x_ai', 'cohere', 'groq',
            'perplexity', 'moonshotai', 'zai'
        )) AS Price
    FROM by_provider
    GROUP BY Model
),
multiIf(
    p.Model != '', (p.InPrice, p.OutPrice, p.CacheReadPrice, p.CacheWritePrice),
    m.Model != '', m.Price,
    r.Model != '', r.Price,
    (nan, nan, nan, nan)
) AS _Price
SELECT
    c.* EXCEPT (CostUsd, CostStatus),
    c.CostUsd IS NULL AND NOT isNaN(_Price.1) AS CostFromTable,
    if(
        CostFromTable,
        (
            greatest(toInt64(c.InputTokens) - toInt64(c.CacheReadTokens) - toInt64(c.CacheWriteTokens), 0)
                * _Price.1
            + c.OutputTokens * _Price.2
            + c.CacheReadTokens * _Price.3
            + c.CacheWriteTokens * _Price.4
        ) / 1e6,
        c.CostUsd
    ) AS CostUsd,
    if(CostFromTable, 'priced', c.CostStatus) AS CostStatus
FROM llm_calls AS c
LEFT JOIN by_provider AS p ON p.Provider = c.Provider AND p.Model = c.RequestModel
LEFT JOIN by_model AS m ON m.Model = c.RequestModel
LEFT JOIN by_model AS r ON r.Model = c.ResponseModel;

-- llm_calls_priced (010) priced calls at query time from model_prices with a provider-name map of
-- its own, disagreeing with the price computed at the call, and nothing read it. One engine now
-- prices calls (llmtrace.pricing): at the call, and again for stored calls when an override
-- arrives (014). model_prices (009) keeps the overrides, so a restarted server re-applies them.
DROP VIEW IF EXISTS llm_calls_priced {on_cluster};

-- The Traces page's text search (llmtrace.analytics.traces) reads only the three content keys of a span
-- (input messages, output messages, system instructions), yet in otel_traces they sit in the
-- ~30-attribute SpanAttributes map, so a search read every span's whole map: 7.8 s of server CPU for
-- a cold search of a week at 10M calls. This table holds just those values (the non-empty ones, of
-- spans that have any) with an index of their ASCII-lower-cased 3-grams: a search asks the index for
-- the rows holding every usable 3-gram of its text (traces.search_grams) and runs the exact
-- case-insensitive substring test on those rows only. The index is on an expression (arrayMap(lower)),
-- not on the column with a preprocessor: a part or query that does not use the index then evaluates
-- the same expression on the rows (with a preprocessor, hasAllTokens without the index tokenised the
-- raw upper-case text and missed rows). At 10M spans of the benchmark's short content (load ~3 on 2
-- cores): a week's search of a word found nowhere 7.8 -> 0.2 s CPU; 53 bytes a span on disk (20 of
-- content, 33 of index; otel_traces 69); the backfill below 69 s CPU, 54 s wall.
CREATE TABLE IF NOT EXISTS otel_traces_content {on_cluster}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    Content Array(String) CODEC(ZSTD(1)),
    INDEX idx_content arrayMap(v -> lower(v), Content) TYPE text(tokenizer = ngrams(3))
)
ENGINE = {replicated}MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY Timestamp
TTL toDateTime(Timestamp) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Existing spans, once, before the view exists (so nothing is stored twice). Skipped when the table
-- already has rows.
INSERT INTO otel_traces_content (Timestamp, TraceId, Content)
SELECT t.Timestamp, t.TraceId,
    arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'], t.SpanAttributes['gen_ai.output.messages'],
                               t.SpanAttributes['gen_ai.system_instructions']]) AS content
FROM otel_traces AS t
WHERE notEmpty(content) AND (SELECT count() FROM otel_traces_content) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_content_mv {on_cluster}
TO otel_traces_content
AS SELECT
    t.Timestamp AS Timestamp,
    t.TraceId AS TraceId,
    arrayFilter(v -> v != '', [t.SpanAttributes['gen_ai.input.messages'], t.SpanAttributes['gen_ai.output.messages'],
                               t.SpanAttributes['gen_ai.system_instructions']]) AS Content
FROM otel_traces AS t
WHERE notEmpty(Content);

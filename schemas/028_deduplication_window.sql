-- A deduplication window on otel_traces and on every table its views feed, so that an INSERT sent
-- again with the same insert_deduplication_token (the direct exporter retrying a block whose reply
-- was lost, llmtrace server replaying its log) is stored once everywhere. On a plain MergeTree the
-- window defaults to 0 and the token is ignored. Each table needs its own: measured on ClickHouse
-- 26.9 (chDB), a view's target without a window gets a retried block's rows again even when
-- otel_traces skips it. llmtrace server's engine already gives every table a window of 100.
--
-- What it changes for other writers (ClickHouse's insert_deduplicate is on by default): a block
-- identical to one of the last 1000 of a table is skipped. Into otel_traces that is the same spans
-- again (an OTel Collector retrying a batch): a duplicate. The views' targets are written by the
-- views, whose blocks are keyed by the source block (from 24.7; llmtrace needs 26.2), so equal
-- rollup blocks of different inserts are both kept; llmtrace's own direct inserts (re-pricing's
-- correction rows) carry their run's PriceVersion, so no two are equal. A cluster's replicated
-- tables deduplicate by default (replicated_deduplication_window): there these statements are
-- dropped (llmtrace/store/migrations.py).
ALTER TABLE otel_traces {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE otel_traces_trace_id_ts {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE otel_traces_content {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_calls {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_calls_1m {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_calls_1h {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_latency_1h {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_users_1h {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_speed_1h {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_anomaly_5m {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_storm_5m {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_traces {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE llm_scores {on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;

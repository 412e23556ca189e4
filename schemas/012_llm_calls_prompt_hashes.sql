-- Automatic prompt versions: a stable hash of each call's system instructions and of its message
-- template (declared variables masked), from llmtrace.prompt.system_hash / .template_hash.
-- Filled by the view of 013; rows written before it read ''.
ALTER TABLE llm_calls {on_cluster}
    ADD COLUMN IF NOT EXISTS PromptSystemHash LowCardinality(String) CODEC(ZSTD(1)) AFTER PromptVersion,
    ADD COLUMN IF NOT EXISTS PromptTemplateHash String CODEC(ZSTD(1)) AFTER PromptSystemHash;

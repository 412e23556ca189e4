-- The Traces text search's 3-gram index (024) is rebuilt on a folded form of the content, in which the
-- four non-ASCII letters that have an ASCII case partner (Kelvin sign, long s, dotted and dotless i)
-- are written as that letter. positionCaseInsensitiveUTF8, the exact test, compares code point by
-- code point: a content character matches a text character only when both lower-case alike, which for
-- an ASCII letter means the letter in either case or one of those four (measured on chDB 26.9 over
-- every code point: only the Kelvin sign matched, k; the other three are folded too, so the index
-- stays a superset whichever case rule an engine applies). With 024's index (lower() alone) a text
-- had to break its runs at k, s and i, so "kiss", "ask" or "this is" had no usable 3-gram and read all
-- content of the window; now only non-ASCII letters that have case partners (é, ß, Σ...) break runs,
-- while CJK, emoji and other caseless characters join them (the tokenizer counts code points, not
-- bytes). traces.search_grams takes the grams; the query repeats this expression verbatim (the index
-- is used only for the same expression).
-- The new index is added and materialized (a mutation, in the background: until a part has it, a
-- search evaluates the expression on that part's rows, so results stay exact, only slower), then the
-- old one dropped. Measured on the 10M-span benchmark store: see README "Dashboard pages at 10M calls".
ALTER TABLE otel_traces_content {on_cluster}
ADD INDEX IF NOT EXISTS idx_content_folded arrayMap(v -> translateUTF8(lower(v), 'Kſİı', 'ksii'), Content)
TYPE text(tokenizer = ngrams(3));

ALTER TABLE otel_traces_content {on_cluster} MATERIALIZE INDEX idx_content_folded;

ALTER TABLE otel_traces_content {on_cluster} DROP INDEX IF EXISTS idx_content;

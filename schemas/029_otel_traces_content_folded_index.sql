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
-- The expression is one String per span, the values joined by line feeds with one before and after:
-- a value of one or two characters then still has 3-grams holding it, so a text of one or two
-- characters (or one whose runs are that short: Cyrillic, Greek) can be looked up in the index's
-- dictionary (traces._dictionary_tokens: the 3-grams containing it, then hasAnyTokens). Not an
-- arrayMap over the values as in 024: on chDB 26.9 a query through a text index on a lambda fails
-- ("First argument for function arrayMap must be a function") while some parts have the index and
-- others not, as during the MATERIALIZE below; with a String expression they are read either way.
-- replaceAll rather than translateUTF8: the latter cost 3 ns a content byte more at INSERT.
-- The new index is added and materialized (a mutation; where a part lacks it, the search evaluates the
-- expression on its rows with the index's tokenizer, so results stay exact, only slower), then the
-- old one dropped. Measured on the 10M-span benchmark store: see README "Dashboard pages at 10M calls".
ALTER TABLE otel_traces_content {on_cluster}
ADD INDEX IF NOT EXISTS idx_content_folded replaceAll(replaceAll(replaceAll(replaceAll(lower(concat('\n', arrayStringConcat(Content, '\n'), '\n')), 'K', 'k'), 'ſ', 's'), 'İ', 'i'), 'ı', 'i')
TYPE text(tokenizer = ngrams(3));

ALTER TABLE otel_traces_content {on_cluster} MATERIALIZE INDEX idx_content_folded;

ALTER TABLE otel_traces_content {on_cluster} DROP INDEX IF EXISTS idx_content;

"""Traces: find traces by window, dimensions, status and text in prompts or completions, then
load one trace's spans as a tree with each LLM call's content, tokens, cost and latency."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from llmtrace import semconv
from llmtrace.analytics import frame
from llmtrace.analytics.filters import Filter, sql_time

STATUSES = ("all", "ok", "error")
CONTENT_KEYS = [semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.SYSTEM_INSTRUCTIONS]
# Filter field -> condition on an llm_traces row (the trace has a call with one of the chosen values).
_TRACE_DIMENSIONS = {
    "services": "hasAny(Services, {services:Array(String)})",
    "environments": "hasAny(Environments, {environments:Array(String)})",
    "releases": "hasAny(Releases, {releases:Array(String)})",
    "providers": "hasAny(Providers, {providers:Array(String)})",
    "models": "hasAny(Models, {models:Array(String)})",
    "users": "UserId IN {users:Array(String)}",
    "sessions": "SessionId IN {sessions:Array(String)}",
}
_TIME = "DateTime64(6, 'UTC')"
_WINDOW = f"Hour >= toStartOfHour({{start:{_TIME}}}) AND Hour < {{end:{_TIME}}}"
# A trace's rows (root span, calls arriving in later blocks) may start up to this long before or
# after the row that put it in the window; the second read of the chosen traces looks this far out.
_SLACK = f"""Hour >= toStartOfHour({{start:{_TIME}}} - INTERVAL 1 HOUR) AND Hour < {{end:{_TIME}}} + INTERVAL 1 HOUR"""
_STATUS = {
    "all": "",
    "error": " AND Errors > 0",
    "ok": f" AND TraceId NOT IN (SELECT TraceId FROM llm_traces WHERE {_SLACK} AND Errors > 0)",
}
# A span's content (the CONTENT_KEYS values) is kept on its own in otel_traces_content (024), with an
# index of its folded content's 3-grams (029). The index hands over the rows holding every 3-gram of
# the text (``search_grams``), or for a text without one, holding one of the index's own 3-grams that
# contain it (``_dictionary_tokens``), and the exact case-insensitive substring test runs on those rows
# only. At 10M calls a week, a cold search of a week for a text found nowhere fell from 8-10 s of server
# CPU (every span's whole attribute map) to 0.2-0.3 s (0.03 s of it this sub-query).
_TEXT_MATCH = f"""
    AND TraceId IN (
        SELECT TraceId FROM otel_traces_content
        WHERE Timestamp >= {{text_start:{_TIME}}} AND Timestamp < {{end:{_TIME}}}%s
          AND arrayExists(v -> positionCaseInsensitiveUTF8(v, {{text:String}}) > 0, Content))"""
# The index's expression (schemas/029, verbatim: the index serves only the same expression): a span's
# content values joined by line feeds, with one before and after (a value of one or two characters
# still yields 3-grams holding it), lower-cased with ASCII rules, and the four non-ASCII letters with
# an ASCII case partner (Kelvin sign, long s, dotted and dotless i) written as that letter.
_FOLD = {"\u212a": "k", "\u017f": "s", "\u0130": "i", "\u0131": "i"}


def _fold_sql(expr: str) -> str:
    """``expr`` (lower-cased) with the four letters replaced: replaceAll, not translateUTF8, which cost
    the index 3 ns a byte more (3.3 KB of content a span: +68.5 instead of +59.3 µs of INSERT CPU)."""
    for char, letter in _FOLD.items():
        expr = f"replaceAll({expr}, '{char}', '{letter}')"
    return expr


FOLDED_CONTENT = _fold_sql("lower(concat('\\n', arrayStringConcat(Content, '\\n'), '\\n'))")
# Characters whose case partners Unicode may name: they break a text's runs (never in a 3-gram).
_NOT_CASELESS = {"Mn", "Mc", "Me", "Lm", "Cn", "Cs"}
_MAX_GRAMS = 32
# A text without 3-grams: the index's dictionary (every part's 3-grams) is asked for those containing
# pieces of it; more than this many for a piece and it is common (the staged search ends early) and not
# worth the index. The dictionary of the 10M benchmark store: 1,322 distinct 3-grams in 40 parts.
_DICTIONARY = """
    SELECT groupUniqArray({most:UInt32})(token) FROM mergeTreeTextIndex(currentDatabase(), 'otel_traces_content',
                                                                      'idx_content_folded')
    WHERE positionCaseInsensitiveUTF8(token, {piece:String}) > 0"""
_MAX_TOKENS = 256
# Dictionary entries (3-grams x parts) a lookup may read, ~31 ns each: past it the lookup gives up and
# the search reads the window's content (random CJK, nearly every 3-gram distinct: 28M entries, 1.0 s).
_MAX_ENTRIES = 4_000_000
# A part without the index (while 029's MATERIALIZE runs on an external server) has no dictionary to
# read, and its rows would be tested against the others' 3-grams: no lookup while a mutation is pending.
_PENDING = """
    SELECT count() FROM system.mutations
    WHERE database = currentDatabase() AND table = 'otel_traces_content' AND NOT is_done"""
_MAX_PIECES = 4


def _folded(char: str) -> str | None:
    """How every character that matches ``char`` case-insensitively is written in the folded content,
    or None when that may differ between them (a non-ASCII letter with case partners: é, ß, Σ)."""
    if char < "\x80":
        return char.lower()
    if char in _FOLD:
        return _FOLD[char]
    caseless = char.lower() == char.upper() == char.casefold() == char.title() == char
    return char if caseless and unicodedata.category(char) not in _NOT_CASELESS else None


def search_grams(text: str) -> list[str]:
    """3-grams that every content value containing ``text`` (case-insensitively, as the search
    tests it) holds once folded as the index folds it: a necessary condition the index can answer.

    positionCaseInsensitiveUTF8 matches code point by code point, each pair lower-casing alike, so a
    run of characters with one folded form each is in the folded content wherever the text matches.
    Empty when the text has no run of three such characters (then the search reads all content of
    its window). At most ``_MAX_GRAMS``, in the text's order (any subset is still necessary).
    """
    grams: list[str] = []
    run: list[str] = []
    for char in [*text, None]:
        folded = _folded(char) if char is not None else None
        if folded is not None:
            run.append(folded)
            continue
        grams.extend("".join(run[i : i + 3]) for i in range(len(run) - 2))
        run = []
    return list(dict.fromkeys(grams))[:_MAX_GRAMS]


def _pieces(text: str) -> list[str]:
    """A text without 3-grams cut into up to ``_MAX_PIECES`` pieces of at most 3 characters, each
    character folded where the index folds every spelling of it alike (else kept as it is)."""
    chars = [_folded(char) or char for char in text]
    if len(chars) <= 3:
        return ["".join(chars)] if chars else []
    return ["".join(chars[i : i + 3]) for i in range(0, len(chars) - 2, 3)][:_MAX_PIECES]


def _dictionary_tokens(client: Any, text: str) -> list[list[str]] | None:
    """For each piece of ``text`` not too common, the index's 3-grams that contain it
    case-insensitively: a row holding the text holds one of each list (the piece lies in the folded
    content's 3-gram around it, folded alike). An empty list: the text is in no stored content.

    None when the dictionary cannot be read (a cluster's Distributed table, a server without
    ``mergeTreeTextIndex`` or a user without the grant), too large (over ``_MAX_ENTRIES``) or a
    mutation of the table is pending (parts may lack the index): then the search reads the window's
    content. Rows inserted after the lookup may be missed by the search that follows it, as if it had
    run at the lookup; merges keep every 3-gram (so every part's dictionary is read, not the window's).
    """
    from clickhouse_connect.driver.exceptions import DatabaseError  # the clients' error (chDB's too)

    lists = []
    try:
        if client.query(_PENDING).result_rows[0][0]:
            return None
        for piece in _pieces(text):
            params = {"piece": piece, "most": _MAX_TOKENS + 1}
            settings = {"max_rows_to_read": _MAX_ENTRIES, "read_overflow_mode": "throw"}
            found = client.query(_DICTIONARY, parameters=params, settings=settings).result_rows
            tokens = sorted(found[0][0]) if found else []
            if len(tokens) <= _MAX_TOKENS:
                lists.append(tokens)
    except DatabaseError:  # a refusal only costs the shortcut
        return None
    return lists


def _index_condition(client: Any, text: str) -> tuple[str, dict[str, Any]]:
    """The index's part of a text search: SQL ANDed to the content sub-query, and its parameters."""
    grams = search_grams(text)
    if grams:
        return f" AND hasAllTokens({FOLDED_CONTENT}, {{grams:Array(String)}})", {"grams": grams}
    lists = _dictionary_tokens(client, text) or []
    sql = "".join(f" AND hasAnyTokens({FOLDED_CONTENT}, {{tokens_{i}:Array(String)}})" for i in range(len(lists)))
    return sql, {f"tokens_{i}": tokens for i, tokens in enumerate(lists)}


# A text search looks at the newest hour, then the newest 4 hours, day and the window, and stops as
# soon as it holds ``limit`` traces. A common word passes the index in most spans, so a stage costs
# about a microsecond per span it holds (the exact test, the trace ids): at 10M calls a week, a common
# word read 1.2-1.4 s of server CPU when the newest hour held too few traces and the next stage was
# the day, 0.21-0.28 s with the 4-hour stage. A text the index rules out costs ~0.05 s a stage (0.12-0.20
# s -> 0.22-0.28 s for the extra stage); one it cannot (no 3-grams, no dictionary lookup: a cluster)
# reads every stage's content.
_TEXT_STAGES = (timedelta(hours=1), timedelta(hours=4), timedelta(days=1))
_HOUR = timedelta(hours=1)


def list_traces(client: Any, f: Filter, status: str = "all", text: str = "", limit: int = 200) -> pd.DataFrame:
    """Traces with at least one LLM call starting in the window, newest first, with whole-trace totals.

    Reads the per-trace table ``llm_traces`` (never groups llm_calls): first the newest rows that
    match, then every row of those traces. A dimension filter keeps traces with at least one call
    matching it. ``status`` keeps traces with (``error``) or without (``ok``) a failed call;
    ``text`` keeps traces whose prompts, completions or system instructions contain it
    (case-insensitive substring; this part reads ``otel_traces_content`` through its 3-gram
    index, newest first: the last hour, 4 hours, day, then the whole window, until ``limit``
    traces are found).
    """
    if status not in STATUSES:
        raise ValueError(f"unknown trace status {status!r}; choose one of {', '.join(STATUSES)}")
    if not text:
        return _list(client, f, status, text, limit)
    index = _index_condition(client, text)
    for stage in _TEXT_STAGES:
        if f.end - stage <= f.start:
            break
        start = f.end - stage
        stage_filter = dataclasses.replace(f, start=start)
        found = _list(client, stage_filter, status, text, limit, max(f.start, start - _HOUR), index)
        if len(found) >= limit:
            return found
    return _list(client, f, status, text, limit, None, index)


def _list(
    client: Any,
    f: Filter,
    status: str,
    text: str,
    limit: int,
    text_start: datetime | None = None,
    index: tuple[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """The newest ``limit`` traces of ``f``'s window, content searched from ``text_start`` (default
    the window's start; a stage's from an hour before it, where a trace in it may have begun) with
    the index's ``_index_condition`` (computed when not given)."""
    chosen = "".join(f" AND {cond}" for name, cond in _TRACE_DIMENSIONS.items() if getattr(f, name))
    index_sql, index_params = (index or _index_condition(client, text)) if text else ("", {})
    text_match = _TEXT_MATCH % index_sql if text else ""
    sql = f"""
        SELECT TraceId AS trace_id,
               min(Start) AS start,
               (toUnixTimestamp64Micro(max(End)) - toUnixTimestamp64Micro(start)) / 1000 AS duration_ms,
               max(RootName) AS name,
               arrayStringConcat(arraySort(groupUniqArrayArray(Services)), ', ') AS services,
               arrayStringConcat(arraySort(groupUniqArrayArray(Models)), ', ') AS models,
               sum(Calls) AS calls,
               sum(Errors) AS errors,
               sum(UnpricedCalls) AS unpriced_calls,
               if(unpriced_calls = calls, NULL, sum(CostUsd)) AS cost_usd,
               sum(Tokens) AS tokens,
               max(UserId) AS user,
               max(SessionId) AS session
        FROM llm_traces
        WHERE {_SLACK} AND TraceId IN (
            SELECT TraceId FROM llm_traces
            WHERE {_WINDOW} AND Start >= {{start:{_TIME}}} AND Start < {{end:{_TIME}}} AND Calls > 0
                  {chosen}{_STATUS[status]}{text_match}
            ORDER BY Start DESC
            LIMIT {{candidates:UInt32}})
        GROUP BY TraceId
        HAVING calls > 0
        ORDER BY start DESC, trace_id
        LIMIT {{limit:UInt32}}"""
    # Rows of one trace not yet merged can fill two candidate places: twice ``limit`` leaves room.
    params = f.params(limit=limit, candidates=2 * limit, text=text, **index_params)
    params["text_start"] = sql_time(text_start) if text_start is not None else params["start"]
    return frame(client, sql, params)


def trace_spans(client: Any, trace_id: str) -> pd.DataFrame:
    """Every span of one trace (LLM or not), parents before children, with ``depth``.

    LLM spans carry their normalised llm_calls figures (``is_llm`` = 1); ``attributes`` is
    the raw span attribute map, content included.
    """
    sql = """
        WITH (SELECT (min(Start), max(End)) FROM otel_traces_trace_id_ts WHERE TraceId = {trace_id:String})
            AS span_range
        SELECT t.SpanId AS span_id, t.ParentSpanId AS parent_span_id, t.SpanName AS name,
               t.ServiceName AS service, t.SpanKind AS kind, t.Timestamp AS start,
               t.Duration / 1e6 AS duration_ms, t.StatusCode AS status, t.StatusMessage AS status_message,
               t.SpanAttributes AS attributes, t.`Events.Name` AS event_names,
               t.`Events.Attributes` AS event_attributes,
               c.SpanId != '' AS is_llm, c.Provider AS provider, c.RequestModel AS model,
               c.ResponseModel AS response_model, c.InputTokens AS input_tokens,
               c.OutputTokens AS output_tokens, c.CacheReadTokens AS cache_read_tokens,
               c.ReasoningTokens AS reasoning_tokens, c.CostUsd AS cost_usd, c.CostStatus AS cost_status,
               c.TtftUs / 1000 AS ttft_ms, c.IsStream AS stream, c.FinishReason AS finish_reason,
               c.HasToolCalls AS has_tool_calls, c.ErrorType AS error_type,
               c.PromptName AS prompt, c.PromptVersion AS prompt_version
        FROM otel_traces AS t
        LEFT JOIN (SELECT * FROM llm_calls WHERE TraceId = {trace_id:String}) AS c ON c.SpanId = t.SpanId
        WHERE t.TraceId = {trace_id:String}
          AND (span_range.2 < toDateTime('1971-01-01')
               OR toDateTime(t.Timestamp) BETWEEN span_range.1 - 1 AND span_range.2 + 1)
        ORDER BY t.Timestamp, t.SpanId"""
    return as_tree(frame(client, sql, {"trace_id": trace_id}))


def as_tree(spans: pd.DataFrame) -> pd.DataFrame:
    """Order spans depth-first (children by start time) and add ``depth`` and ``offset_ms``.

    Spans whose parent is not in the frame are treated as roots, so a partial trace still renders.
    """
    if spans.empty:
        return spans.assign(depth=pd.Series(dtype=int), offset_ms=pd.Series(dtype=float))
    ids = set(spans["span_id"])
    children: dict[str, list[int]] = {}
    roots: list[int] = []
    for position, (span_id, parent) in enumerate(zip(spans["span_id"], spans["parent_span_id"], strict=True)):
        if parent and parent in ids and parent != span_id:
            children.setdefault(parent, []).append(position)
        else:
            roots.append(position)
    order: list[tuple[int, int]] = []
    stack = [(position, 0) for position in reversed(roots)]
    while stack:
        position, depth = stack.pop()
        order.append((position, depth))
        span_id = spans["span_id"].iloc[position]
        stack.extend((child, depth + 1) for child in reversed(children.pop(span_id, [])))
    tree = spans.iloc[[p for p, _ in order]].reset_index(drop=True)
    tree["depth"] = [d for _, d in order]
    starts = pd.to_datetime(tree["start"])
    tree["offset_ms"] = (starts - starts.min()).dt.total_seconds() * 1000
    return tree


def messages(attributes: dict[str, str], key: str) -> list[dict[str, Any]]:
    """The JSON message list stored under ``key`` (GenAI semconv content), [] if absent or invalid."""
    text = (attributes or {}).get(key, "")
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [{"role": "unparsed", "parts": [{"type": "text", "content": text}]}]
    return value if isinstance(value, list) else [value]


def tool_calls(output_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``tool_call`` parts of the output messages (name, id, arguments)."""
    return [
        part
        for message in output_messages
        for part in (message.get("parts") or [])
        if isinstance(part, dict) and part.get("type") == "tool_call"
    ]

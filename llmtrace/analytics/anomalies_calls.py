"""Call-level anomalies (SQL over ``llm_calls``) and example traces for episodes.

* ``slow_call`` / ``expensive_call``: a call whose duration or cost is far above the usual
  for its series and model: robust z of log(value) against their history (median,
  IQR / 1.349) of at least ``CALL_Z`` and at least ``CALL_RATIO`` times the median. The
  history's quartiles come from the 5-minute anomaly rollup's histograms where it answers the
  grouping (a bin's middle: within 1.1% of the value), else from its calls (a deterministic
  sample's quantiles).
* ``retry_storm``: within five minutes, in one session (or one trace when there is no
  session), at least 3 failed calls and a success after the last of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from llmtrace.analytics.anomalies_sql import BINS_PER_OCTAVE, ZERO_BIN, series_columns
from llmtrace.analytics.groups import COLUMNS, GENERATES

CALL_Z = 6.0
CALL_RATIO = 3.0
BAR_MARGIN = 1e-9  # relative: the outliers' prefilter bar under the exact tests' edge
STORM_ERRORS = 3
STORM_SECONDS = 300
EXAMPLES = 3
_TIME = "DateTime64(6, 'UTC')"
_WINDOW = f"Timestamp >= {{judge_start:{_TIME}}} AND Timestamp < {{judge_end:{_TIME}}}"
_HISTORY = f"Timestamp >= {{hist_start:{_TIME}}} AND Timestamp < {{judge_start:{_TIME}}}"
_OUTLIER_VALUES = {"slow_call": "toFloat64(DurationUs) / 1000", "expensive_call": "ifNull(CostUsd, 0)"}
_OUTLIER_METRICS = {"slow_call": "latency_ms", "expensive_call": "cost_usd"}


def _groups(by: Sequence[str]) -> str:
    return ", ".join(f"toString({COLUMNS[b]}) AS g_{b}" for b in by) or "0 AS _all"


def _rollup_history(by: Sequence[str], dims: str, keys: str) -> str:
    """The history's log quartiles and sizes per series and model (and its ``keys``) from ``llm_anomaly_5m``: the
    successful calls' histogram (the bin of a 0 left out), each quartile interpolated within its bin
    (calls spread evenly over a bin's log width): within ~0.3% of the exact quartiles."""
    width = math.log(2) / BINS_PER_OCTAVE
    arms, merged = [], []
    for kind, (hist, offset) in {"slow_call": ("Latency", math.log(1000)), "expensive_call": ("Cost", 0.0)}.items():
        pairs = f"arrayZip(sumMap({hist}).1, sumMap({hist}).2)"
        merged.append(f"arrayFilter(x -> x.1 != {ZERO_BIN} AND x.2 != 0, {pairs}) AS h_{kind}")
        cum, n = f"arrayCumSum(arrayMap(x -> x.2, h_{kind}))", f"arraySum(x -> x.2, h_{kind})"
        at = f"arrayFirstIndex(c -> c >= q * {n}, {cum})"
        # the quartile's bin, and how far into it the quartile's rank falls
        inside = f"h_{kind}[{at}].1 + (q * {n} - ({cum}[{at}] - h_{kind}[{at}].2)) / h_{kind}[{at}].2"
        arms.append(
            f"arrayMap(q -> ({inside}) * {width!r} - {offset!r}, [0.25, 0.5, 0.75]) AS q_{kind}, {n} AS n_{kind}"
        )
    return f"""
                    SELECT k, {keys}, {", ".join(arms)} FROM (
                        SELECT cityHash64({keys}) AS k, {keys}, {", ".join(merged)}
                        FROM (SELECT RequestModel, Latency, Cost, {_groups(by)} FROM llm_anomaly_5m
                              WHERE Bucket >= {{hist_start:{_TIME}}} AND Bucket < {{judge_start:{_TIME}}}{dims})
                        GROUP BY {keys})"""


def outliers_sql(
    by: Sequence[str], dims: str, limit: int, rollup: bool = False, prefilter: bool = True, bound: bool = False
) -> str:
    """The most extreme slow and expensive calls in the window (``limit`` per kind), each
    against the history of its own series and model.

    Both kinds come from one read of the window and one of the history (the history's
    quartiles per kind as -If aggregates over the same rows, so they equal a query per kind).
    The window's calls meet their history on one hash of the series and model, and only the
    calls past either kind's bar are unfolded into one row per kind (the bars are tested again
    there, the same expressions): the join on strings and the unfolding of every call cost
    ~0.8 s of server CPU per million calls. ``rollup``: the history from ``llm_anomaly_5m``
    (:func:`_rollup_history`; its keys must hold ``by`` and its buckets the window's edges), and then
    (``prefilter``) the history is one scalar, not a joined table, and only the calls over its bars
    are hashed (:func:`_outlier_history`): 10M calls, a 5 d window after 2 d of history (7.0M calls
    judged): 1.76-2.11 -> 1.01-1.16 s of server CPU; 24 h (1.4M): 0.54 -> 0.40 s (load 13-37).
    ``bound``: that history is not a scalar subquery but the parameters :func:`outlier_bars_params`
    makes of :func:`outlier_bars_sql`'s row (see :func:`_bars_ref`). The bars are tested before the
    candidate hours: a prewhere's conditions are read in steps, in order, and the bars keep a few
    hundred of the window's calls where the hours' set (a hash of four strings per call) kept most
    of them: 0.24 -> 0.17 s of server CPU on v9 seed 900, 7 d (0.74M calls)."""
    keys = ", ".join([*(f"g_{b}" for b in by), "RequestModel"])
    values = ", ".join(f"{expr} AS v_{kind}" for kind, expr in _OUTLIER_VALUES.items())
    positive = " OR ".join(f"v_{kind} > 0" for kind in _OUTLIER_VALUES)
    quartiles = ", ".join(
        f"quantilesDeterministicIf(0.25, 0.5, 0.75)(log(v_{kind}), sipHash64(SpanId), v_{kind} > 0) AS q_{kind},"
        f" countIf(v_{kind} > 0) AS n_{kind}"
        for kind in _OUTLIER_VALUES
    )
    history = (
        _rollup_history(by, dims, keys)
        if rollup
        else f"""
                    SELECT cityHash64({keys}) AS k, {quartiles}
                    FROM (SELECT RequestModel, SpanId, {_groups(by)}, {values} FROM llm_calls
                          WHERE {_HISTORY}{dims} AND IsError = 0)
                    GROUP BY {keys}"""
    )
    arms = ", ".join(
        f"('{kind}', '{_OUTLIER_METRICS[kind]}', v_{kind}, q_{kind}, n_{kind})" for kind in _OUTLIER_VALUES
    )
    passes = " OR ".join(
        f"(n_{kind} >= 30 AND v_{kind} > 0 AND {_score(f'v_{kind}', f'q_{kind}')} >= {CALL_Z}"
        f" AND v_{kind} >= {CALL_RATIO} * exp(q_{kind}[2]))"
        for kind in _OUTLIER_VALUES
    )
    calls = f"""SELECT {_groups(by)}, RequestModel, Timestamp AS start, TraceId AS trace_id, {values},
                           cityHash64({keys}) AS k"""
    if rollup and prefilter:
        with_clause, below, stats = _outlier_history(by, history, bound)
        passing = f"""
                SELECT *, {stats} FROM (
                    {calls}
                    FROM llm_calls PREWHERE {_WINDOW}{dims} AND IsError = 0 AND {below}
                        AND {_CANDIDATE_KEY} IN ({_candidate_hours(by, dims, bound)})
                    WHERE ({positive}))
                WHERE {passes}"""
    else:
        with_clause = ""
        passing = f"""
                SELECT c.*, h.* EXCEPT (k) FROM (
                    {calls}
                    FROM llm_calls WHERE {_WINDOW}{dims} AND IsError = 0 AND ({positive})) AS c
                INNER JOIN (SELECT * FROM ({history})
                    WHERE {" OR ".join(f"n_{kind} >= 30" for kind in _OUTLIER_VALUES)}
                ) AS h ON c.k = h.k
                WHERE {passes}"""
    return f"""
        {with_clause}
        SELECT kind, metric, {series_columns(by)}, start, trace_id, observed, expected, score FROM (
            SELECT arm.1 AS kind, arm.2 AS metric, {series_columns(by)}, start, trace_id,
                   arm.3 AS v, arm.4 AS q, v AS observed, exp(q[2]) AS expected, {_score("v", "q")} AS score
            FROM ({passing}
            )
            ARRAY JOIN [{arms}] AS arm
            WHERE arm.5 >= 30 AND v > 0
        )
        WHERE score >= {CALL_Z} AND v >= {CALL_RATIO} * exp(q[2])
        ORDER BY kind DESC, score DESC LIMIT {limit} BY kind"""


def _bar(kind: str) -> str:
    """A history's lowest value of ``kind`` that can pass both tests (``CALL_RATIO`` times the median,
    a robust z of ``CALL_Z``), BAR_MARGIN under it for the rounding of log and exp; inf under 30 calls."""
    q, spread = f"q_{kind}", f"greatest((q_{kind}[3] - q_{kind}[1]) / 1.349, 0.05)"
    edge = f"exp(greatest({q}[2] + log({CALL_RATIO}), {q}[2] + {CALL_Z} * {spread}))"
    return f"if(n_{kind} >= 30, {1 - BAR_MARGIN!r} * {edge}, inf)"


def _bars_ref(n: int, types: Sequence[str] | None, part: int | None = None) -> str:
    """Element ``n`` (1-based) of the history's row (:func:`_history_parts`; ``part`` 1 or 2 of a
    ``minMap``'s pair): ``outlier_bars.n`` of the scalar subquery, or (given the elements' ``types``:
    bound) the query parameter ``ob<n>[_<part>]``. Each reference to a scalar subquery is a copy of
    its whole tree for the analyser (the outliers' query tree: 96k nodes at 10M calls, ~0.3 s of server
    CPU before anything is read); a parameter is one literal."""
    if types is None:
        return f"outlier_bars.{n}" + (f".{part}" if part else "")
    kind = types[n - 1] if part is None else ("Array(String)", "Array(Float64)")[part - 1]
    return f"{{ob{n}{f'_{part}' if part else ''}:{kind}}}"


def _history_parts(by: Sequence[str]) -> tuple[list[str], list[str], list[tuple[str, str]], int, dict[str, int]]:
    """The history's row as aggregates over its series (bars and quartiles): the expressions and
    their types; the (column, kind) of its ``minMap`` pairs (elements 1..); the element of the series'
    hashes (then each kind's bar); and per kind the element of its first quartile (then median,
    third, size)."""
    columns = dict.fromkeys([*(COLUMNS[b] for b in by), "RequestModel"])
    named = {COLUMNS[b]: f"g_{b}" for b in by}
    pairs = [(column, kind) for column in columns for kind in _OUTLIER_VALUES]
    parts = [f"minMap([toString({named.get(c, c)})], [bar_{kind}])" for c, kind in pairs]
    types = ["Tuple(Array(String), Array(Float64))"] * len(parts)
    series = len(parts) + 1
    parts.append("groupArray(k)")
    types.append("Array(UInt64)")
    for kind in _OUTLIER_VALUES:  # each series' own bars: elements series + 1, series + 2
        parts.append(f"groupArray(bar_{kind})")
        types.append("Array(Float64)")
    first = {}
    for kind in _OUTLIER_VALUES:
        first[kind] = len(parts) + 1
        parts += [f"groupArray(q_{kind}[{i}])" for i in (1, 2, 3)] + [f"groupArray(n_{kind})"]
        types += ["Array(Float64)"] * 3 + ["Array(UInt64)"]
    return parts, types, pairs, series, first


def _history_row(history: str, parts: Sequence[str]) -> str:
    bars = ", ".join(f"if(isNaN({_bar(kind)}), 0, {_bar(kind)}) AS bar_{kind}" for kind in _OUTLIER_VALUES)
    enough = " OR ".join(f"n_{kind} >= 30" for kind in _OUTLIER_VALUES)
    return f"SELECT {', '.join(parts)} FROM (SELECT *, {bars} FROM ({history}) WHERE {enough})"


def outlier_bars_sql(by: Sequence[str], dims: str) -> str:
    """The rollup's history (:func:`_rollup_history`) as one row of bars and quartiles, read once and
    bound into :func:`outliers_sql` (``bound``) by :func:`outlier_bars_params`."""
    keys = ", ".join([*(f"g_{b}" for b in by), "RequestModel"])
    parts, _, _, _, _ = _history_parts(by)
    return _history_row(_rollup_history(by, dims, keys), parts)


def outlier_bars_params(by: Sequence[str], row: Sequence[Any]) -> dict[str, Any] | None:
    """:func:`outlier_bars_sql`'s row as :func:`outliers_sql`'s parameters; None when no series has the
    30 calls of history to judge a call by (then no call is an outlier and the query need not run)."""
    params: dict[str, Any] = {}
    for n, value in enumerate(row, 1):
        if isinstance(value, tuple):
            params[f"ob{n}_1"], params[f"ob{n}_2"] = list(value[0]), list(value[1])
        else:
            params[f"ob{n}"] = list(value)
    _, _, _, series, _ = _history_parts(by)
    return params if len(row[series - 1]) else None


def _outlier_history(by: Sequence[str], history: str, bound: bool = False) -> tuple[str, str, str]:
    """The rollup's history as one scalar (``outlier_bars``, computed once) instead of a joined
    table, and the calls that may pass their series' bars, tested on the stored columns before
    any call is hashed or its trace id read.

    The scalar holds, per value of each key column (the series' and the model), the lowest bar of
    the series with that value (``minMap``), looked up in the column's dictionary (``transform``
    of a LowCardinality column): a call under the highest of its columns' bars is under its own
    series' bar. Then each series' hash, quartiles and size, looked up by the passing calls' hash
    (a call of a series without history gets size 0 and fails as the inner join dropped it).
    ``bound``: the same values as query parameters (:func:`_bars_ref`), no WITH clause.
    Returns the WITH clause, the condition, and the quartile and size columns of a call."""
    parts, types, pairs, series, first = _history_parts(by)

    def ref(n: int, part: int | None = None) -> str:
        return _bars_ref(n, types if bound else None, part)

    stats = {}
    for kind in _OUTLIER_VALUES:
        at = first[kind]
        q = ", ".join(f"transform(k, {ref(series)}, {ref(at + i)}, nan)" for i in (0, 1, 2))
        stats[kind] = f"[{q}] AS q_{kind}, transform(k, {ref(series)}, {ref(at + 3)}, 0) AS n_{kind}"
    row = _history_row(history, ["(" + ", ".join(parts) + ")"])  # one tuple: the scalar
    with_clause = "" if bound else f"WITH ({row}) AS outlier_bars"
    tests = []
    for kind, value in _OUTLIER_VALUES.items():
        lookups = [f"transform({c}, {ref(n, 1)}, {ref(n, 2)}, inf)" for n, (c, k) in enumerate(pairs, 1) if k == kind]
        tests.append(f"{value} >= {lookups[0] if len(lookups) == 1 else 'greatest(' + ', '.join(lookups) + ')'}")
    # no history with 30 calls: the window's end moves to its start (the scalar is folded), nothing is read
    empty = f"Timestamp < if(empty({ref(series)}), {{judge_start:{_TIME}}}, {{judge_end:{_TIME}}})"
    return with_clause, f"{empty} AND ({' OR '.join(tests)})", ", ".join(stats.values())


# llm_calls' primary key up to the hour (schemas/004): a set of these skips the granules of the other hours
_CANDIDATE_KEY = "(ServiceName, Provider, RequestModel, toStartOfHour(Timestamp))"
# a call of value v lies in bin floor(32 * log2(v * scale)) of the rollup's histogram of its kind
_ROLLUP_BINS = {"slow_call": ("Latency", 1000.0), "expensive_call": ("Cost", 1.0)}


def _candidate_hours(by: Sequence[str], dims: str, bound: bool = False) -> str:
    """The (service, provider, model, hour) of the window whose 5-minute rollup rows hold a call in or
    past the bin of its series' bar (:func:`_bar`) minus one, for either kind: every call that can pass
    its bar lies in one, so only their granules of ``llm_calls`` are read, and what is read grows with
    the outliers, not with the calls. The bin one under the bar's absorbs any rounding of log2 at a
    bin's edge (the rollup's ``floor(32 * log2(v))`` against the bar's); any bin listed counts, even one
    whose count a re-pricing's correction row brings to 0 (a superset). A series without 30 calls of
    history has an infinite bar and no candidate, as its calls fail the tests anyway."""
    _, types, _, series, _ = _history_parts(by)
    keys = ", ".join([*(f"g_{b}" for b in by), "RequestModel"])
    tests = []
    for i, kind in enumerate(_OUTLIER_VALUES, 1):  # the order of the bars in outlier_bars
        hist, scale = _ROLLUP_BINS[kind]
        ref = types if bound else None
        bar = f"transform(k, {_bars_ref(series, ref)}, {_bars_ref(series + i, ref)}, inf)"
        edge = f"floor({BINS_PER_OCTAVE} * log2({scale!r} * {bar})) - 1"
        tests.append(f"arrayExists(b -> b >= {edge}, {hist}.1)")
    return f"""
                    SELECT ServiceName, Provider, RequestModel, toStartOfHour(Bucket) FROM (
                        SELECT ServiceName, Provider, RequestModel, Bucket, Latency, Cost,
                               cityHash64({keys}) AS k
                        FROM (SELECT *, {_groups(by)} FROM llm_anomaly_5m
                              WHERE Bucket >= toStartOfFiveMinutes({{judge_start:{_TIME}}})
                                AND Bucket < {{judge_end:{_TIME}}}{dims}))
                    WHERE {" OR ".join(tests)}"""


def _score(value: str, quartiles: str) -> str:
    """Robust z of log(value) against the history's log quartiles."""
    return f"(log({value}) - {quartiles}[2]) / greatest(({quartiles}[3] - {quartiles}[1]) / 1.349, 0.05)"


def _raw_groups(by: Sequence[str]) -> str:
    """The series' columns as stored (LowCardinality: grouped by their dictionary index, not as strings)."""
    return ", ".join(f"{COLUMNS[b]} AS g_{b}" for b in by) or "0 AS _all"


def _strings(by: Sequence[str]) -> str:
    return ", ".join(f"toString(g_{b}) AS g_{b}" for b in by) or "_all"


def storms_sql(by: Sequence[str], dims: str) -> str:
    """Series with retry storms in the window: count, first and last time, example traces (the
    last call's trace of the series' EXAMPLES storms with the most failures, the earliest first
    among equals; any EXAMPLES of them before).

    The failed calls give the candidates: (session, 5 minutes) with at least STORM_ERRORS
    failures in one series, or (series, 5 minutes) for calls without a session (a superset of
    their traces'); only the candidates' calls are then keyed by their trace where there is no
    session, grouped by the stored LowCardinality columns and judged as before, instead of every
    call of the window hashed twice and grouped by strings. Where failures fall in every session
    (10M calls, 7 d: 200 sessions a day of ~7,000 calls, 2% failed) both reads still decompress
    every call's Timestamp and SessionId and the second every TraceId: 3.2 -> 2.2 s of server CPU."""
    g = series_columns(by)
    w = f"toStartOfInterval(Timestamp, toIntervalSecond({STORM_SECONDS}))"
    series = ", ".join(COLUMNS[b] for b in by)
    # the session, or for calls without one their series: never the trace, so TraceId is not read
    loose = f"if(SessionId != '', cityHash64('s', SessionId), cityHash64('t'{', ' + series if series else ''}))"
    key = "if(SessionId != '', cityHash64('s', SessionId), cityHash64('t', TraceId))"
    return f"""
        SELECT 'retry_storm' AS kind, 'retries' AS metric, {_strings(by)}, min(first) AS start, max(last) AS last,
               count() AS storms, sum(errors) AS observed, toFloat64(0) AS expected, toFloat64(max(errors)) AS score,
               arrayMap(x -> x.3, groupArraySorted({EXAMPLES})((-errors, first, trace_id))) AS trace_ids
        FROM (
            SELECT {g}, countIf(IsError = 1) AS errors, countIf(IsError = 0) AS ok,
                   min(Timestamp) AS first, max(Timestamp) AS last,
                   maxIf(Timestamp, IsError = 1) < maxIf(Timestamp, IsError = 0) AS recovered,
                   argMax(TraceId, Timestamp) AS trace_id
            FROM (SELECT {_raw_groups(by)}, Timestamp, IsError, TraceId, {key} AS storm_key, {w} AS w
                  FROM llm_calls
                  PREWHERE {_WINDOW}{dims} AND ({loose}, {w}) IN (
                      SELECT {loose} AS k, {w} AS fw
                      FROM llm_calls PREWHERE IsError = 1 AND {_WINDOW}{dims}
                      GROUP BY {series + ", " if series else ""}k, fw HAVING count() >= {STORM_ERRORS}))
            GROUP BY {g}, storm_key, w
            HAVING errors >= {STORM_ERRORS} AND ok >= 1 AND recovered
        )
        GROUP BY {g}"""


STORM_TABLE = "llm_storm_5m"


def storms_rollup_sql(by: Sequence[str], dims: str, table: str = STORM_TABLE) -> str:
    """:func:`storms_sql` from ``llm_storm_5m`` (027): a row per 5 minutes, filter keys and storm key
    (session, else trace) with its failures, successes, first and last call, last failure and success
    and the last call's trace, so the storms of a window are its rows merged per series, key and
    5 minutes and judged as before, instead of every call's Timestamp, SessionId and TraceId read.
    Only the (5 minutes, key) with at least STORM_ERRORS failures over all series (a superset of
    the storms) are merged: the rows of a failure-free key are most of the table. Its buckets must
    hold the window's edges and its keys ``by`` (``rollup_answers``). 10M calls, 7 d, by service and
    model: 2.66 -> ~0.3 s of server CPU (1.16M rows read instead of 10M calls). The candidates are
    :func:`storm_candidates_sql`'s. The detector reads the same rows in two steps
    (:func:`rollup_storms`)."""
    return f"""
        SELECT 'retry_storm' AS kind, 'retries' AS metric, {_strings(by)}, min(first) AS start, max(last) AS last,
               count() AS storms, sum(errors) AS observed, toFloat64(0) AS expected, toFloat64(max(errors)) AS score,
               arrayMap(x -> x.3, groupArraySorted({EXAMPLES})((-errors, first, trace_id))) AS trace_ids
        FROM ({_rollup_storm_rows(by, dims, table, traced=True)})
        GROUP BY {", ".join(f"g_{b}" for b in by) or "_all"}"""


def _rollup_storm_rows(by: Sequence[str], dims: str, table: str, traced: bool) -> str:
    """The storms of ``table``: a row per series, storm key and 5 minutes (with its last call's trace
    when ``traced``)."""
    g = ", ".join(f"{COLUMNS[b]} AS g_{b}" for b in by)
    keys = ", ".join([*(f"g_{b}" for b in by), "StormKey", "Bucket"])
    window = f"Bucket >= {{judge_start:{_TIME}}} AND Bucket < {{judge_end:{_TIME}}}"
    trace = ", argMaxMerge(LastTrace) AS trace_id" if traced else ""
    return f"""
            SELECT {g + ", " if g else "0 AS _all, "}StormKey, Bucket, sum(Errors) AS errors, sum(Ok) AS ok,
                   min(First) AS first, max(Last) AS last, max(LastError) < max(LastOk) AS recovered{trace}
            FROM {table}
            PREWHERE {window}{dims} AND (Bucket, StormKey) IN ({storm_candidates_sql(by, dims, table)})
            GROUP BY {keys if by else "_all, StormKey, Bucket"}
            HAVING errors >= {STORM_ERRORS} AND ok >= 1 AND recovered"""


def storms_untraced_sql(by: Sequence[str], dims: str, table: str = STORM_TABLE) -> str:
    """:func:`storms_rollup_sql` without the traces: per series, instead, its storms that can give an
    example (``ranked``: (-failures, first call in ns, storm key, bucket) of those that sort at or before
    the EXAMPLES-th, ties included; as four arrays: pandas cannot take these tuples), whose traces
    :func:`storm_traces_sql` reads."""
    nth = f"ordered[least({EXAMPLES}, length(ordered))]"
    ordered = "arraySort(groupArray((-errors, toUnixTimestamp64Nano(first), StormKey, toUInt32(Bucket))))"
    return f"""
        WITH {ordered} AS ordered, arrayFilter(x -> (x.1, x.2) <= ({nth}.1, {nth}.2), ordered) AS ranked
        SELECT 'retry_storm' AS kind, 'retries' AS metric, {_strings(by)}, min(first) AS start, max(last) AS last,
               count() AS storms, sum(errors) AS observed, toFloat64(0) AS expected, toFloat64(max(errors)) AS score,
               arrayMap(x -> x.1, ranked) AS ranked_errors, arrayMap(x -> x.2, ranked) AS ranked_first,
               arrayMap(x -> x.3, ranked) AS ranked_key, arrayMap(x -> x.4, ranked) AS ranked_bucket
        FROM ({_rollup_storm_rows(by, dims, table, traced=False)})
        GROUP BY {", ".join(f"g_{b}" for b in by) or "_all"}"""


def storm_traces_sql(by: Sequence[str], dims: str, table: str = STORM_TABLE) -> str:
    """The last call's trace of each storm in ``{storm_keys}`` ((bucket, storm key) pairs) per series: the
    rows :func:`storms_rollup_sql` merges for it (those of its series, key and 5 minutes in the window), so
    the same trace; the primary key reads only the pairs' buckets."""
    g = ", ".join(f"{COLUMNS[b]} AS g_{b}" for b in by)
    keys = ", ".join([*(f"g_{b}" for b in by), "StormKey", "Bucket"])
    window = f"Bucket >= {{judge_start:{_TIME}}} AND Bucket < {{judge_end:{_TIME}}}"
    return f"""
        SELECT {_strings(by)}, StormKey, toUInt32(Bucket) AS bucket, trace_id FROM (
            SELECT {g + ", " if g else "0 AS _all, "}StormKey, Bucket, argMaxMerge(LastTrace) AS trace_id
            FROM {table}
            PREWHERE {window}{dims} AND toUInt32(Bucket) IN {{storm_buckets:Array(UInt32)}}
                AND (toUInt32(Bucket), StormKey) IN {{storm_keys:Array(Tuple(UInt32, UInt64))}}
            GROUP BY {keys if by else "_all, StormKey, Bucket"})"""


def rollup_storms(client: Any, by: Sequence[str], dims: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`storms_rollup_sql`'s rows, read in two steps: the storms without their traces, then the
    traces of only the storms that can be examples. The traces are most of the rollup's bytes (108 of
    170 MiB at 10M calls), and the candidates' granules hold nearly every row: 0.33 -> 0.25 s of server
    CPU at 10M calls, 7 d. The examples are then sorted as ``groupArraySorted`` sorts them."""
    rows: list[dict[str, Any]] = client.query_df(storms_untraced_sql(by, dims), parameters=params).to_dict("records")
    for row in rows:
        row["ranked"] = list(
            zip(*(list(row.pop(f"ranked_{n}")) for n in ("errors", "first", "key", "bucket")), strict=True)
        )
    wanted = {(int(x[3]), int(x[2])) for row in rows for x in row["ranked"]}
    traces: dict[tuple[Any, ...], str] = {}
    if wanted:
        bound = {**params, "storm_keys": sorted(wanted), "storm_buckets": sorted({b for b, _ in wanted})}
        names = [f"g_{b}" for b in by] or ["_all"]
        for t in client.query_df(storm_traces_sql(by, dims), parameters=bound).to_dict("records"):
            traces[(*(t[n] for n in names), int(t["StormKey"]), int(t["bucket"]))] = str(t["trace_id"])
    for row in rows:
        series = tuple(row[n] for n in ([f"g_{b}" for b in by] or ["_all"]))
        ranked = [(int(x[0]), int(x[1]), traces[(*series, int(x[2]), int(x[3]))]) for x in row.pop("ranked")]
        row["trace_ids"] = [trace for _, _, trace in sorted(ranked)[:EXAMPLES]]
    return rows


def storm_candidates_sql(by: Sequence[str], dims: str, table: str = STORM_TABLE) -> str:
    """The (5 minutes, storm key) with at least STORM_ERRORS failures in one series (the ``by``
    columns): every storm's, as a storm's failures are its series' (a superset of the storms).
    Counted per series, not over all of them: at 10M calls, 7 d, by service and model, 8.7k
    candidates instead of 32k, whose rows (16.6k instead of 415k) are all the storm query merges."""
    series = "".join(f"{COLUMNS[b]}, " for b in by)
    window = f"Bucket >= {{judge_start:{_TIME}}} AND Bucket < {{judge_end:{_TIME}}}"
    return f"""
                SELECT Bucket, StormKey FROM {table} PREWHERE {window}{dims} AND Errors > 0
                GROUP BY {series}Bucket, StormKey HAVING sum(Errors) >= {STORM_ERRORS}"""


def examples_sql(dims: str, shapes: Sequence[Sequence[str]], step: int) -> str:
    """Up to EXAMPLES trace ids per episode, the most telling first (slowest for latency,
    failed for the error rate, costliest for cost, ...; ties: the earlier call, then the lower
    trace id). Episode ``i`` (1-based) is bound by ``examples_params``: its calls are those of
    its buckets whose series' columns (a shape of ``shapes``: the columns its series names)
    equal its values.

    Per shape, each call numbers its bucket and its columns (each value by its rank among the
    episodes' values of that column, 0 for any other: a ``transform`` of the column's LowCardinality
    dictionary, then a mixed-radix number, exact) and looks the number up among the (bucket,
    series) pairs the episodes of that shape cover (``transform``, a hash table built once), which
    gives the slot of their episodes. Hashing each call's strings instead cost ~0.1 s of server CPU
    for 1.6M calls (10M calls, 7 d). The query's text grows with the shapes, not with the
    episodes: one condition per episode, bound as scalars, cost 0.25 s of analysis for 58
    episodes (v9, 7 d) and tested each on every call. The primary key reads only the hours the
    episodes cover (of their services, where they name one)."""
    key = """multiIf(
        metric = 'latency_p95_ms', toFloat64(DurationUs),
        metric = 'ttft_p95_ms', toFloat64(ifNull(TtftUs, 0)),
        metric = 'error_rate', toFloat64(IsError),
        metric = 'cost_per_call_usd', ifNull(CostUsd, 0),
        metric = 'tokens_per_call', toFloat64(OutputTokens),
        metric = 'truncation_rate', toFloat64(FinishReason IN ('length', 'max_tokens')),
        metric = 'empty_output_rate', toFloat64(IsError = 0 AND OutputTokens = 0 AND generates),
        0)"""
    bucket = f"intDiv(toUInt32(Timestamp), {int(step)})"
    slots, lists, hints = [], [], []
    for j, shape in enumerate(shapes):
        hour = "DateTime('UTC')"
        if "service" in shape:
            hints.append(f"(ServiceName, toStartOfHour(Timestamp)) IN {{ex{j}_hours:Array(Tuple(String, {hour}))}}")
        else:
            hints.append(f"toStartOfHour(Timestamp) IN {{ex{j}_hours:Array({hour})}}")
        # the call's (bucket, values) as one exact number: each column's value by its rank among the
        # episodes' values (0: none of them), looked up in the column's dictionary, not hashed per call
        number = bucket
        for b in shape:
            rank = f"transform({COLUMNS[b]}, {{ex{j}_v_{b}:Array(String)}}, {{ex{j}_r_{b}:Array(UInt64)}}, 0)"
            number = f"({number}) * {{ex{j}_m_{b}:UInt64}} + {rank}"
        slots.append(
            f"transform(toUInt64({number}), {{ex{j}_k:Array(UInt64)}}, {{ex{j}_s:Array(UInt32)}}, 0) AS slot{j}"
        )
        lists.append(f"{{ex{j}_eps:Array(Array(UInt32))}}[slot{j}]")
    found = " OR ".join(f"slot{j} > 0" for j in range(len(shapes))) or "0"
    eps = f"arrayConcat({', '.join(lists)})" if lists else "CAST([], 'Array(UInt32)')"
    return f"""
        SELECT ep, arrayMap(x -> x.3, groupArraySorted({EXAMPLES})((-k, ts, TraceId))) AS trace_ids FROM (
            SELECT ep, TraceId, Timestamp AS ts, {{ex_metrics:Array(String)}}[ep] AS metric, {key} AS k
            FROM (
                SELECT Timestamp, TraceId, DurationUs, TtftUs, IsError, CostUsd, OutputTokens, FinishReason,
                       {GENERATES} AS generates,
                       {", ".join([*slots, f"{eps} AS eps"])}
                FROM llm_calls
                PREWHERE Timestamp >= {{min_start:{_TIME}}} AND Timestamp < {{max_end:{_TIME}}}
                    AND indexHint({" OR ".join(hints) or "0"}) AND ({found})
                WHERE 1{dims}
            )
            ARRAY JOIN eps AS ep
        ) GROUP BY ep"""


def examples_params(
    episodes: Sequence[tuple[datetime, datetime, str, dict[str, str]]], step: int, shapes: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """``examples_sql``'s parameters for episodes given as (start, end, metric, series), each
    series naming the columns of one of ``shapes`` (:func:`example_shapes`).

    An episode's buckets are ``range(start, end, step)`` in whole seconds (the detector's
    buckets are whole multiples of ``step`` since the epoch, as ``toStartOfInterval`` makes
    them): its calls lie in [start, end rounded up to a bucket), and none when ``start`` is
    not a bucket's start."""
    index = {tuple(shape): j for j, shape in enumerate(shapes)}
    covering: list[dict[tuple[Any, ...], list[int]]] = [{} for _ in shapes]
    for i, (start, end, _, series) in enumerate(episodes, 1):
        shape = tuple(b for b in COLUMNS if b in series)
        first = math.floor(start.timestamp())
        if first % step == 0:
            for bucket in range(first // step, -(-math.floor(end.timestamp()) // step)):
                pair = (bucket, *(series[b] for b in shape))
                covering[index[shape]].setdefault(pair, []).append(i)
    params: dict[str, Any] = {"ex_metrics": [e[2] for e in episodes]}
    last = max((-(-math.floor(e[1].timestamp()) // step) + 1 for e in episodes), default=0)  # past any call's bucket
    for j, shape in enumerate(shapes):
        pairs = sorted(covering[j])
        keys = [pair[0] for pair in pairs]
        for n, b in enumerate(shape, 1):
            values = sorted({pair[n] for pair in pairs})
            rank = {v: r for r, v in enumerate(values, 1)}
            params[f"ex{j}_v_{b}"], params[f"ex{j}_r_{b}"] = values, list(range(1, len(values) + 1))
            params[f"ex{j}_m_{b}"] = len(values) + 1
            keys = [key * (len(values) + 1) + rank[pair[n]] for key, pair in zip(keys, pairs, strict=True)]
        if last * math.prod(params[f"ex{j}_m_{b}"] for b in shape) >= 2**64:  # any call's number fits UInt64
            raise ValueError("too many episodes' series to number their example calls")  # 2^40 at 5 minutes
        params[f"ex{j}_k"], params[f"ex{j}_s"] = keys, list(range(1, len(pairs) + 1))
        params[f"ex{j}_eps"] = [covering[j][pair] for pair in pairs]
        service = shape.index("service") + 1 if "service" in shape else 0
        hours = {(pair[service] if service else "", _hour(pair[0] * step)) for pair in pairs}
        params[f"ex{j}_hours"] = sorted(hours) if service else sorted(h for _, h in hours)
    return params


def _hour(epoch: int) -> str:
    return datetime.fromtimestamp(epoch - epoch % 3600, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def example_shapes(series: Sequence[dict[str, str]]) -> list[tuple[str, ...]]:
    """The distinct sets of columns the series name (each in ``COLUMNS``' order)."""
    return sorted({tuple(b for b in COLUMNS if b in s) for s in series})

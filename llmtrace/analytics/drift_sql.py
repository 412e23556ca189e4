"""The SQL behind :mod:`llmtrace.analytics.drift`: every statistic is computed in ClickHouse.

Queries are *wide*: one row per call and side (``side`` 0 = baseline, 1 = current; a call in
both slices of overlapping windows counts on both), one column per metric, one GROUP BY over
the groups with a set of aggregates per metric; Python only unpivots the result.

Three queries, two of them reading the calls' metric columns (each such read of the two
windows costs ~0.3-0.5 s of server CPU at 10M calls, more than the statistics):

1. :func:`sizes_sql` counts the calls per group and side (only the window and group columns);
2. :func:`first_pass_sql` reads every call once for: the calls with a value per metric, group
   and side (the counts reports show), the baseline deciles of each numeric metric, and the
   categorical metrics' statistics (per category counts via ``sumMap``, then the
   Jensen-Shannon distance, base 2 so in [0, 1], and the chi-square statistic of the 2 x k table);
3. :func:`numeric_sql` reads the calls again for the two-sample Kolmogorov-Smirnov test,
   medians and p95s and the PSI over the deciles of (2), which it is given as literals.

Large groups are sampled: a side of a group with more than :data:`SAMPLE` calls (from 1) is
read through a stable hash sample of about that many calls (the statistics' cost grows with
the calls they see, the counts' does not), while the reported counts stay the full ones.
Groups at or under :data:`SAMPLE` calls per side are read whole, so their statistics are
exactly the unsampled ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmtrace.analytics.filters import DIMENSIONS, Filter, sql_time
from llmtrace.analytics.groups import COLUMNS, GENERATES

_TIME = "DateTime64(6, 'UTC')"
PSI_EPSILON = 1e-4  # share floor for an empty bin (epsilon smoothing) so ln(p/q) stays finite
DECILES = "0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9"
_BINS = 10  # values above the 9 deciles fall in bins 0..9
# The KS test sees a hash sample of at most ~this many calls per side and group: its cost grows
# with the sample, while at this size D >= 0.1 (the minimum effect) is always significant. Its
# p-value is the asymptotic one ('asymp'): 'auto' switches to the exact O(n * m) computation
# for samples under 10,000, which is far too slow here, and n >= 30 per side anyway.
KS_SAMPLE = 10000
# Calls per side and group above which the statistics read a hash sample of about this many:
# PSI's decile shares then move by ~0.2 percentage points at most (binomial noise at this size),
# medians and p95s are the 8,192-value reservoir estimate they always were, the KS test sees the
# same-sized sample as unsampled, and a 1-point share change of a chi-square table stays significant.
SAMPLE = 50000
HASH_RANGE = 1_000_000  # h = cityHash64(SpanId) % HASH_RANGE
_KEY_SEPARATOR = "\x1f"

# Per-call numeric metrics, over successful calls only (a failed call has no real latency or output).
NUMERIC: dict[str, str] = {
    "latency_ms": "if(IsError, NULL, DurationUs / 1000)",
    "ttft_ms": "if(IsError OR TtftUs IS NULL, NULL, TtftUs / 1000)",
    "input_tokens": "if(IsError, NULL, toFloat64(InputTokens))",
    "output_tokens": "if(IsError, NULL, toFloat64(OutputTokens))",
    "cost_per_call_usd": "if(IsError, NULL, CostUsd)",
    "output_tokens_per_s": "if(IsError OR OutputTokensPerSecond <= 0, NULL, OutputTokensPerSecond)",
    "output_input_ratio": "if(IsError OR InputTokens = 0, NULL, OutputTokens / InputTokens)",
}
# Finish reasons in each provider's own vocabulary ("openai: length", "anthropic: end_turn",
# "google: SAFETY"): providers do not mean the same by their values (Anthropic's "refusal" is
# not Gemini's "RECITATION"), so a mapping to one vocabulary would blur or invent changes. The
# chi-square is stratified by provider (STRATIFIED), so a change of provider mix alone is not
# a finish-reason drift.
FINISH_REASON = "concat(toString(Provider), ': ', if(FinishReason = '', '(none)', toString(FinishReason)))"
STRATIFIED = frozenset({"finish_reason"})  # categories are "stratum: value"
# Categorical metrics. Rates are a flag per call (NULL where the rate does not apply) and
# report the share of calls where it is true; mixes are a category per call.
RATES: dict[str, str] = {
    "error_rate": "IsError = 1",
    "truncation_rate": "if(IsError, NULL, lower(FinishReason) IN ('length', 'max_tokens'))",
    "tool_call_rate": "if(IsError, NULL, HasToolCalls = 1)",
    "empty_output_rate": f"if(IsError OR NOT ({GENERATES}), NULL, OutputTokens = 0)",
}
MIXES: dict[str, str] = {
    "error_type": "if(ErrorType = '', '(none)', toString(ErrorType))",
    "finish_reason": f"if(IsError, NULL, {FINISH_REASON})",
    "model_mix": "toString(RequestModel)",
}
CATEGORICAL: dict[str, str] = {**RATES, **MIXES}
BINARY = frozenset(RATES)
# When each metric above is not NULL, in terms of per-call flags that read no more than a flag or
# a null map each; tests hold it equal to ``countIf(metric IS NOT NULL)``.
FLAGS: dict[str, str] = {
    "ok": "IsError = 0",
    "ttft": "TtftUs IS NOT NULL",
    "priced": "CostUsd IS NOT NULL",
    "speed": "OutputTokensPerSecond > 0",
    "has_input": "InputTokens != 0",
}
PRESENT: dict[str, str] = {
    "latency_ms": "ok",
    "ttft_ms": "ok AND ttft",
    "input_tokens": "ok",
    "output_tokens": "ok",
    "cost_per_call_usd": "ok AND priced",
    "output_tokens_per_s": "ok AND speed",
    "output_input_ratio": "ok AND has_input",
    "error_rate": "1",
    "truncation_rate": "ok",
    "tool_call_rate": "ok",
    "empty_output_rate": "ok",
    "error_type": "1",
    "finish_reason": "ok",
    "model_mix": "1",
}


@dataclass(frozen=True)
class Slice:
    """One side of a comparison: a time window, optionally narrowed to one value of a dimension
    (``dimension="release", value="v1.5.0"``)."""

    start: datetime
    end: datetime
    dimension: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"slice ends ({self.end}) before it starts ({self.start}); swap them")
        if self.dimension is not None and self.dimension not in COLUMNS:
            raise ValueError(f"cannot compare on {self.dimension!r}; choose from {', '.join(COLUMNS)}")

    def condition(self, prefix: str) -> str:
        cond = f"Timestamp >= {{{prefix}_start:{_TIME}}} AND Timestamp < {{{prefix}_end:{_TIME}}}"
        if self.dimension is not None:
            cond += f" AND {COLUMNS[self.dimension]} = {{{prefix}_value:String}}"
        return cond

    def params(self, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {f"{prefix}_start": sql_time(self.start), f"{prefix}_end": sql_time(self.end)}
        if self.dimension is not None:
            out[f"{prefix}_value"] = self.value or ""
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "dimension": self.dimension,
            "value": self.value,
        }

    @property
    def label(self) -> str:
        window = f"{self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} UTC"
        return f"{self.dimension}={self.value} ({window})" if self.dimension else window


@dataclass(frozen=True)
class Query:
    """The pieces every drift query shares: sides, grouping and dimension filters."""

    baseline: Slice
    current: Slice
    by: tuple[str, ...]
    f: Filter | None = None

    @property
    def keys(self) -> str:
        return ", ".join(["_all", *(f"g_{b}" for b in self.by)])

    def params(self, **extra: Any) -> dict[str, Any]:
        params = {**self.baseline.params("b"), **self.current.params("c")}
        if self.f is not None:
            params.update({name: list(getattr(self.f, name)) for name in DIMENSIONS if getattr(self.f, name)})
        return {**params, **extra}

    def calls(self, columns: dict[str, str], sampled: bool = True) -> str:
        """One row per call and side it belongs to: _all, g_<by>..., side, h (a stable hash of
        the span in [0, HASH_RANGE), for sampling), ``lim`` (the group and side's sample
        threshold: calls with h < lim are read; HASH_RANGE reads all) and one column per entry
        of ``columns``. ``sampled`` needs the ``sample_keys`` / ``sample_limits`` parameters
        (:func:`sample_params`)."""
        in_base, in_cur = self.baseline.condition("b"), self.current.condition("c")
        groups = "".join(f", toString({COLUMNS[b]}) AS g_{b}" for b in self.by)
        values = "".join(f",\n                   {expr} AS {name}" for name, expr in columns.items())
        dims = self.f.dimension_clause() if self.f is not None else ""
        key = f"arrayStringConcat([toString(side){''.join(f', g_{b}' for b in self.by)}], char(31))"
        lim = (
            f"transform({key}, {{sample_keys:Array(String)}}, {{sample_limits:Array(UInt32)}}, toUInt32({HASH_RANGE}))"
            if sampled
            else f"toUInt32({HASH_RANGE})"
        )
        # the sample is taken in WHERE, so the metric expressions are computed for sampled calls only
        where = " AND h < lim" if sampled else ""
        # ARRAY JOIN copies every column read for every call before WHERE can drop one: only
        # slices that may share a call need it
        side = f"if({in_cur}, 1, 0) AS side" if self.disjoint else "side"
        both = f"""
            ARRAY JOIN arrayFilter(s -> s >= 0, [if({in_base}, 0, -1), if({in_cur}, 1, -1)]) AS side"""
        return f"""
            SELECT 0 AS _all{groups}, {side}, cityHash64(SpanId) % {HASH_RANGE} AS h, {lim} AS lim{values}
            FROM llm_calls{"" if self.disjoint else both}
            WHERE (({in_base}) OR ({in_cur})){dims}{where}"""

    @property
    def disjoint(self) -> bool:
        """No call can be on both sides: the windows do not overlap, or the sides narrow one
        dimension to two different values."""
        b, c = self.baseline, self.current
        apart = b.end <= c.start or c.end <= b.start
        return apart or (b.dimension is not None and b.dimension == c.dimension and b.value != c.value)


def sizes_sql(q: Query, numeric: Sequence[str], categorical: Sequence[str]) -> str:
    """Per group and side: ``n`` calls, ``vn{i}`` calls with numeric metric i and ``vc{i}``
    calls with categorical metric i (all unsampled): the counts reports show, and from ``n``
    the sample thresholds. Counted by :data:`PRESENT` (a few flag and null-map columns), not by
    computing the metrics: this query reads every call of both windows."""
    counts = "".join(f", countIf({PRESENT[m]}) AS vn{i}" for i, m in enumerate(numeric))
    counts += "".join(f", countIf({PRESENT[m]}) AS vc{i}" for i, m in enumerate(categorical))
    return f"""
        SELECT {q.keys}, side, count() AS n{counts}
        FROM ({q.calls(FLAGS, sampled=False)})
        GROUP BY {q.keys}, side"""


def first_pass_sql(q: Query, numeric: Sequence[str], categorical: Sequence[str]) -> str:
    """One row per group, over the sample: per numeric metric i pb{i} / pc{i} (calls with a value
    per side) and pe{i} (the baseline deciles): :func:`numeric_sql`'s input; per categorical
    metric i the statistics of :func:`_categorical_stats`."""
    keys = q.keys
    columns = {**_numeric_columns(numeric), **_categorical_columns(categorical)}
    parts = [
        f"countIf(side = 0 AND m{i} IS NOT NULL) AS pb{i}, countIf(side = 1 AND m{i} IS NOT NULL) AS pc{i},"
        f" arrayResize(arrayDistinct(quantilesIf({DECILES})(m{i}, side = 0)), 9, inf) AS pe{i}"
        for i in range(len(numeric))
    ]
    parts += [_rate_counts(i) if m in RATES else _mix_counts(i) for i, m in enumerate(categorical)]
    stats = "".join(f",\n{_categorical_stats(i, m in STRATIFIED)}" for i, m in enumerate(categorical))
    return f"""
        WITH calls AS ({q.calls(columns)})
        SELECT *{stats} FROM (SELECT {keys}, {", ".join(parts)} FROM calls GROUP BY {keys})"""


def sample_key(side: int, group: Sequence[str]) -> str:
    """The key :meth:`Query.calls` looks a group and side's threshold up by."""
    return _KEY_SEPARATOR.join([str(side), *group])


def sample_params(sizes: Sequence[tuple[int, Sequence[str], int]]) -> dict[str, Any]:
    """``sample_keys`` / ``sample_limits`` for (side, group values, calls) triples: a side of a
    group with more than :data:`SAMPLE` calls is read where h < HASH_RANGE * SAMPLE / calls."""
    big = [(sample_key(side, group), HASH_RANGE * SAMPLE // n) for side, group, n in sizes if n > SAMPLE]
    return {"sample_keys": [k for k, _ in big], "sample_limits": [v for _, v in big]}


def _numeric_columns(metrics: Sequence[str]) -> dict[str, str]:
    return {f"m{i}": f"CAST({NUMERIC[m]}, 'Nullable(Float64)')" for i, m in enumerate(metrics)}


def numeric_sql(q: Query, metrics: Sequence[str], prep: Sequence[dict[str, Any]]) -> str:
    """One row per group; for metric number i: nb{i}, nc{i} (calls with a value per side in the
    sample), qb{i} / qc{i} (p50, p95 per side), ksd{i} / ksp{i} (KS distance and p-value; NULL
    unless both sides have calls) and psi{i} over the baseline deciles.

    ``prep`` holds :func:`first_pass_sql`'s rows (pb, pc, pe per metric): the deciles are
    written into the statement as literals (numbers ClickHouse computed, printed so they read
    back exactly), the groups' values are bound as ``prep_g_<by>`` (:func:`prep_params`)."""
    keys = q.keys
    arrays = [f"CAST([{', '.join('0' for _ in prep)}], 'Array(UInt8)')"]
    arrays += [f"{{prep_g_{b}:Array(String)}}" for b in q.by]
    names = ["_all", *(f"g_{b}" for b in q.by)]
    for i in range(len(metrics)):
        for name in (f"pb{i}", f"pc{i}"):
            arrays.append(f"CAST([{', '.join(str(int(row[name])) for row in prep)}], 'Array(UInt64)')")
            names.append(name)
        edges = ", ".join("[" + ", ".join(_float(x) for x in row[f"pe{i}"]) + "]" for row in prep)
        arrays.append(f"CAST([{edges}], 'Array(Array(Float64))')")
        names.append(f"pe{i}")
    given = ", ".join(f"tupleElement(p, {k + 1}) AS {name}" for k, name in enumerate(names))
    stats = ",\n".join(_numeric_stats(i) for i in range(len(metrics)))
    psi = ", ".join(
        f"{_psi(i)}, tupleElement(ks{i}, 1) AS ksd{i}, tupleElement(ks{i}, 2) AS ksp{i}" for i in range(len(metrics))
    )
    return f"""
        WITH
        calls AS ({q.calls(_numeric_columns(metrics))}),
        prep AS (SELECT {given} FROM (SELECT arrayJoin(arrayZip({", ".join(arrays)})) AS p))
        SELECT *, {psi} FROM (
            SELECT {keys}, {stats}
            FROM calls INNER JOIN prep USING ({keys})
            GROUP BY {keys}
        )"""


def prep_params(q: Query, prep: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The group values :func:`numeric_sql` binds, in ``prep``'s order."""
    return {f"prep_g_{b}": [str(row[f"g_{b}"]) for row in prep] for b in q.by}


def _float(value: Any) -> str:
    """A Float64 literal that reads back as exactly ``value`` (repr round-trips; inf, nan as such)."""
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return repr(number)


def _numeric_stats(i: int) -> str:
    # prep's pb/pc (calls per side) and pe (baseline decile edges) are constant within a group
    both = f"pb{i} > 0 AND pc{i} > 0"
    # KS_SAMPLE of the side's calls (of its sample, which holds the calls with h < lim)
    sample = f"h < lim * least(1, {KS_SAMPLE} / if(side = 0, pb{i}, pc{i}))"
    in_bin = "toUInt8(" + " + ".join(f"(ifNull(m{i}, 0) > pe{i}[{k}])" for k in range(1, 10)) + ")"
    return (
        f"any(pb{i}) AS nb{i}, any(pc{i}) AS nc{i},"
        f" quantilesIf(0.5, 0.95)(m{i}, side = 0) AS qb{i}, quantilesIf(0.5, 0.95)(m{i}, side = 1) AS qc{i},"
        f" kolmogorovSmirnovTestOrNullIf('two-sided', 'asymp')(assumeNotNull(m{i}), side,"
        f" m{i} IS NOT NULL AND {both} AND {sample}) AS ks{i},"
        f" sumResample(0, {_BINS}, 1)(toUInt64(side = 0 AND m{i} IS NOT NULL), {in_bin}) AS bb{i},"
        f" sumResample(0, {_BINS}, 1)(toUInt64(side = 1 AND m{i} IS NOT NULL), {in_bin}) AS bc{i}"
    )


def _psi(i: int) -> str:
    """PSI = sum over bins of (c - b) ln(c / b), shares floored at PSI_EPSILON."""
    shares = "arrayMap(x -> greatest(x / greatest({n}, 1), " + str(PSI_EPSILON) + "), {bins})"
    base, cur = shares.format(n=f"nb{i}", bins=f"bb{i}"), shares.format(n=f"nc{i}", bins=f"bc{i}")
    return f"arraySum(arrayMap((b, c) -> (c - b) * log(c / b), {base}, {cur})) AS psi{i}"


def _categorical_columns(metrics: Sequence[str]) -> dict[str, str]:
    return {
        f"c{i}": f"CAST({RATES[m]}, 'Nullable(UInt8)')" if m in RATES else f"CAST({MIXES[m]}, 'Nullable(String)')"
        for i, m in enumerate(metrics)
    }


def _mix_counts(i: int) -> str:
    return f"sumMapIf([assumeNotNull(c{i})], [toUInt64(side = 0)], [toUInt64(side = 1)], c{i} IS NOT NULL) AS t{i}"


def _rate_counts(i: int) -> str:
    """The same (categories, baseline counts, current counts) shape from four plain counts."""
    count = "countIf(side = {side} AND c{i} = {flag})"
    per_side = ["[" + ", ".join(count.format(side=side, i=i, flag=flag) for flag in (1, 0)) + "]" for side in (0, 1)]
    return f"(['true', 'false'], {per_side[0]}, {per_side[1]}) AS t{i}"


def _categorical_stats(i: int, stratified: bool = False) -> str:
    keys, b, c = f"t{i}.1", f"t{i}.2", f"t{i}.3"
    nb, nc = f"arraySum({b})", f"arraySum({c})"
    p, q = f"arrayMap(x -> x / greatest({nb}, 1), {b})", f"arrayMap(x -> x / greatest({nc}, 1), {c})"
    js = f"sqrt(greatest(0.5 * {_half_kl(p, q)} + 0.5 * {_half_kl(q, p)}, 0))"  # base-2 JS divergence -> distance
    chi2 = f"arraySum(arrayMap((x, y) -> {_chi_term('x', nb, nb, nc)} + {_chi_term('y', nc, nb, nc)}, {b}, {c}))"
    dof = f"toInt64(arrayCount((x, y) -> x + y > 0, {b}, {c})) - 1"
    if stratified:
        chi2, dof = _stratified_chi2(keys, b, c)
    diffs = f"arrayMap((x, y) -> abs(y - x), {p}, {q})"
    growth = f"arrayMap((x, y) -> y - x, {p}, {q})"
    # the largest change; ties (two categories trading places) go to 'true', then to the one that grew
    top = f"arrayReverseSort((k, d, g) -> (round(d, 9), k = 'true', g), {keys}, {diffs}, {growth})[1]"
    return (
        f"{nb} AS nb{i}, {nc} AS nc{i}, {js} AS js{i}, {chi2} AS chi2_{i},"
        f" {dof} AS dof{i},"
        f" arrayMax({diffs}) AS change{i}, {top} AS top{i},"
        f" {p}[indexOf({keys}, top{i})] AS topb{i}, {q}[indexOf({keys}, top{i})] AS topc{i},"
        f" {_share_of_true(keys, p)} AS rb{i}, {_share_of_true(keys, q)} AS rc{i}"
    )


def _stratified_chi2(keys: str, b: str, c: str) -> tuple[str, str]:
    """Chi-square and degrees of freedom of the 2 x k table within each stratum (the part of
    a category before ': '), summed over strata: each cell's expectation uses its stratum's
    side totals, so only changes within a stratum count."""
    stratum = "splitByString(': ', {k})[1]"
    side_total = "arraySum(arrayMap((k2, v2) -> if({s2} = {s}, v2, 0), {keys}, {v}))"
    totals = {
        side: side_total.format(s2=stratum.format(k="k2"), s=stratum.format(k="k"), keys=keys, v=v)
        for side, v in (("b", b), ("c", c))
    }
    n = f"({totals['b']} + {totals['c']})"
    term = "if({e} > 0, pow({o} - {e}, 2) / {e}, 0)"
    cell = " + ".join(
        term.format(o=o, e=f"({totals[side]} * (x + y) / greatest({n}, 1))") for side, o in (("b", "x"), ("c", "y"))
    )
    chi2 = f"arraySum(arrayMap((k, x, y) -> {cell}, {keys}, {b}, {c}))"
    used = f"arrayFilter((k, x, y) -> x + y > 0, {keys}, {b}, {c})"
    strata = f"length(arrayDistinct(arrayMap(k -> {stratum.format(k='k')}, {used})))"
    return chi2, f"toInt64(length({used})) - {strata}"


def _half_kl(p: str, q: str) -> str:
    """sum p log2(p / m) with m = (p + q) / 2 and 0 log 0 = 0."""
    return f"arraySum(arrayMap((x, y) -> if(x > 0, x * log2(2 * x / (x + y)), 0), {p}, {q}))"


def _chi_term(observed: str, n: str, nb: str, nc: str) -> str:
    """(O - E)^2 / E for one cell; E = side total * category total / grand total."""
    expected = f"({n} * (x + y) / ({nb} + {nc}))"
    return f"if({expected} > 0, pow({observed} - {expected}, 2) / {expected}, 0)"


def _share_of_true(keys: str, shares: str) -> str:
    return f"if(indexOf({keys}, 'true') = 0, 0, {shares}[indexOf({keys}, 'true')])"


def distribution_sql(q: Query, metric: str, group_where: str, bins: int) -> str:
    """Shares of each side in ``bins`` equal-width bins between the pooled 1st and 99th
    percentiles (values outside go to the edge bins), for overlaid histograms."""
    calls = q.calls({"v": f"CAST({NUMERIC[metric]}, 'Nullable(Float64)')"}, sampled=False)
    return f"""
        WITH
        calls AS (SELECT * FROM ({calls}) WHERE v IS NOT NULL {group_where}),
        (SELECT quantiles(0.01, 0.99)(v) FROM calls) AS r,
        greatest((r[2] - r[1]) / {bins}, 1e-9) AS width
        SELECT side, least(greatest(toInt64(floor((v - r[1]) / width)), 0), {bins - 1}) AS bin,
               r[1] + (bin + 0.5) * width AS x, count() AS calls,
               calls / sum(calls) OVER (PARTITION BY side) AS share
        FROM calls
        GROUP BY side, bin ORDER BY side, bin"""

"""The SQL behind :mod:`llmtrace.analytics.compare`: per-side sufficient statistics from ClickHouse.

Every query starts from the same *sided* calls: the calls in the filter's window that match the
baseline's selector (side 0) or the candidate's (side 1); a call matching both counts on both.
ClickHouse returns counts, means, sample variances, exact quantiles at the levels the
confidence sequences ask for, finish-reason counts and score statistics; Python only does the
interval arithmetic (:mod:`llmtrace.analytics.compare_stats`). Metric expressions are drift's
(:mod:`llmtrace.analytics.drift_sql`), so both views define a metric the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmtrace.analytics.drift_sql import NUMERIC, RATES
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.groups import COLUMNS, parse_by

__all__ = [
    "MEANS",
    "QUANTILES",
    "RATE_METRICS",
    "SELECTOR_COLUMNS",
    "Selector",
    "Sides",
    "finish_sql",
    "quantile_sql",
    "scores_sql",
    "stats_sql",
]

# What a selector may name: drift's grouping columns, the user and session of a call, and its
# automatic prompt version (hashes of the system instructions and of the message template).
SELECTOR_COLUMNS: dict[str, str] = {
    **COLUMNS,
    "user": "UserId",
    "session": "SessionId",
    "system_hash": "PromptSystemHash",  # automatic prompt versions (schemas/012)
    "template_hash": "PromptTemplateHash",
}
# Mean metrics (over successful calls that have a value): name -> drift's per-call expression.
MEANS: dict[str, str] = {
    "cost_per_call_usd": NUMERIC["cost_per_call_usd"],
    "input_tokens": NUMERIC["input_tokens"],
    "output_tokens": NUMERIC["output_tokens"],
}
RATE_METRICS: dict[str, str] = {name: RATES[name] for name in ("error_rate", "truncation_rate")}
# Quantile metrics: the per-call value and the levels compared.
QUANTILES: dict[str, tuple[str, tuple[float, ...]]] = {
    "latency": (NUMERIC["latency_ms"], (0.5, 0.95)),
    "ttft": (NUMERIC["ttft_ms"], (0.5, 0.95)),
}
# The llm_calls columns the expressions above read.
_COLUMNS = "IsError, FinishReason, HasToolCalls, OutputTokens, InputTokens, CostUsd, DurationUs, TtftUs"


@dataclass(frozen=True)
class Selector:
    """One side of a comparison: ``release=v2`` or ``release=v2,model=gpt-4o`` (all must hold)."""

    values: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """``name=value[,name=value...]`` with names from :data:`SELECTOR_COLUMNS` (ValueError otherwise)."""
        pairs: list[tuple[str, str]] = []
        for part in (text or "").split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"cannot read {part.strip()!r}: use name=value, e.g. release=v2 or model=gpt-4o")
            name, value = (s.strip() for s in part.split("=", 1))
            key = name.lower() if name.lower() in SELECTOR_COLUMNS else _dimension(name)
            if not value:
                raise ValueError(f"{name}= needs a value, e.g. {name}=v2")
            pairs.append((key, value))
        if not pairs:
            raise ValueError("a side needs at least one name=value, e.g. --baseline release=v1")
        return cls(tuple(pairs))

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values)

    def condition(self, prefix: str) -> str:
        return " AND ".join(
            f"toString({SELECTOR_COLUMNS[k]}) = {{{prefix}{i}:String}}" for i, (k, _) in enumerate(self.values)
        )

    def params(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}{i}": v for i, (_, v) in enumerate(self.values)}


def _dimension(name: str) -> str:
    try:
        return parse_by(name)[0]
    except (ValueError, IndexError):
        raise ValueError(f"cannot compare on {name!r}; choose from {', '.join(SELECTOR_COLUMNS)}") from None


@dataclass(frozen=True)
class Sides:
    """The baseline and candidate selectors within one filter (window and dimension filters)."""

    baseline: Selector
    candidate: Selector
    f: Filter

    def params(self, **extra: Any) -> dict[str, Any]:
        return {**self.f.params(), **self.baseline.params("sb"), **self.candidate.params("sc"), **extra}

    def calls(self, columns: str) -> str:
        """One row per call and side it is on: ``side`` (0 baseline, 1 candidate) and ``columns``."""
        b, c = self.baseline.condition("sb"), self.candidate.condition("sc")
        return f"""
            SELECT arrayJoin(arrayFilter(s -> s >= 0, [if({b}, 0, -1), if({c}, 1, -1)])) AS side, {columns}
            FROM llm_calls WHERE {self.f.where()} AND (({b}) OR ({c}))"""


def stats_sql(sides: Sides) -> str:
    """Per side: calls, rate counts (``x_<rate>`` of ``n_<rate>``), mean metrics' count/mean/variance."""
    parts = ["side", "count() AS calls"]
    for name, expr in RATE_METRICS.items():
        parts.append(f"countIf(({expr}) IS NOT NULL) AS n_{name}, countIf(({expr}) = 1) AS x_{name}")
    for name, expr in MEANS.items():
        parts.append(f"count({expr}) AS n_{name}, avg({expr}) AS mean_{name}, varSamp({expr}) AS var_{name}")
    for name, (expr, _) in QUANTILES.items():
        parts.append(f"count({expr}) AS n_{name}")
    return f"SELECT {', '.join(parts)} FROM ({sides.calls(_COLUMNS)}) GROUP BY side ORDER BY side"


def quantile_sql(sides: Sides, levels: Mapping[tuple[str, int], list[float]]) -> tuple[str, dict[str, Any]]:
    """Exact quantiles of each (metric, side) at its levels: the query and its bindings.

    Levels are bound parameters (``{q_latency_0_1:Float64}``), computed from the counts."""
    parts, params = [], {}
    for (name, side), values in levels.items():
        names = [f"q_{name}_{side}_{i}" for i in range(len(values))]
        params.update(dict(zip(names, values, strict=True)))
        bound = ", ".join(f"{{{n}:Float64}}" for n in names)
        expr = QUANTILES[name][0]
        parts.append(f"quantilesExactIf({bound})({expr}, side = {side} AND ({expr}) IS NOT NULL) AS q_{name}_{side}")
    return f"SELECT {', '.join(parts)} FROM ({sides.calls(_COLUMNS)})", sides.params(**params)


def finish_sql(sides: Sides) -> str:
    """Successful calls per side, provider and finish reason as the provider spelled it."""
    calls = sides.calls("IsError, Provider, FinishReason")
    return f"""
        SELECT side, toString(Provider) AS provider, if(FinishReason = '', '(none)', toString(FinishReason)) AS reason,
               count() AS calls
        FROM ({calls}) WHERE IsError = 0
        GROUP BY side, provider, reason ORDER BY provider, reason, side"""


def scores_sql(sides: Sides) -> str:
    """Per score name and side: count, mean and sample variance of numeric and boolean scores.

    A score on an LLM call counts for that call's side; a score on a trace or on a non-LLM span
    counts once for each side the trace's calls are on (as in :mod:`llmtrace.analytics.scores`).
    One pass: the sided calls grouped per trace, joined to the scores given since the window began
    (a score comes after its call). Trace and span ids are joined as 64-bit hashes: grouping and
    joining on them is ~3x faster than on the hex strings (1M calls: 1.6 s against 4.2 s), and a
    collision among a window's ids is a ~1e-8 event that would move one score."""
    return f"""
        WITH traces AS (
            SELECT cityHash64(TraceId) AS trace, groupArray(cityHash64(SpanId)) AS spans, groupArray(side) AS sides
            FROM ({sides.calls("TraceId, SpanId")}) GROUP BY trace)
        SELECT toString(s.Name) AS name,
               arrayJoin(if(has(t.spans, cityHash64(s.SpanId)),
                            arrayFilter((x, span) -> span = cityHash64(s.SpanId), t.sides, t.spans),
                            arrayDistinct(t.sides))) AS side,
               count() AS n, avg(s.Value) AS mean, varSamp(s.Value) AS var
        FROM llm_scores AS s INNER JOIN traces AS t ON t.trace = cityHash64(s.TraceId)
        WHERE s.StringValue = '' AND s.Timestamp >= {{start:DateTime64(6, 'UTC')}}
        GROUP BY name, side ORDER BY name, side"""

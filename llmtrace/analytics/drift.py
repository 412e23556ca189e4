"""Drift: does the current traffic look like the baseline, per group and metric?

A :class:`Comparison` has two :class:`Slice` s: the previous period of equal length, a fixed
window, or one value of a dimension against another (``release=v1.4.0`` vs
``release=v1.5.0``, prompt versions, models) over the same window. :func:`compare` runs three
queries (see :mod:`llmtrace.analytics.drift_sql`; all statistics are computed in ClickHouse)
and returns a :class:`DriftReport` with one :class:`MetricDrift` per group and metric.

Verdicts (``none`` / ``moderate`` / ``major`` / ``insufficient_data``):

* either side below ``min_samples`` calls (default 30) -> ``insufficient_data``;
* numeric metrics (latency, TTFT, tokens, cost per call, output tokens/s, output/input
  ratio): ``none`` unless the KS test is significant (p < 0.01) AND the KS distance is at
  least 0.1 (the minimum effect size: huge samples make trivial shifts significant); then
  ``major`` if PSI >= 0.25, ``moderate`` if PSI >= 0.1 or the p95 moved by 30% or more;
* categorical metrics (error rate and types, finish reasons, truncation, tool calls, empty
  outputs, model mix): ``none`` unless the chi-square test is significant (p < 0.01) AND
  some category's share moved by at least 1 percentage point; then ``major`` if the
  Jensen-Shannon distance is >= 0.15, ``moderate`` if >= 0.05.

PSI is computed over the baseline's deciles with empty-bin shares floored at 1e-4.

A moderate or major verdict carries a ``direction``: ``worse`` or ``better`` for metrics with
a better side (latency, TTFT, cost per call, error/truncation/empty-output rates: higher is
worse; output tokens/s: higher is better), else ``changed``. ``insufficient_data`` results
carry no statistics (all None). Finish reasons are compared in each provider's own
vocabulary (categories ``"anthropic: refusal"``, ``"openai: length"``) with a chi-square
stratified by provider, so a change of provider mix alone is not a finish-reason drift and
no provider's values are merged with another's. ``by="auto"`` means by service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.chi2 import chi2_sf
from llmtrace.analytics.drift_sql import (
    BINARY,
    CATEGORICAL,
    NUMERIC,
    Query,
    Slice,
    distribution_sql,
    first_pass_sql,
    numeric_sql,
    prep_params,
    sample_params,
    sizes_sql,
)
from llmtrace.analytics.drift_verdicts import (
    DEFAULT_BY,
    MIN_SAMPLES,
    Verdict,
    categorical_verdict,
    direction,
    finish,
    numeric_verdict,
)
from llmtrace.analytics.filters import Filter, utcnow
from llmtrace.analytics.groups import COLUMNS, grouped_frame, json_safe, label, parse_by

__all__ = [
    "CATEGORICAL",
    "COLUMNS",
    "NUMERIC",
    "Comparison",
    "DriftReport",
    "MetricDrift",
    "Slice",
    "categorical_verdict",
    "compare",
    "dimension_values",
    "direction",
    "distribution",
    "numeric_verdict",
    "values_oldest_first",
]

VERDICT_ORDER: dict[str, int] = {"major": 0, "moderate": 1, "insufficient_data": 2, "none": 3}


@dataclass(frozen=True)
class Comparison:
    """What to compare: ``baseline`` against ``current``."""

    baseline: Slice
    current: Slice

    @classmethod
    def previous_period(
        cls, current: timedelta, baseline: timedelta | None = None, now: datetime | None = None
    ) -> Comparison:
        """The last ``current`` against the ``baseline`` (default: same length) just before it."""
        end = now or utcnow()
        start = end - current
        return cls(Slice(start - (baseline or current), start), Slice(start, end))

    @classmethod
    def of_filter(cls, f: Filter) -> Comparison:
        """The filter's window against the window of equal length before it."""
        return cls(Slice(f.start - f.duration, f.start), Slice(f.start, f.end))

    @classmethod
    def versus(cls, dimension: str, baseline: str, current: str, start: datetime, end: datetime) -> Comparison:
        """Calls with ``dimension=baseline`` against calls with ``dimension=current``, both in [start, end)."""
        return cls(Slice(start, end, dimension, baseline), Slice(start, end, dimension, current))

    def describe(self) -> dict[str, Any]:
        return {"baseline": self.baseline.describe(), "current": self.current.describe()}


@dataclass
class MetricDrift:
    """The verdict for one metric of one group, with the statistics behind it.

    Numeric metrics fill ``psi``, ``ks_*``, medians and p95s (``*_shift`` is the relative
    change, current / baseline - 1); categorical ones fill ``js_distance``, ``chi2*`` and
    ``category`` with its shares (for rates, the share of calls where it is true).
    """

    group: dict[str, str]
    metric: str
    kind: Literal["numeric", "categorical"]
    verdict: Verdict
    reason: str
    baseline_n: int
    current_n: int
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    baseline_median: float | None = None
    current_median: float | None = None
    median_shift: float | None = None
    baseline_p95: float | None = None
    current_p95: float | None = None
    p95_shift: float | None = None
    js_distance: float | None = None
    chi2: float | None = None
    chi2_dof: int | None = None
    chi2_pvalue: float | None = None
    category: str | None = None
    baseline_share: float | None = None
    current_share: float | None = None
    direction: str | None = None  # worse | better | changed, for moderate and major verdicts

    @property
    def flagged(self) -> bool:
        return self.verdict in ("moderate", "major")

    @property
    def series(self) -> str:
        return label(self.group)


@dataclass
class DriftReport:
    """All results of one comparison, most severe first."""

    comparison: Comparison
    by: tuple[str, ...]
    results: list[MetricDrift] = field(default_factory=list)

    def flagged(self) -> list[MetricDrift]:
        return [r for r in self.results if r.flagged]

    def get(self, metric: str, **group: str) -> MetricDrift:
        """The result for ``metric`` in the group with these values (KeyError if absent)."""
        for r in self.results:
            if r.metric == metric and all(r.group.get(k) == v for k, v in group.items()):
                return r
        raise KeyError(f"no drift result for {metric} in {group or 'all'}")

    def to_frame(self) -> pd.DataFrame:
        """One row per result: group columns, then metric, verdict and statistics."""
        return grouped_frame(self.results, MetricDrift, "group", self.by)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.comparison.describe(),
            "by": list(self.by),
            "results": [json_safe(asdict(r)) for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``{"baseline": {...}, "current": {...}, "by": [...], "results": [...]}``; NaN -> null."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def compare(
    client: Any,
    comparison: Comparison,
    by: str | Iterable[str] | None = None,
    f: Filter | None = None,
    *,
    metrics: Iterable[str] | None = None,
    min_samples: int = MIN_SAMPLES,
) -> DriftReport:
    """Compare ``comparison.current`` with ``comparison.baseline`` per group of ``by``.

    ``f`` adds its dimension filters (services, models, ...) to both sides; its window is
    ignored. Raises ``ValueError`` for an unknown metric or group, or when grouping by the
    dimension being compared.
    """
    groups = parse_by(DEFAULT_BY if isinstance(by, str) and by.strip().lower() == "auto" else by)
    query = Query(comparison.baseline, comparison.current, groups, f)
    numeric, categorical = _metrics(metrics, groups, comparison)
    results: list[MetricDrift] = []
    sizes = frame(client, sizes_sql(query, numeric, categorical), query.params()).to_dict("records")
    params = query.params(**sample_params([(int(row["side"]), _key(row, groups), int(row["n"])) for row in sizes]))
    first = frame(client, first_pass_sql(query, numeric, categorical), params).to_dict("records")
    if numeric and first:
        stats = frame(client, numeric_sql(query, numeric, first), {**params, **prep_params(query, first)})
        rows = _full_counts(stats.to_dict("records"), sizes, groups, "vn", len(numeric))
        results += [_numeric(row, i, m, groups, min_samples) for row in rows for i, m in enumerate(numeric)]
    if categorical:
        rows = _full_counts(first, sizes, groups, "vc", len(categorical))
        results += [_categorical(row, i, m, groups, min_samples) for row in rows for i, m in enumerate(categorical)]
    results = [finish(r) for r in results if r.baseline_n or r.current_n]
    order = {m: i for i, m in enumerate([*NUMERIC, *CATEGORICAL])}
    results.sort(key=lambda r: (VERDICT_ORDER[r.verdict], r.series, order[r.metric]))
    return DriftReport(comparison, groups, results)


def distribution(
    client: Any,
    comparison: Comparison,
    metric: str,
    group: dict[str, str] | None = None,
    f: Filter | None = None,
    bins: int = 30,
) -> pd.DataFrame:
    """Baseline and current shares per bin of a numeric ``metric`` (columns: side
    ``baseline``/``current``, bin, x = bin centre, calls, share), for overlaid histograms."""
    if metric not in NUMERIC:
        raise ValueError(f"no distribution for {metric!r}; choose one of {', '.join(NUMERIC)}")
    group = group or {}
    by = parse_by(list(group))
    query = Query(comparison.baseline, comparison.current, by, f)
    where = "".join(f" AND g_{name} = {{gv_{name}:String}}" for name in by)
    params = query.params(**{f"gv_{name}": value for name, value in group.items()})
    df = frame(client, distribution_sql(query, metric, where, bins), params)
    return df.assign(side=df["side"].map({0: "baseline", 1: "current"}))


def dimension_values(client: Any, f: Filter, dimension: str, limit: int = 50) -> list[str]:
    """Values ``dimension`` takes in ``f``'s window, busiest first (for A-vs-B pickers)."""
    column = COLUMNS[parse_by(dimension)[0]]
    sql = f"""
        SELECT toString({column}) AS value, count() AS calls FROM llm_calls
        WHERE {f.where()} AND value != ''
        GROUP BY value ORDER BY calls DESC, value LIMIT {{limit:UInt32}}"""
    return [str(v) for v in frame(client, sql, f.params(limit=limit))["value"]]


def _key(row: dict[str, Any], by: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(row[f"g_{name}"]) for name in by)


def _full_counts(
    rows: list[dict[str, Any]], sizes: list[dict[str, Any]], by: tuple[str, ...], prefix: str, metrics: int
) -> list[dict[str, Any]]:
    """``rows`` with nb{i} / nc{i} set to the unsampled counts ``prefix``{i} of :func:`sizes_sql`'s
    rows: the statistics read a group's sample, reports show all its calls."""
    counts = {(_key(row, by), int(row["side"])): row for row in sizes}
    out = []
    for row in rows:
        full = {**row}
        for side, name in ((0, "nb"), (1, "nc")):
            side_counts = counts.get((_key(row, by), side), {})
            full.update({f"{name}{i}": int(side_counts.get(f"{prefix}{i}", 0)) for i in range(metrics)})
        out.append(full)
    return out


# --------------------------------------------------------------------------- verdicts
def _metrics(wanted: Iterable[str] | None, by: tuple[str, ...], comparison: Comparison) -> tuple[list[str], list[str]]:
    names = list(wanted) if wanted is not None else [*NUMERIC, *CATEGORICAL]
    unknown = [m for m in names if m not in NUMERIC and m not in CATEGORICAL]
    if unknown:
        raise ValueError(f"unknown drift metric(s) {unknown}; choose from {', '.join([*NUMERIC, *CATEGORICAL])}")
    compared = comparison.current.dimension or comparison.baseline.dimension
    if compared is not None and compared in by:
        raise ValueError(f"cannot group by {compared!r} while comparing {compared} values; drop it from --by")
    if comparison.baseline.dimension != comparison.current.dimension:
        raise ValueError("both sides must narrow the same dimension (e.g. release=v1 vs release=v2)")
    constant_model = "model" in by or compared == "model"
    categorical = [m for m in names if m in CATEGORICAL and not (m == "model_mix" and constant_model)]
    return [m for m in names if m in NUMERIC], categorical


def _group(row: dict[str, Any], by: tuple[str, ...]) -> dict[str, str]:
    return {name: str(row[f"g_{name}"]) for name in by}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _pair(value: Any) -> tuple[Any, Any]:
    """(p50, p95) from a quantiles array; (None, None) when the group had no stats row."""
    return (value[0], value[1]) if value is not None and len(value) >= 2 else (None, None)


def _shift(current: float | None, baseline: float | None) -> float | None:
    if current is None or baseline is None or baseline == 0:
        return None
    return current / baseline - 1


def _numeric(row: dict[str, Any], i: int, metric: str, by: tuple[str, ...], min_samples: int) -> MetricDrift:
    q_base, q_cur = _pair(row.get(f"qb{i}")), _pair(row.get(f"qc{i}"))
    result = MetricDrift(
        group=_group(row, by),
        metric=metric,
        kind="numeric",
        verdict="none",
        reason="",
        baseline_n=int(row[f"nb{i}"]),
        current_n=int(row[f"nc{i}"]),
        psi=_num(row.get(f"psi{i}")),
        ks_statistic=_num(row.get(f"ksd{i}")),
        ks_pvalue=_num(row.get(f"ksp{i}")),
        baseline_median=_num(q_base[0]),
        current_median=_num(q_cur[0]),
        baseline_p95=_num(q_base[1]),
        current_p95=_num(q_cur[1]),
    )
    result.median_shift = _shift(result.current_median, result.baseline_median)
    result.p95_shift = _shift(result.current_p95, result.baseline_p95)
    result.verdict, result.reason = numeric_verdict(result, min_samples)
    return result


def _categorical(row: dict[str, Any], i: int, metric: str, by: tuple[str, ...], min_samples: int) -> MetricDrift:
    binary = metric in BINARY
    chi2, dof = _num(row.get(f"chi2_{i}")), int(row.get(f"dof{i}") or 0)
    result = MetricDrift(
        group=_group(row, by),
        metric=metric,
        kind="categorical",
        verdict="none",
        reason="",
        baseline_n=int(row[f"nb{i}"]),
        current_n=int(row[f"nc{i}"]),
        js_distance=_num(row.get(f"js{i}")),
        chi2=chi2,
        chi2_dof=dof,
        chi2_pvalue=chi2_sf(chi2, dof) if chi2 is not None and dof > 0 else None,
        category="true" if binary else str(row.get(f"top{i}")),
        baseline_share=_num(row.get(f"rb{i}" if binary else f"topb{i}")),
        current_share=_num(row.get(f"rc{i}" if binary else f"topc{i}")),
    )
    max_change = _num(row.get(f"change{i}")) or 0.0
    result.verdict, result.reason = categorical_verdict(result, max_change, min_samples)
    return result


def values_oldest_first(client: Any, f: Filter, dimension: str, limit: int = 50) -> list[str]:
    """Values ``dimension`` takes in ``f``'s window, by when each first appeared (for release
    pickers: comparing the one before the newest with the newest, older -> newer)."""
    column = COLUMNS[parse_by(dimension)[0]]
    sql = f"""
        SELECT toString({column}) AS value, min(Timestamp) AS first FROM llm_calls
        WHERE {f.where()} AND value != ''
        GROUP BY value ORDER BY first, value LIMIT {{limit:UInt32}}"""
    return [str(v) for v in frame(client, sql, f.params(limit=limit))["value"]]

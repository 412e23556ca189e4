"""Compare a candidate with a baseline and say, per metric, whether it is better, worse or no different.

Blue/green and canary releases ask one question: is the new release (prompt version, model)
worse than the old one on what users and budgets feel? :func:`compare` answers per metric with
the two values, the difference (candidate - baseline) with an always-valid confidence interval
(:mod:`llmtrace.analytics.compare_stats`: the mSPRT confidence sequence, so a canary may be
judged at every look while traffic flows) and a verdict:

* ``worse`` / ``better``: the interval excludes zero, on the bad / good side of the metric;
* ``changed``: the interval excludes zero for a metric with no better side (token counts,
  the finish-reason mix);
* ``no_evidence``: the interval covers zero (or the change is below ``min_effect``);
* ``insufficient_data``: fewer than ``min_samples`` values on a side.

Metrics: cost per call, latency p50/p95, TTFT p50/p95 (streamed calls), error rate, truncation
rate, input/output tokens (successful calls), every numeric or boolean score in ``llm_scores``
(mean per name; higher is better unless named in ``lower_is_better``), and the finish-reason mix
per provider (each provider's own vocabulary: a chi-square test of the 2 x k table, and a
category whose share's always-valid interval excludes zero; both must agree). ``alpha`` is split
evenly over the metrics judged (Bonferroni), so the chance that a report holds any false
verdict stays below ``alpha`` however often it is re-run on growing traffic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.chi2 import chi2_sf
from llmtrace.analytics.compare_sql import (
    MEANS,
    QUANTILES,
    RATE_METRICS,
    SELECTOR_COLUMNS,
    Selector,
    Sides,
    finish_sql,
    quantile_sql,
    scores_sql,
    stats_sql,
)
from llmtrace.analytics.compare_stats import (
    Interval,
    mean_difference,
    proportion_difference,
    quantile_difference,
    quantile_levels,
)
from llmtrace.analytics.filters import Filter, SelectionError, describe
from llmtrace.analytics.groups import json_safe

__all__ = ["CompareReport", "MetricComparison", "Selector", "Verdict", "compare", "looks"]

Verdict = Literal["better", "worse", "changed", "no_evidence", "insufficient_data"]
ALPHA = 0.05
MIN_SAMPLES = 30
HIGHER_IS_WORSE = frozenset({"cost_per_call_usd", "error_rate", "truncation_rate"}) | {
    f"{name}_p{round(q * 100)}_ms" for name in QUANTILES for q in QUANTILES[name][1]
}
VERDICT_ORDER = {"worse": 0, "better": 1, "changed": 2, "insufficient_data": 3, "no_evidence": 4}


@dataclass
class MetricComparison:
    """One metric: baseline and candidate values, the difference and its interval, the verdict."""

    metric: str
    kind: Literal["mean", "rate", "quantile", "score", "mix"]
    verdict: Verdict
    baseline: float | None
    candidate: float | None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    relative: float | None = None  # difference / baseline
    baseline_n: int = 0
    candidate_n: int = 0
    p_value: float | None = None  # the finish-reason mix's chi-square p-value
    detail: str = ""


@dataclass
class CompareReport:
    """All metrics of one comparison, worst news first."""

    baseline: Selector
    candidate: Selector
    start: datetime
    end: datetime
    alpha: float
    alpha_per_metric: float
    results: list[MetricComparison] = field(default_factory=list)
    method: str = "mSPRT normal-mixture confidence sequences (always valid), Bonferroni over metrics"

    def with_verdict(self, *verdicts: str) -> list[MetricComparison]:
        return [r for r in self.results if r.verdict in verdicts]

    def get(self, metric: str) -> MetricComparison:
        for r in self.results:
            if r.metric == metric:
                return r
        raise KeyError(f"no compared metric {metric!r}; have {', '.join(r.metric for r in self.results)}")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.results], columns=[f.name for f in fields(MetricComparison)])

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = json_safe(
            {
                "baseline": self.baseline.label,
                "candidate": self.candidate.label,
                "start": self.start,
                "end": self.end,
                "alpha": self.alpha,
                "alpha_per_metric": self.alpha_per_metric,
                "method": self.method,
                "results": [asdict(r) for r in self.results],
            }
        )
        return doc

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def compare(
    client: Any,
    baseline: Selector | str,
    candidate: Selector | str,
    f: Filter,
    *,
    alpha: float = ALPHA,
    min_samples: int = MIN_SAMPLES,
    lower_is_better: Iterable[str] = (),
    min_effect: float = 0.0,
) -> CompareReport:
    """Compare the candidate's calls with the baseline's within ``f`` (its window and filters).

    Raises :class:`~llmtrace.analytics.filters.SelectionError` when a side has no calls (a
    typo must not pass a deploy gate) and ``ValueError`` for a bad selector or alpha.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")
    sides = Sides(_selector(baseline), _selector(candidate), f)
    stats = _by_side(frame(client, stats_sql(sides), sides.params()))
    for side, selector in ((0, sides.baseline), (1, sides.candidate)):
        if not stats[side].get("calls"):
            raise SelectionError(
                f"no calls with {selector.label}{describe(f)} between {f.start:%Y-%m-%d %H:%M} and "
                f"{f.end:%Y-%m-%d %H:%M} UTC; {_known(client, selector, f)}"
            )
    scores = frame(client, scores_sql(sides), sides.params())
    finish = frame(client, finish_sql(sides), sides.params())
    judge = _Judge(min_samples, set(lower_is_better), min_effect)
    providers = sorted(set(finish["provider"])) if not finish.empty else []
    tests = len(MEANS) + len(RATE_METRICS) + sum(len(q) for _, q in QUANTILES.values())
    tests += len(set(scores["name"])) + len(providers)
    judge.alpha = alpha / max(tests, 1)
    results = [judge.mean(name, stats) for name in MEANS]
    results += [judge.rate(name, stats) for name in RATE_METRICS]
    results += _quantiles(client, sides, stats, judge)
    results += [judge.score(name, rows) for name, rows in scores.groupby("name", sort=True)]
    results += [judge.mix(p, finish[finish["provider"] == p]) for p in providers]
    results.sort(key=lambda r: VERDICT_ORDER[r.verdict])
    return CompareReport(sides.baseline, sides.candidate, f.start, f.end, alpha, judge.alpha, results)


def looks(
    client: Any,
    baseline: Selector | str,
    candidate: Selector | str,
    f: Filter,
    metric: str,
    count: int = 8,
    **options: Any,
) -> pd.DataFrame:
    """One ``metric`` judged at ``count`` growing windows from ``f.start`` (as a canary is judged
    while traffic flows): columns end, verdict, difference, ci_low, ci_high, baseline_n, candidate_n.
    The intervals are always valid, so every look may be read; a look with no calls on a side is
    ``insufficient_data``."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rows = []
    for i in range(1, count + 1):
        window = dataclasses.replace(f, end=f.start + (f.end - f.start) * i / count)
        try:
            r = compare(client, baseline, candidate, window, **options).get(metric)
        except SelectionError:
            rows.append({"end": window.end, "verdict": "insufficient_data"})
            continue
        rows.append({"end": window.end, "verdict": r.verdict, "difference": r.difference, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "baseline_n": r.baseline_n, "candidate_n": r.candidate_n})  # fmt: skip
    columns = ["end", "verdict", "difference", "ci_low", "ci_high", "baseline_n", "candidate_n"]
    return pd.DataFrame(rows, columns=columns)


def _known(client: Any, selector: Selector, f: Filter) -> str:
    """The values the selector's names take in the window, to show next to a typo."""
    parts = []
    for name, _ in selector.values:
        sql = f"""SELECT DISTINCT toString({SELECTOR_COLUMNS[name]}) AS v FROM llm_calls
                  WHERE {f.where()} AND v != '' ORDER BY v LIMIT 20"""
        values = [str(v) for v in frame(client, sql, f.params())["v"]]
        parts.append(f"{name} values there: {', '.join(values) or 'none'}")
    return "; ".join(parts)


def _selector(value: Selector | str) -> Selector:
    return value if isinstance(value, Selector) else Selector.parse(value)


def _by_side(df: pd.DataFrame) -> dict[int, dict[str, Any]]:
    rows = {int(r["side"]): r for r in df.to_dict("records")}
    return {side: rows.get(side, {}) for side in (0, 1)}


def _quantiles(client: Any, sides: Sides, stats: dict[int, dict[str, Any]], judge: _Judge) -> list[MetricComparison]:
    """Latency and TTFT quantiles: levels from each side's count, exact quantiles from ClickHouse."""
    wanted: dict[tuple[str, int], list[float]] = {}
    for name, (_, qs) in QUANTILES.items():
        counts = [int(stats[s].get(f"n_{name}") or 0) for s in (0, 1)]
        if min(counts) >= max(judge.min_samples, 1):
            for side in (0, 1):
                wanted[(name, side)] = [v for q in qs for v in _levels(q, counts[side], judge.alpha / 2)]
    values: dict[str, Any] = {}
    if wanted:
        sql, params = quantile_sql(sides, wanted)
        values = frame(client, sql, params).to_dict("records")[0]
    results = []
    for name, (_, qs) in QUANTILES.items():
        counts = [int(stats[s].get(f"n_{name}") or 0) for s in (0, 1)]
        for i, q in enumerate(qs):
            metric = f"{name}_p{round(q * 100)}_ms"
            if (name, 0) not in wanted:
                results.append(judge.too_few(metric, "quantile", counts))
                continue
            triples = [
                _triple(values[f"q_{name}_{s}"][3 * i : 3 * i + 3], wanted[(name, s)][3 * i : 3 * i + 3])
                for s in (0, 1)
            ]
            interval = quantile_difference(triples[0], triples[1])
            results.append(judge.verdict(metric, "quantile", triples[0][1], triples[1][1], interval, counts))
    return results


def _levels(q: float, n: int, alpha: float) -> list[float]:
    low, high = quantile_levels(q, n, alpha)
    return [low, q, high]


def _triple(values: list[float], levels: list[float]) -> tuple[float, float, float]:
    """(low, point, high) quantile values; a level clipped to 0 or 1 bounds nothing (infinite)."""
    low = float(values[0]) if levels[0] > 0 else -float("inf")
    high = float(values[2]) if levels[2] < 1 else float("inf")
    return low, float(values[1]), high


@dataclass
class _Judge:
    """Turns per-side statistics into :class:`MetricComparison` s at one per-metric alpha."""

    min_samples: int
    lower_is_better: set[str]
    min_effect: float
    alpha: float = ALPHA

    def too_few(
        self, metric: str, kind: Any, counts: list[int], values: tuple[Any, Any] = (None, None)
    ) -> MetricComparison:
        detail = f"needs {self.min_samples} values per side (baseline {counts[0]}, candidate {counts[1]})"
        return MetricComparison(metric, kind, "insufficient_data", values[0], values[1], baseline_n=counts[0],
                                candidate_n=counts[1], detail=detail)  # fmt: skip

    def verdict(
        self, metric: str, kind: Any, base: float, cand: float, interval: Interval, counts: list[int],
        better: str = "lower",
    ) -> MetricComparison:  # fmt: skip
        relative = interval.estimate / base if base else None
        verdict: Verdict
        if interval.sign == 0:
            verdict, detail = "no_evidence", "the interval covers no change"
        elif self.min_effect and (relative is None or abs(relative) < self.min_effect):
            verdict, detail = "no_evidence", f"changed by less than {self.min_effect:.0%}"
        elif better == "none":
            verdict, detail = "changed", "the interval excludes no change"
        else:
            verdict = "worse" if (interval.sign > 0) == (better == "lower") else "better"
            detail = f"{'higher' if interval.sign > 0 else 'lower'} is {verdict} here"
        return MetricComparison(metric, kind, verdict, base, cand, interval.estimate, interval.low, interval.high,
                                relative, counts[0], counts[1], detail=detail)  # fmt: skip

    def mean(self, name: str, stats: dict[int, dict[str, Any]]) -> MetricComparison:
        n = [int(stats[s].get(f"n_{name}") or 0) for s in (0, 1)]
        means = [_float(stats[s].get(f"mean_{name}")) for s in (0, 1)]
        if min(n) < max(self.min_samples, 2):
            return self.too_few(name, "mean", n, (means[0], means[1]))
        var = [_float(stats[s].get(f"var_{name}")) or 0.0 for s in (0, 1)]
        interval = mean_difference(n[0], means[0] or 0.0, var[0], n[1], means[1] or 0.0, var[1], self.alpha)
        better = "lower" if name in HIGHER_IS_WORSE else "none"
        return self.verdict(name, "mean", means[0] or 0.0, means[1] or 0.0, interval, n, better)

    def rate(self, name: str, stats: dict[int, dict[str, Any]]) -> MetricComparison:
        n = [int(stats[s].get(f"n_{name}") or 0) for s in (0, 1)]
        x = [int(stats[s].get(f"x_{name}") or 0) for s in (0, 1)]
        shares = (x[0] / n[0] if n[0] else None, x[1] / n[1] if n[1] else None)
        if min(n) < max(self.min_samples, 1):
            return self.too_few(name, "rate", n, shares)
        interval = proportion_difference(x[0], n[0], x[1], n[1], self.alpha)
        return self.verdict(name, "rate", shares[0] or 0.0, shares[1] or 0.0, interval, n)

    def score(self, name: str, rows: pd.DataFrame) -> MetricComparison:
        by_side = _by_side(rows)
        n = [int(by_side[s].get("n") or 0) for s in (0, 1)]
        means = [_float(by_side[s].get("mean")) for s in (0, 1)]
        metric = f"score:{name}"
        if min(n) < max(self.min_samples, 2):
            return self.too_few(metric, "score", n, (means[0], means[1]))
        var = [_float(by_side[s].get("var")) or 0.0 for s in (0, 1)]
        interval = mean_difference(n[0], means[0] or 0.0, var[0], n[1], means[1] or 0.0, var[1], self.alpha)
        better = "lower" if name in self.lower_is_better else "higher"
        return self.verdict(metric, "score", means[0] or 0.0, means[1] or 0.0, interval, n, better)

    def mix(self, provider: str, rows: pd.DataFrame) -> MetricComparison:
        """Finish reasons of one provider: chi-square on the 2 x k table, and the category whose
        share moved most with its always-valid interval (at alpha / k)."""
        table = rows.pivot_table(index="reason", columns="side", values="calls", aggfunc="sum", fill_value=0)
        table = table.reindex(columns=[0, 1], fill_value=0)
        n = [int(table[s].sum()) for s in (0, 1)]
        metric = f"finish_reason_mix:{provider}"
        if min(n) < max(self.min_samples, 1) or len(table) < 2:
            result = self.too_few(metric, "mix", n)
            if len(table) < 2 and min(n) >= self.min_samples:
                result.verdict, result.detail = "no_evidence", "a single finish reason on both sides"
            return result
        chi2 = _chi2(table)
        p_value = chi2_sf(chi2, len(table) - 1)
        shares = table / table.sum()
        moved = (shares[1] - shares[0]).abs().idxmax()
        interval = proportion_difference(int(table.at[moved, 0]), n[0], int(table.at[moved, 1]), n[1],
                                         self.alpha / len(table))  # fmt: skip
        result = self.verdict(metric, "mix", float(shares.at[moved, 0]), float(shares.at[moved, 1]), interval, n,
                              better="none")  # fmt: skip
        if p_value >= self.alpha:  # both tests must agree
            result.verdict = "no_evidence"
        result.p_value = p_value
        result.detail = f"{moved}: {shares.at[moved, 0]:.1%} -> {shares.at[moved, 1]:.1%} (chi-square p={p_value:.2g})"
        return result


def _chi2(table: pd.DataFrame) -> float:
    total = float(table.values.sum())
    expected = table.sum(axis=1).values[:, None] * table.sum(axis=0).values[None, :] / total
    return float((((table.values - expected) ** 2) / expected).sum())


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number

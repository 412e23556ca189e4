"""Drift verdicts: the documented rules turning statistics into none / moderate / major, and
the direction of a change (see :mod:`llmtrace.analytics.drift`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llmtrace.analytics.drift_sql import BINARY

if TYPE_CHECKING:
    from llmtrace.analytics.drift import MetricDrift

Verdict = Literal["none", "moderate", "major", "insufficient_data"]
MIN_SAMPLES = 30
DEFAULT_BY = ("service",)  # what ``by="auto"`` (the anomaly commands' default, shared by watch) means here
# Which way is worse: more of these hurts users or budgets; more output tokens/s helps; the rest
# (token counts, mixes, tool use) only "changed".
HIGHER_IS_WORSE = frozenset(
    {"latency_ms", "ttft_ms", "cost_per_call_usd", "error_rate", "truncation_rate", "empty_output_rate"}
)
HIGHER_IS_BETTER = frozenset({"output_tokens_per_s"})
_EFFECTS = (
    "psi", "ks_statistic", "ks_pvalue", "baseline_median", "current_median", "median_shift", "baseline_p95",
    "current_p95", "p95_shift", "js_distance", "chi2", "chi2_dof", "chi2_pvalue", "category", "baseline_share",
    "current_share",
)  # fmt: skip
ALPHA = 0.01
MIN_KS = 0.1
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
P95_MODERATE = 0.3
MIN_SHARE_CHANGE = 0.01
JS_MODERATE, JS_MAJOR = 0.05, 0.15


def numeric_verdict(r: MetricDrift, min_samples: int = MIN_SAMPLES) -> tuple[Verdict, str]:
    """The documented rule for numeric metrics (see the module docstring)."""
    if min(r.baseline_n, r.current_n) < min_samples:
        return "insufficient_data", _too_few(r, min_samples)
    p, d, psi = r.ks_pvalue, r.ks_statistic or 0.0, r.psi or 0.0
    if p is None or p >= ALPHA:
        return "none", f"not significant (KS p={_g(p)})"
    if d < MIN_KS:
        return "none", f"significant but small (KS D={d:.3f} < {MIN_KS})"
    p95 = abs(r.p95_shift or 0.0)
    if psi >= PSI_MAJOR:
        return "major", f"PSI {psi:.2f} >= {PSI_MAJOR} (KS D={d:.2f}, p={_g(p)})"
    if psi >= PSI_MODERATE:
        return "moderate", f"PSI {psi:.2f} >= {PSI_MODERATE} (KS D={d:.2f}, p={_g(p)})"
    if p95 >= P95_MODERATE:
        return "moderate", f"p95 moved {r.p95_shift:+.0%} (KS D={d:.2f}, p={_g(p)})"
    return "none", f"PSI {psi:.2f} < {PSI_MODERATE}"


def categorical_verdict(r: MetricDrift, max_change: float, min_samples: int = MIN_SAMPLES) -> tuple[Verdict, str]:
    """The documented rule for categorical metrics (see the module docstring)."""
    if min(r.baseline_n, r.current_n) < min_samples:
        return "insufficient_data", _too_few(r, min_samples)
    if not r.chi2_dof:
        return "none", "a single category on both sides"
    p, js = r.chi2_pvalue, r.js_distance or 0.0
    if p is None or p >= ALPHA:
        return "none", f"not significant (chi-square p={_g(p)})"
    if max_change < MIN_SHARE_CHANGE:
        return "none", f"significant but small (largest share change {max_change:.2%})"
    moved = f"{r.category}: {_pct(r.baseline_share)} -> {_pct(r.current_share)}"
    if js >= JS_MAJOR:
        return "major", f"JS distance {js:.2f} >= {JS_MAJOR} ({moved})"
    if js >= JS_MODERATE:
        return "moderate", f"JS distance {js:.2f} >= {JS_MODERATE} ({moved})"
    return "none", f"JS distance {js:.3f} < {JS_MODERATE}"


def finish(r: MetricDrift) -> MetricDrift:
    """Too little data carries no effect numbers (they would be read as findings); a change
    carries its direction."""
    if r.verdict == "insufficient_data":
        for name in _EFFECTS:
            setattr(r, name, None)
    elif r.flagged:
        r.direction = direction(r)
    return r


def direction(r: MetricDrift) -> str:
    """``worse``, ``better`` or ``changed`` (no better side, or no clear way it moved)."""
    if r.kind == "numeric":
        moved = r.median_shift if r.median_shift else r.p95_shift
    elif r.metric in BINARY and r.current_share is not None and r.baseline_share is not None:
        moved = r.current_share - r.baseline_share
    else:
        moved = None
    if not moved or (r.metric not in HIGHER_IS_WORSE and r.metric not in HIGHER_IS_BETTER):
        return "changed"
    return "worse" if (moved > 0) == (r.metric in HIGHER_IS_WORSE) else "better"


def _too_few(r: MetricDrift, min_samples: int) -> str:
    return f"needs at least {min_samples} calls on each side (baseline {r.baseline_n}, current {r.current_n})"


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"

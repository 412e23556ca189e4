"""Always-valid confidence intervals for comparing a candidate with a baseline.

A canary is looked at again and again while its traffic flows. A fixed-sample test checked at
every look raises false alarms far more often than its alpha says (twenty looks at a 5% z-test
flag about a quarter of identical A/A pairs). So every interval here is a *confidence sequence*:
it holds at all sample sizes at once, and a verdict may be read at any look.

The method is the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh
("Always valid inference", 2017) with a normal mixing distribution, in its Gaussian
(central-limit) form: for an estimate ``theta_hat`` with variance ``V`` (for a difference of two
means, ``V = var_b / n_b + var_c / n_c``) and a mixture ``N(0, tau^2)`` over the true effect,

    radius = sqrt(2 V (V + tau^2) / tau^2 * (ln(1 / alpha) + ln((V + tau^2) / V) / 2))

and ``theta_hat +- radius`` covers the true effect at every sample size simultaneously with
probability at least ``1 - alpha`` (asymptotically: variances are plug-in estimates).
``tau`` is :data:`TAU_SD` per-call standard deviations: the test is tuned to effects of about
a fifth of a standard deviation and stays valid for any other size.

* Means (cost per call, tokens, scores): two-sample difference as above.
* Proportions (error rate, truncation rate): the same, with the Agresti-Caffo variance
  (one success and one failure added per side), so zero-event sides are not certain.
* Quantiles (latency and TTFT p50/p95): each side's quantile ``q`` gets an interval
  between its order statistics at levels ``q -+ r``, ``r`` the radius of the always-valid
  interval for the proportion of calls below the true quantile (a Bernoulli(q), variance known);
  each side at ``alpha / 2``, and the difference's interval spans the two.

The caller splits alpha over the metrics it judges (Bonferroni), so the chance of *any* false
verdict in a report stays below alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "TAU_SD",
    "Interval",
    "mean_difference",
    "mixture_radius",
    "proportion_difference",
    "quantile_difference",
    "quantile_levels",
]

TAU_SD = 0.2


@dataclass(frozen=True)
class Interval:
    """An estimate of ``candidate - baseline`` and its always-valid interval [low, high]."""

    estimate: float
    low: float
    high: float

    @property
    def sign(self) -> int:
        """+1 if the whole interval is above zero, -1 if below, 0 if it covers zero."""
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0


def mixture_radius(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the normal-mixture mSPRT confidence sequence for an estimate of this variance."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if variance <= 0:
        return 0.0
    if tau2 <= 0:
        return math.inf
    ratio = (variance + tau2) / variance
    return math.sqrt(2 * variance * (variance + tau2) / tau2 * (math.log(1 / alpha) + math.log(ratio) / 2))


def mean_difference(
    n_b: int, mean_b: float, var_b: float, n_c: int, mean_c: float, var_c: float, alpha: float
) -> Interval:
    """Candidate mean minus baseline mean, from each side's count, mean and sample variance."""
    if min(n_b, n_c) < 2:
        raise ValueError("a difference of means needs at least 2 values per side")
    var_b, var_c = max(var_b, 0.0), max(var_c, 0.0)
    variance = var_b / n_b + var_c / n_c
    tau2 = TAU_SD**2 * (var_b + var_c) / 2
    estimate = mean_c - mean_b
    radius = mixture_radius(variance, tau2, alpha)
    return Interval(estimate, estimate - radius, estimate + radius)


def proportion_difference(x_b: int, n_b: int, x_c: int, n_c: int, alpha: float) -> Interval:
    """Candidate share minus baseline share (``x`` of ``n`` calls), Agresti-Caffo variance."""
    if min(n_b, n_c) < 1:
        raise ValueError("a difference of proportions needs at least 1 call per side")
    tb, tc = (x_b + 1) / (n_b + 2), (x_c + 1) / (n_c + 2)
    variance = tb * (1 - tb) / (n_b + 2) + tc * (1 - tc) / (n_c + 2)
    tau2 = TAU_SD**2 * (tb * (1 - tb) + tc * (1 - tc)) / 2
    estimate = x_c / n_c - x_b / n_b
    radius = mixture_radius(variance, tau2, alpha)
    return Interval(estimate, estimate - radius, estimate + radius)


def quantile_levels(q: float, n: int, alpha: float) -> tuple[float, float]:
    """The levels ``(q - r, q + r)`` (clipped to [0, 1]) whose order statistics bound the true
    ``q``-quantile of ``n`` values at every ``n``, with probability ``1 - alpha``."""
    if not 0 < q < 1 or n < 1:
        raise ValueError(f"quantile level must be in (0, 1) and n >= 1, got q={q}, n={n}")
    variance = q * (1 - q)
    radius = mixture_radius(variance / n, TAU_SD**2 * variance, alpha)
    return max(0.0, q - radius), min(1.0, q + radius)


def quantile_difference(baseline: tuple[float, float, float], candidate: tuple[float, float, float]) -> Interval:
    """From each side's (low, point, high) quantile values: the difference and its interval."""
    b_low, b_point, b_high = baseline
    c_low, c_point, c_high = candidate
    return Interval(c_point - b_point, c_low - b_high, c_high - b_low)

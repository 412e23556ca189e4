"""The always-valid intervals behind ``llmtrace compare``: A/A streams looked at repeatedly keep
their false-alarm rate near alpha, real shifts are found, bad input is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmtrace.analytics import compare_stats as cs

ALPHA = 0.05
STREAMS, LOOKS, STEP = 400, 20, 100  # 400 A/A pairs, judged after every 100 calls per side, 20 times


def _aa_false_alarms(judge: object, seed: int) -> float:
    """Share of A/A streams flagged at ANY of the looks by ``judge(a[:n], b[:n]) -> bool``."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(STREAMS):
        a, b = rng.lognormal(6, 0.5, LOOKS * STEP), rng.lognormal(6, 0.5, LOOKS * STEP)
        flagged += any(judge(a[: k * STEP], b[: k * STEP]) for k in range(1, LOOKS + 1))  # type: ignore[operator]
    return flagged / STREAMS


def _sequential_mean(a: np.ndarray, b: np.ndarray) -> bool:
    n = len(a)
    return cs.mean_difference(n, a.mean(), a.var(ddof=1), n, b.mean(), b.var(ddof=1), ALPHA).sign != 0


def _fixed_z_test(a: np.ndarray, b: np.ndarray) -> bool:
    n = len(a)
    return abs(b.mean() - a.mean()) / math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n) > 1.96


def _sequential_p95(a: np.ndarray, b: np.ndarray) -> bool:
    low, high = cs.quantile_levels(0.95, len(a), ALPHA / 2)
    qa, qb = (tuple(np.quantile(x, [low, 0.95, high], method="inverted_cdf")) for x in (a, b))
    return cs.quantile_difference(qa, qb).sign != 0


def _sequential_rate(a: np.ndarray, b: np.ndarray) -> bool:
    # a 3% "error" when the value falls in the top 3% of the shared distribution
    cut = math.exp(6 + 0.5 * 1.8808)
    return cs.proportion_difference(int((a > cut).sum()), len(a), int((b > cut).sum()), len(b), ALPHA).sign != 0


def test_repeated_looks_at_aa_means_keep_false_alarms_below_alpha() -> None:
    assert _aa_false_alarms(_sequential_mean, seed=1) <= ALPHA


def test_the_same_looks_with_a_fixed_sample_z_test_raise_false_alarms_far_above_alpha() -> None:
    assert _aa_false_alarms(_fixed_z_test, seed=1) > 3 * ALPHA  # why compare needs a sequential method


def test_repeated_looks_at_aa_p95s_keep_false_alarms_below_alpha() -> None:
    assert _aa_false_alarms(_sequential_p95, seed=2) <= ALPHA


def test_repeated_looks_at_aa_rates_keep_false_alarms_below_alpha() -> None:
    assert _aa_false_alarms(_sequential_rate, seed=3) <= ALPHA


def test_a_ten_percent_slower_candidate_is_found_within_the_looks() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(6, 0.5, LOOKS * STEP), rng.lognormal(6, 0.5, LOOKS * STEP) * 1.1
    first = next(k for k in range(1, LOOKS + 1) if _sequential_mean(a[: k * STEP], b[: k * STEP]))
    assert first * STEP <= 1500
    interval = cs.mean_difference(len(a), a.mean(), a.var(ddof=1), len(b), b.mean(), b.var(ddof=1), ALPHA)
    assert interval.sign == 1 and interval.low < 0.1 * math.exp(6 + 0.125) < interval.high


def test_the_interval_narrows_as_calls_accumulate() -> None:
    widths = [cs.mixture_radius(1.0 / n, 0.04, ALPHA) for n in (100, 1000, 10000)]
    assert widths[0] > widths[1] > widths[2] > 0


def test_a_sequence_is_wider_than_the_fixed_sample_interval_at_the_same_n() -> None:
    assert cs.mixture_radius(1.0 / 1000, 0.04, ALPHA) > 1.96 * math.sqrt(1.0 / 1000)


def test_zero_errors_on_both_sides_is_no_evidence_not_certainty() -> None:
    interval = cs.proportion_difference(0, 50, 2, 50, ALPHA)
    assert interval.low < 0 < interval.high


def test_quantile_levels_bracket_the_level_and_clip_to_zero_and_one() -> None:
    low, high = cs.quantile_levels(0.95, 40, ALPHA)
    assert 0 < low < 0.95 and high == 1.0
    low, high = cs.quantile_levels(0.5, 100_000, ALPHA)
    assert 0.49 < low < 0.5 < high < 0.51


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
def test_an_alpha_outside_zero_and_one_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        cs.mixture_radius(0.1, 0.1, alpha)


def test_a_mean_needs_two_values_per_side() -> None:
    with pytest.raises(ValueError, match="at least 2 values"):
        cs.mean_difference(1, 1.0, 0.0, 10, 1.0, 1.0, ALPHA)


def test_a_quantile_level_outside_zero_and_one_is_refused() -> None:
    with pytest.raises(ValueError, match="quantile level"):
        cs.quantile_levels(1.0, 10, ALPHA)

"""The exact tails detection scores with, against brute-force sums (fractions, no floating shortcuts)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from llmtrace.analytics.tails import (
    binom_cdf,
    binom_sf,
    binom_tails,
    chernoff_log10,
    nbinom_cdf,
    nbinom_chernoff_log10,
    nbinom_sf,
)


def _binom_sf_exact(k: int, n: int, p: Fraction) -> float:
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@pytest.mark.parametrize(
    ("k", "n", "p"), [(16, 47, "1/100"), (3, 10, "1/10"), (40, 300, "1/10"), (1, 5, "3/10"), (0, 9, "1/2")]
)
def test_binomial_upper_tail_matches_the_exact_sum(k: int, n: int, p: str) -> None:
    assert binom_sf(k, n, float(Fraction(p))) == pytest.approx(_binom_sf_exact(k, n, Fraction(p)), rel=1e-9)


def test_binomial_lower_tail_is_the_complement_of_the_upper() -> None:
    assert binom_cdf(4, 20, 0.4) == pytest.approx(1 - _binom_sf_exact(5, 20, Fraction(2, 5)), rel=1e-9)


def test_sixteen_failures_in_forty_seven_calls_against_one_percent_is_below_1e_15() -> None:
    assert binom_sf(16, 47, 0.01) < 1e-15


def test_negative_binomial_tends_to_poisson_when_the_extra_spread_vanishes() -> None:
    poisson_sf = 1 - sum(math.exp(-3) * 3**i / math.factorial(i) for i in range(10))
    assert nbinom_sf(10, 3, 1e7) == pytest.approx(poisson_sf, rel=1e-4)
    assert nbinom_cdf(1, 12, 1e7) == pytest.approx(math.exp(-12) * 13, rel=1e-4)


def test_negative_binomial_zero_has_its_closed_form() -> None:
    assert nbinom_cdf(0, 36, 16) == pytest.approx((16 / 52) ** 16, rel=1e-12)


def test_chernoff_bound_never_claims_more_evidence_than_the_exact_tail() -> None:
    k, n, p = np.array([16.0, 40.0, 3.0]), np.array([47.0, 300.0, 10.0]), np.array([0.01, 0.1, 0.1])
    exact = [-math.log10(binom_sf(int(a), int(b), c)) for a, b, c in zip(k, n, p, strict=True)]
    assert all(bound <= e + 1e-9 for bound, e in zip(chernoff_log10(k, n, p), exact, strict=True))


@pytest.mark.parametrize(
    ("k", "mu", "r"), [(50, 20, 10), (200, 100, 25), (1000, 500, 100), (12, 10, 3), (5, 40, 10), (90, 300, 4)]
)
def test_negative_binomial_chernoff_bound_is_within_a_few_units_below_the_exact_tail(
    k: int, mu: float, r: float
) -> None:
    exact = -math.log10(nbinom_sf(k, mu, r) if k > mu else nbinom_cdf(k, mu, r))
    bound = float(nbinom_chernoff_log10(np.array([k]), np.array([mu]), np.array([r]))[0])
    assert bound <= exact + 1e-9  # the volume scan may use it as a score: never more evidence than there is
    assert exact - bound < 0.5 * math.log10(8 * (k + 1)) + 1.0  # the slack the scan allows when pruning


def test_negative_binomial_chernoff_bound_of_silence_is_exact() -> None:
    bound = float(nbinom_chernoff_log10(np.array([0.0]), np.array([30.0]), np.array([5.0]))[0])
    assert bound == pytest.approx(-math.log10(nbinom_cdf(0, 30.0, 5.0)))


def test_many_binomial_tails_at_once_are_the_same_floats_as_one_by_one() -> None:
    """Every branch (k <= 0, k > n, at or below the mean, above it, p clamped at 0 and 1, long
    sums of large n) for both tails, compared for equality, not closeness."""
    rng = np.random.default_rng(7)
    k = rng.integers(-2, 301, 4000).tolist() + rng.integers(0, 20_001, 500).tolist() + [16, 0, 5, 3, 300]
    n = rng.integers(0, 301, 4000).tolist() + [20_000] * 500 + [47, 9, 5, 10, 300]
    p = (
        rng.choice([0.0, 1e-13, 0.5, 1 - 1e-13, 1.0], 1000).tolist()
        + rng.random(3000).tolist()
        + (rng.random(500) * 0.05).tolist()
        + [0.01, 0.5, 0.999, 0.1, 0.2]
    )
    assert binom_tails(k, n, p) == [binom_sf(*a) for a in zip(k, n, p, strict=True)]
    assert binom_tails(k, n, p, up=False) == [binom_cdf(*a) for a in zip(k, n, p, strict=True)]
    assert binom_tails([], [], []) == []

"""The chi-square survival function, for p-values of chi-square statistics computed in SQL.

ClickHouse has no incomplete gamma function and SciPy is not a dependency, so the p-value
``P(X >= statistic)`` for ``dof`` degrees of freedom is the regularized upper incomplete gamma
``Q(dof / 2, statistic / 2)``, evaluated by its power series below ``a + 1`` and by a
continued fraction (modified Lentz) above, to ~1e-12 relative accuracy.
"""

from __future__ import annotations

import math

__all__ = ["chi2_sf", "gamma_q"]

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 10_000


def chi2_sf(statistic: float, dof: float) -> float:
    """P-value of a chi-square ``statistic`` with ``dof`` degrees of freedom (NaN if undefined)."""
    if math.isnan(statistic) or dof <= 0:
        return math.nan
    if statistic <= 0:
        return 1.0
    return gamma_q(dof / 2.0, statistic / 2.0)


def gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x >= 0."""
    if a <= 0 or x < 0:
        raise ValueError(f"gamma_q needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    if x < a + 1:
        return max(0.0, 1.0 - _lower_series(a, x))
    return _upper_fraction(a, x)


def _prefactor(a: float, x: float) -> float:
    return math.exp(-x + a * math.log(x) - math.lgamma(a))


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its series: x^a e^-x / Γ(a+1) * Σ x^n / ((a+1)...(a+n))."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_ITER):
        denominator += 1
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * _prefactor(a, x)


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by Legendre's continued fraction, evaluated with the modified Lentz method."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return _prefactor(a, x) * h

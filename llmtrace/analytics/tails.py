"""Exact binomial tail probabilities in plain Python, and a vectorised Chernoff bound.

Detection judges counts (errors in calls, calls above a latency threshold, calls in a window
against calls in its baseline), so every test here is a binomial tail. scipy is not a
dependency: the exact tail is a short log-space sum (:func:`binom_sf`), and
:func:`chernoff_log10` bounds it for whole arrays at once so that the exact sum is only
computed where the bound says a window could pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "LN10", "binom_cdf", "binom_sf", "binom_tails", "chernoff_log10", "nbinom_cdf", "nbinom_chernoff_log10",
    "nbinom_sf", "neg_log10", "poisson_score",
]  # fmt: skip

LN10 = math.log(10)
_TINY = 1e-300


def _log_pmf(i: int, n: int, lp: float, lq: float, lc: float) -> float:
    return lc - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (sums the terms from k up until negligible).

    For k above the mean the terms only shrink, so the sum stops early; below it, the
    complement is summed instead. Never returns 0: the floor is 1e-300.
    """
    if k <= 0:
        return 1.0
    if k > n:
        return _TINY
    p = min(max(p, 1e-12), 1 - 1e-12)
    if k <= n * p:
        return max(_TINY, 1.0 - binom_cdf(k - 1, n, p))
    lp, lq, lc = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    first = _log_pmf(k, n, lp, lq, lc)
    odds = p / (1 - p)
    total, term, i = 1.0, 1.0, k
    while i < n:  # term(i + 1) = term(i) * (n - i) / (i + 1) * p / (1 - p)
        term *= (n - i) / (i + 1) * odds
        total += term
        i += 1
        if term < 1e-12 * total:
            break
    return max(_TINY, math.exp(first) * total)


def binom_tails(k: Sequence[int], n: Sequence[int], p: Sequence[float], up: bool = True) -> list[float]:
    """:func:`binom_sf` (``up``) or :func:`binom_cdf` of each (k, n, p), the same floats, for many
    windows at once: the summing loop's products and sums run for all of them together, step by
    step in the same order (numpy's +, * and / on doubles round as Python's), while the
    logarithms, lgamma and exp stay ``math``'s. 17k exact tails of one detection run (v9, 7 d)
    took 0.2 s one by one, nearly all of it the loop's Python."""
    if not up:  # binom_cdf(k, n, p) = binom_sf(n - k, n, 1 - p) where 0 <= k < n
        out = [1.0 if kj >= nj else _TINY if kj < 0 else math.nan for kj, nj in zip(k, n, strict=True)]
        inner = [j for j, v in enumerate(out) if math.isnan(v)]
        tails = binom_tails([n[j] - k[j] for j in inner], [n[j] for j in inner], [1 - p[j] for j in inner])
        for j, t in zip(inner, tails, strict=True):
            out[j] = t
        return out
    out, summed, firsts, odds = [1.0] * len(k), [], [], []
    for j, (kj, nj, pj) in enumerate(zip(k, n, p, strict=True)):
        if kj <= 0:
            continue
        if kj > nj:
            out[j] = _TINY
            continue
        pj = min(max(pj, 1e-12), 1 - 1e-12)
        if kj <= nj * pj:
            out[j] = binom_sf(kj, nj, pj)
            continue
        lp, lq, lc = math.log(pj), math.log1p(-pj), math.lgamma(nj + 1)
        summed.append(j)
        firsts.append(_log_pmf(kj, nj, lp, lq, lc))
        odds.append(pj / (1 - pj))
    if summed:
        totals = _tail_sums(
            np.array([k[j] for j in summed], dtype=np.int64), np.array([n[j] for j in summed], dtype=np.int64), odds
        )
        for j, first, total in zip(summed, firsts, totals.tolist(), strict=True):
            out[j] = max(_TINY, math.exp(first) * total)
    return out


def _tail_sums(k: np.ndarray, n: np.ndarray, odds: list[float]) -> np.ndarray:
    """:func:`binom_sf`'s sums of the terms after the first (relative to it), element by element
    as its loop adds them: term(i + 1) = term(i) * ((n - i) / (i + 1) * odds), stopping after the
    term below 1e-12 of the total or at n."""
    ratio = np.array(odds, dtype=float)
    term, total, i = np.ones(k.size), np.ones(k.size), k.copy()
    live = np.flatnonzero(i < n)
    while live.size:
        il, nl = i[live], n[live]
        t = term[live] * ((nl - il) / (il + 1) * ratio[live])
        s = total[live] + t
        term[live], total[live], i[live] = t, s, il + 1
        live = live[(t >= 1e-12 * s) & (il + 1 < nl)]
    return total


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p): the upper tail of the misses."""
    if k >= n:
        return 1.0
    if k < 0:
        return _TINY
    return binom_sf(n - k, n, 1 - p)


def _nb_log_pmf(i: int, mu: float, r: float) -> float:
    return (
        math.lgamma(i + r) - math.lgamma(r) - math.lgamma(i + 1)
        + r * math.log(r / (r + mu)) + i * math.log(mu / (r + mu))
    )  # fmt: skip


def nbinom_sf(k: int, mu: float, r: float) -> float:
    """P(X >= k) for a negative binomial of mean ``mu`` and size ``r`` (variance mu + mu^2 / r):
    Poisson counts whose rate itself wobbles by a relative 1 / sqrt(r)."""
    if k <= 0:
        return 1.0
    mu = max(mu, 1e-9)
    if k <= mu:
        return max(_TINY, 1.0 - nbinom_cdf(k - 1, mu, r))
    first = _nb_log_pmf(k, mu, r)
    q = mu / (r + mu)
    total, term, i = 1.0, 1.0, k
    while i < k + 1_000_000:  # term(i + 1) = term(i) * (i + r) / (i + 1) * mu / (r + mu)
        term *= (i + r) / (i + 1) * q
        total += term
        i += 1
        if term < 1e-12 * total:
            break
    return max(_TINY, math.exp(first) * total)


def nbinom_cdf(k: int, mu: float, r: float) -> float:
    """P(X <= k) for the negative binomial of :func:`nbinom_sf` (sums down from k)."""
    if k < 0:
        return _TINY
    mu = max(mu, 1e-9)
    if k >= mu:
        return max(_TINY, 1.0 - nbinom_sf(k + 1, mu, r))
    first = _nb_log_pmf(k, mu, r)
    q = mu / (r + mu)
    total, term = 1.0, 1.0
    for i in range(k, 0, -1):  # term(i - 1) = term(i) * i / ((i - 1 + r) * q)
        term *= i / ((i - 1 + r) * q)
        total += term
        if term < 1e-12 * total:
            break
    return max(_TINY, min(1.0, math.exp(first) * total))


def neg_log10(p: float) -> float:
    return -math.log10(max(p, _TINY))


def chernoff_log10(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """-log10 of the Chernoff bound n * KL(k/n || p) on the tail beyond k (either side).

    The bound is never below the exact tail, so a window whose bound score misses a
    threshold by more than the bound's slack cannot pass it exactly.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(p, 1e-12, 1 - 1e-12)
        x = np.where(n > 0, k / np.maximum(n, 1), 0.0)
        a = np.where(x > 0, x * np.log(np.maximum(x, 1e-300) / q), 0.0)
        b = np.where(x < 1, (1 - x) * np.log(np.maximum(1 - x, 1e-300) / (1 - q)), 0.0)
        kl = np.where(n > 0, a + b, 0.0)
    return np.asarray(n * kl / LN10)


def nbinom_chernoff_log10(k: np.ndarray, mu: np.ndarray, r: np.ndarray) -> np.ndarray:
    """-log10 of the Chernoff bound on a negative binomial's tail beyond ``k`` (either side).

    With q = mu / (r + mu) the moment generating function is ((1 - q) / (1 - q e^t))^r; its
    optimum e^t = k / (q (k + r)) gives log P <= r log((1 - q)(k + r) / r) - k log(k / (q (k + r))),
    never below the exact tail (at k = 0 it is the exact P(X = 0))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.maximum(mu, 1e-9)
        q = mu / (r + mu)
        lead = r * np.log((1 - q) * (k + r) / r)
        tail = np.where(k > 0, k * np.log(np.maximum(k, 1e-300) / (q * (k + r))), 0.0)
    return np.asarray(np.maximum(-(lead - tail), 0.0) / LN10)


def poisson_score(k: int, mu: float) -> float:
    """-log10 P(Poisson(mu) >= k) for k above mu: its terms from k on, summed while they count."""
    if k <= mu:
        return 0.0
    log_term = k * math.log(mu) - mu - math.lgamma(k + 1)
    total, term, j = 1.0, 1.0, k
    while term > 1e-12 * total:
        j += 1
        term *= mu / j
        total += term
    return -(log_term + math.log(total)) / LN10

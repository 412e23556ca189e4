"""The stacked scan (session 14) against the scan it replaced (``tests/anomalies_reference.py``).

Every level's and rate metric's series are judged in one pass, sums of leaves are taken without
BLAS, medians only where they are read: the windows, scores and expectations must be the ones the
per-level scan gave, on series built to flag (error bursts, a slower tail, a drop and a spike in
calls, a young series that borrows its parents' daily shape, a weekend).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmtrace.analytics import anomalies_levels as levels
from llmtrace.analytics import anomalies_profile as profile
from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.anomalies_sql import COUNTS, METRICS
from tests import anomalies_reference as ref

STEP = 300
DAY = 86400 // STEP
HOUR = 3600 // STEP
MONDAY = 1793577600  # 2026-11-02 00:00 UTC
DAYS = 12  # buckets read; the last KEEP are the plan's (history and judged)
KEEP = 9 * DAY
JUDGED_FROM = 2 * DAY  # of the kept buckets
LEAVES = [("a", "m1"), ("a", "m2"), ("b", "m1"), ("b", "m2"), ("c", "m1"), ("c", "m2")]
YOUNG = 4  # leaf ("c", "m1") appears a day and a half before the end


def _leaf_counts(seed: int, clustered: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Calls per leaf over ``DAYS`` (a daily curve, quieter weekends), the counts of the kept
    buckets with incidents in them, and each leaf's first bucket; with ``clustered``, two leaves'
    costly calls come in fours in the day's busy hours (agent traces)."""
    rng = np.random.default_rng(seed)
    size = DAYS * DAY
    t = np.arange(size)
    day_curve = 1.0 + 0.8 * np.sin(2 * np.pi * (t % DAY) / DAY - np.pi / 2)
    weekend = profile.weekend(MONDAY - (DAYS - 9) * 86400, size, STEP)
    levels_per_leaf = np.array([30.0, 12.0, 20.0, 6.0, 15.0, 1.5])
    rate = levels_per_leaf[:, None] * day_curve[None, :] * np.where(weekend, 0.6, 1.0)[None, :]
    end = size - 1
    rate[2, end - 20 * HOUR : end - 18 * HOUR] *= 0.2  # a drop
    rate[0, end - 10 * HOUR : end - 9 * HOUR] *= 3.0  # a spike
    first = np.zeros(len(LEAVES), dtype=int)
    first[YOUNG] = size - 36 * HOUR
    rate[YOUNG, : first[YOUNG]] = 0.0
    calls = rng.poisson(rate).astype(float)
    kept = calls[:, -KEEP:]
    counts = {c: np.zeros_like(kept) for c in COUNTS}
    counts["calls"] = kept
    share = {"errors": 0.02, "truncated": 0.01, "empty": 0.01}
    counts["errors"] = rng.binomial(kept.astype(int), share["errors"]).astype(float)
    counts["ok"] = kept - counts["errors"]
    for name in ("truncated", "empty"):
        counts[name] = rng.binomial(counts["ok"].astype(int), share[name]).astype(float)
    for n_name, x_name, x2_name, lo_name in (
        ("lat_n", "lat_x", "lat_x2", None),
        ("ttft_n", "ttft_x", "ttft_x2", None),
        ("tok_n", "tok_x", "tok_x2", "tok_lo"),
        ("cost_n", "cost_x", "cost_x2", None),
    ):
        counts[n_name] = counts["ok"].copy()
        counts[x_name] = rng.binomial(counts["ok"].astype(int), 0.1).astype(float)
        counts[x2_name] = rng.binomial(counts["ok"].astype(int), 0.01).astype(float)
        if lo_name:
            counts[lo_name] = rng.binomial(counts["ok"].astype(int), 0.1).astype(float)
    if clustered:
        busy = (np.arange(KEEP) % DAY >= 8 * HOUR) & (np.arange(KEEP) % DAY < 18 * HOUR)
        for leaf in (0, 2):
            fours = 4 * rng.binomial((counts["ok"][leaf] // 4).astype(int), 0.1).astype(float)
            counts["cost_x"][leaf] = np.where(busy, fours, counts["cost_x"][leaf])
    end = KEEP - 1
    burst = slice(end - 30 * HOUR, end - 29 * HOUR)  # errors on one leaf, a slower tail on another
    counts["errors"][1, burst] = rng.binomial(counts["calls"][1, burst].astype(int), 0.4)
    counts["ok"][1] = counts["calls"][1] - counts["errors"][1]
    tail = slice(end - 14 * HOUR, end - 11 * HOUR)
    counts["lat_x"][3, tail] = rng.binomial(counts["lat_n"][3, tail].astype(int), 0.45)
    counts["lat_x2"][3, tail] = rng.binomial(counts["lat_n"][3, tail].astype(int), 0.2)
    counts["ttft_x"][0, tail] = rng.binomial(counts["ttft_n"][0, tail].astype(int), 0.3)
    counts["lat_x"][:, 0] += 0.5  # half a call in its own bin, as the rollup counts
    return calls, counts, first


def _members() -> list[np.ndarray]:
    """service x model (the leaves), service, provider (one of them serves a single leaf: its
    series repeat that leaf's, which are judged once and copied), the whole app."""
    services = sorted({s for s, _ in LEAVES})
    by_service = np.array([[1.0 if leaf[0] == s else 0.0 for leaf in LEAVES] for s in services])
    by_provider = np.array(
        [[1.0 if i == 1 else 0.0 for i in range(len(LEAVES))], [0.0 if i == 1 else 1.0 for i in range(len(LEAVES))]]
    )
    return [np.eye(len(LEAVES)), by_service, by_provider, np.ones((1, len(LEAVES)))]


def _volume(calls: np.ndarray, first: np.ndarray, module: object) -> scan.LeafVolume:
    members = _members()
    start_epoch = MONDAY - (DAYS - 9) * 86400
    return module.leaf_volume(calls, first, STEP, start_epoch, members[1:], keep=KEEP)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 2])
def test_leaf_volume_equals_the_one_seasonal_per_level_version(seed: int) -> None:
    calls, _, first = _leaf_counts(seed)
    new, old = _volume(calls, first, scan), _volume(calls, first, ref)
    for name in (
        "x",
        "y",
        "mu",
        "mu_low",
        "mu_mid",
        "missing",
        "borrowed",
        "y_after",
        "mu_after_low",
        "mu_after_mid",
        "after_ok",
    ):
        got, want = getattr(new, name), getattr(old, name)
        assert got.keys() == want.keys()
        for width in want:
            assert np.array_equal(np.asarray(got[width]), np.asarray(want[width]), equal_nan=True), (name, width)
    assert new.borrowed[1].any()  # the young leaf borrowed a parent's shape: that path ran
    assert new.after_ok[12].any() and not new.after_ok[12][:, -1].any()  # hours after: read where they ended


def _windows(found: list[scan.Window]) -> list[tuple[int, str, str, int, int]]:
    return [(w.group, w.metric, w.direction, w.first, w.last) for w in found]


@pytest.mark.parametrize(("seed", "mixed"), [(1, False), (2, False), (1, True), (2, True)])
def test_the_stacked_scan_finds_the_windows_of_one_scan_per_level(seed: int, mixed: bool) -> None:
    calls, leaf_counts, first = _leaf_counts(seed, clustered=mixed)
    volume = _volume(calls, first, scan)
    members = _members()
    judged = np.arange(KEEP) >= JUDGED_FROM
    metrics = list(METRICS)
    per_level = [{c: m @ a for c, a in leaf_counts.items()} for m in members]
    leaves = leaf_counts if mixed else None
    new = scan.scan_levels(per_level, judged, STEP, metrics, volume, members, leaves)
    old = [
        ref.scan(counts, judged, STEP, metrics, volume, m, leaves) for counts, m in zip(per_level, members, strict=True)
    ]
    flagged = 0
    for got, want in zip(new, old, strict=True):
        assert _windows(got.windows) == _windows(want.windows)
        assert [w.score for w in got.windows] == pytest.approx([w.score for w in want.windows], rel=1e-9)
        flagged += len(want.windows)
        assert got.buckets.keys() == want.buckets.keys()
        for metric, (k, n, p) in want.buckets.items():
            gk, gn, gp = got.buckets[metric]
            assert np.array_equal(gk, k)
            if metric == "calls":  # expected calls: the leaves added in their order, not BLAS's
                np.testing.assert_allclose(gn, n, rtol=1e-12)
            else:
                assert np.array_equal(gn, n) and np.array_equal(gp, p, equal_nan=True), metric
    repeated = [(w.metric, w.first, w.last, w.score) for w in new[0].windows if w.group == 1]
    assert repeated and repeated == [(w.metric, w.first, w.last, w.score) for w in new[2].windows if w.group == 0]
    found = {(w.metric, w.direction) for s in new for w in s.windows}
    assert {("calls", "down"), ("calls", "up"), ("error_rate", "up"), ("latency_p95_ms", "up")} <= found
    assert flagged > 20


def test_the_rate_scan_of_one_metric_still_names_its_windows() -> None:
    _, counts, _ = _leaf_counts(1)
    judged = np.arange(KEEP) >= JUDGED_FROM
    base = scan.BASELINE // STEP
    got, p = scan._rates("error_rate", counts["errors"], counts["calls"], judged, base, STEP)
    want, p_old = ref._rates("error_rate", counts["errors"], counts["calls"], judged, base, STEP)
    assert got and _windows(got) == _windows(want) and {w.metric for w in got} == {"error_rate"}
    assert [w.score for w in got] == pytest.approx([w.score for w in want], rel=1e-12)
    assert np.array_equal(p, p_old, equal_nan=True)


def test_day_median_is_row_median_of_the_transpose_where_wanted() -> None:
    rng = np.random.default_rng(3)
    for days in (7, 5, 9):
        values = rng.random((days, 4000)) * rng.integers(0, 4, (days, 4000))
        values[rng.random(values.shape) < 0.6] = np.nan
        values[rng.random(values.shape) < 0.02] = np.inf
        want, want_counts = profile.row_median(values.T)
        got, counts = profile.day_median(values)
        assert np.array_equal(counts, want_counts) and np.array_equal(got, want)
        wanted = rng.random(4000) < 0.3
        some, _ = profile.day_median(values, wanted)
        assert np.array_equal(some[wanted], want[wanted]) and not some[~wanted].any()


def test_group_sums_are_the_membership_product() -> None:
    rng = np.random.default_rng(5)
    member = _members()[1]
    whole = rng.poisson(20.0, (len(LEAVES), 500)).astype(float) / 2  # whole and half calls: exact
    assert np.array_equal(profile.group_sums(member, whole), member @ whole)
    fractional = rng.random((len(LEAVES), 500)) * 1e3
    np.testing.assert_allclose(profile.group_sums(member, fractional), member @ fractional, rtol=1e-14)
    sequential = fractional[0] + fractional[1]  # added one by one, in the leaves' order
    assert np.array_equal(profile.group_sums(member, fractional)[0], sequential)
    weighted = member * 2  # not a membership: the product itself
    assert np.array_equal(profile.group_sums(weighted, fractional), weighted @ fractional)


def test_group_sums_of_a_membership_with_an_empty_group_add_rows_without_blas() -> None:
    # a settled row whose leaves all joined lately holds none: it sent 25 products of a 7 d run at
    # 10M calls to BLAS, whose spinning threads cost ~0.3 s of CPU; now zeros, the rest one by one
    rng = np.random.default_rng(6)
    member = np.vstack([_members()[1], np.zeros(len(LEAVES))])
    fractional = rng.random((len(LEAVES), 500)) * 1e3
    got = profile.group_sums(member, fractional)
    assert not got[-1].any() and np.array_equal(got[:-1], profile.group_sums(member[:-1], fractional))
    np.testing.assert_allclose(got, member @ fractional, rtol=1e-14)
    assert np.array_equal(got[0], fractional[0] + fractional[1])  # added one by one, in the leaves' order
    assert not profile.group_sums(np.zeros((2, len(LEAVES))), fractional).any()


def test_rate_phase_factor_once_equals_rate_phase_per_width() -> None:
    _, counts, _ = _leaf_counts(2)
    k, n = counts["errors"], counts["calls"]
    factor = profile.rate_phase_factor(k, n, STEP)
    assert factor is not None
    for width in scan.SCALES:
        want = ref.rate_phase(k, n, STEP, width)
        got = profile.rate_phase(k, n, STEP, width)
        assert np.array_equal(got, want)
        if width < factor.shape[1]:
            assert np.array_equal(profile.phase_mean(factor, k.shape[1], width), want)
        else:
            assert (want == 1.0).all()


def test_same_hours_from_shared_sums_and_only_where_wanted() -> None:
    calls, _, first = _leaf_counts(1)
    sums = profile.hourly_sums(calls, STEP)
    start = calls.shape[1] - KEEP
    for kinds in (True, False):
        want = ref.same_hours(calls, first, STEP, MONDAY, HOUR, start, 12, kinds)
        assert np.array_equal(profile.same_hours(calls, first, STEP, MONDAY, HOUR, start, 12, kinds, sums=sums), want)
        wanted = np.isinf(want) | (np.arange(want.size).reshape(want.shape) % 3 == 0)
        got = profile.same_hours(calls, first, STEP, MONDAY, HOUR, start, 12, kinds, sums=sums, wanted=wanted)
        assert np.array_equal(got[wanted], want[wanted])


def test_leaves_are_numbered_in_order_of_first_appearance() -> None:
    df = pd.DataFrame(
        {
            "g_service": ["b", "a", "b", "a", "c", "b"],
            "g_model": ["m2", "m1", "m2", "m2", "m1", "m1"],
            "calls": [1, 2, 3, 4, 5, 6],
        }
    )
    cols = ["g_service", "g_model"]
    leaves, rows = levels._leaves(df, cols)
    want = list(df[cols].drop_duplicates().itertuples(index=False, name=None))  # the old numbering
    assert leaves == want
    index = {leaf: i for i, leaf in enumerate(want)}
    assert rows.tolist() == [index[t] for t in df[cols].itertuples(index=False, name=None)]
    assert levels._leaves(df.iloc[:0], cols)[0] == []

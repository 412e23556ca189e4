"""The volume profile on plain arrays: sharp nightly peaks, weekends, young series borrowing a shape."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.anomalies_profile import profile, weekend

STEP = 300
DAY = 86400 // STEP
HOUR = 3600 // STEP
MONDAY = int(datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp())


def test_weekend_marks_saturday_and_sunday_in_utc() -> None:
    kinds = weekend(MONDAY, 7 * DAY, STEP)
    assert [bool(kinds[d * DAY + 5]) for d in range(7)] == [False] * 5 + [True] * 2


def test_a_sharp_nightly_peak_keeps_its_edges() -> None:
    calls = np.full((1, 9 * DAY), 2.0)
    for d in range(9):
        calls[0, d * DAY + 2 * HOUR : d * DAY + 3 * HOUR] = 100.0
    prof = profile(calls, np.array([0]), STEP, MONDAY)
    day8 = 8 * DAY
    assert prof[0, day8 + 2 * HOUR - 1] < 5  # 01:55: quiet, not the peak smeared back by an hour's mean
    assert prof[0, day8 + 2 * HOUR] > 90  # 02:00: the peak
    assert prof[0, day8 + 3 * HOUR] < 5  # 03:00: quiet again


def test_a_weekend_is_expected_from_weekends_when_there_are_any() -> None:
    rng = np.random.default_rng(1)
    days = 13  # Monday two weeks back .. Saturday
    level = np.array([10.0 if (d % 7) < 5 else 3.0 for d in range(days) for _ in range(DAY)])
    calls = rng.poisson(level, size=(1, days * DAY)).astype(float)
    prof = profile(calls, np.array([0]), STEP, MONDAY)
    saturday = 12 * DAY + 12 * HOUR
    assert abs(prof[0, saturday] - 3.0) < 1.5
    assert abs(prof[0, 11 * DAY + 12 * HOUR] - 10.0) < 2.5  # Friday: from weekdays


def test_a_young_series_borrows_its_parents_shape_and_is_judged_on_rises() -> None:
    shape = np.tile(np.where((np.arange(DAY) >= 8 * HOUR) & (np.arange(DAY) < 18 * HOUR), 30.0, 5.0), 3)
    old = shape.copy()
    young = shape / 5
    young[: 2 * DAY + 2 * HOUR] = 0  # first call at 02:00 on the third day (22 hours before the end)
    calls = np.vstack([old, young])
    first = np.array([0, 2 * DAY + 2 * HOUR])
    parent = np.ones((1, 2))
    v = scan.leaf_volume(calls, first, STEP, MONDAY, [parent])
    at = 2 * DAY + 9 * HOUR  # 09:00, its baseline 06:00-09:00 two thirds night, one third office hours
    assert v.borrowed[1][1, at] and not v.missing[1][1, at]
    assert not v.borrowed[1][0, at]
    # the morning ramp is expected from the parent's shape: 6 calls per bucket, not the night's 1
    assert abs(v.mu[1][0][1, at] - 6.0) < 0.5
    alone = scan.leaf_volume(calls[1:], first[1:], STEP, MONDAY)  # no parent: the trailing level only
    assert alone.missing[1][0, at] and not alone.borrowed[1][0, at]
    assert abs(alone.mu[1][0][0, at] - 96 / 36) < 0.1

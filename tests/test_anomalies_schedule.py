"""Scheduled series (an hourly cron, a six-hourly batch): their schedule, and their falls against their last runs."""

from __future__ import annotations

import numpy as np

from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.anomalies_schedule import periods

STEP = 300
HOUR = 3600 // STEP
DAY = 24 * HOUR
DAYS = 5


def _scheduled(rng: np.random.Generator, every: int, on: int, per_bucket: float, days: int = DAYS) -> np.ndarray:
    """Calls per bucket of a job that runs ``on`` buckets at ``per_bucket`` calls every ``every`` buckets."""
    level = np.tile(np.where(np.arange(every) < on, per_bucket, 0.0), days * DAY // every)
    return rng.poisson(level)[None, :].astype(float)


def _office(rng: np.random.Generator, days: int = DAYS) -> np.ndarray:
    """09:00-18:00 at ~30 calls a bucket, nothing at night."""
    hours = np.arange(days * DAY) // HOUR % 24
    return rng.poisson(np.where((hours >= 9) & (hours < 18), 30.0, 0.0))[None, :].astype(float)


def _falls(calls: np.ndarray) -> list[scan.Window]:
    v = scan.leaf_volume(calls, np.array([0]), STEP)
    found = scan._volume(v, np.ones((1, 1)), np.arange(calls.shape[1]) >= DAY, STEP)[0]
    return [w for w in found if w.direction == "down"]


def test_a_cron_and_a_batch_have_their_periods_and_steady_or_random_traffic_has_none() -> None:
    rng = np.random.default_rng(1)
    rows = np.concatenate(
        [
            _scheduled(rng, HOUR, 4, 70.0),  # :00-:20 every hour
            _scheduled(rng, 6 * HOUR, 6, 250.0),  # 30 minutes every six hours
            rng.poisson(np.full((1, DAYS * DAY), 40.0)).astype(float),  # busy all day
            rng.poisson(np.full((1, DAYS * DAY), 0.3)).astype(float),  # sparse, on at random
            _office(rng),  # on at every minute of the office's hours: no minute is stable
        ]
    )
    assert periods(rows, np.zeros(5, dtype=int), STEP).tolist() == [HOUR, 6 * HOUR, 0, 0, 0]


def test_a_schedule_needs_six_periods_of_the_series_life() -> None:
    calls = _scheduled(np.random.default_rng(2), 6 * HOUR, 6, 250.0)
    size = calls.shape[1]
    assert periods(calls, np.array([size - 5 * 6 * HOUR]), STEP).tolist() == [0]
    assert periods(calls, np.array([size - 6 * 6 * HOUR]), STEP).tolist() == [6 * HOUR]


def test_a_six_hourly_run_at_a_tenth_of_its_calls_is_a_fall_and_the_hours_between_runs_are_not() -> None:
    rng = np.random.default_rng(3)
    calls = _scheduled(rng, 6 * HOUR, 6, 250.0)
    assert _falls(calls) == []  # five days of runs and gaps: no fall at all
    run = 3 * DAY + 12 * HOUR
    calls[0, run : run + 6] = rng.poisson(25.0, 6)
    found = _falls(calls)
    assert found and all(w.first <= run + 5 and w.last >= run for w in found)


def test_an_hourly_cron_at_half_its_calls_for_an_hour_is_a_fall() -> None:
    rng = np.random.default_rng(4)
    calls = _scheduled(rng, HOUR, 4, 70.0)
    assert _falls(calls) == []
    hour = 2 * DAY + 9 * HOUR
    calls[0, hour : hour + 4] = rng.poisson(35.0, 4)
    found = _falls(calls)
    assert found and all(w.first <= hour + 3 and w.last >= hour for w in found)


def test_a_batch_moved_an_hour_by_a_clock_change_is_no_fall() -> None:
    calls = _scheduled(np.random.default_rng(5), 6 * HOUR, 6, 250.0, days=7)
    change = 6 * DAY + 12 * HOUR
    calls[0, change:] = np.roll(calls[0], HOUR)[change:]  # the last two runs an hour later
    assert periods(calls, np.array([0]), STEP).tolist() == [6 * HOUR]
    # against its last runs, the calls missing at each old time are where they moved to
    assert _falls(calls) == []


def test_a_cron_that_pauses_at_night_has_no_schedule_and_one_down_an_hour_a_day_is_its_habit() -> None:
    rng = np.random.default_rng(6)
    hours = np.arange(DAYS * DAY) // HOUR % 24
    nightly = _scheduled(rng, HOUR, 4, 70.0) * (hours >= 6)  # runs 06:00-24:00 only
    assert periods(nightly, np.array([0]), STEP).tolist() == [0]
    maintenance = _scheduled(rng, HOUR, 4, 70.0) * (hours != 2)  # every hour but 02:00
    assert periods(maintenance, np.array([0]), STEP).tolist() == [HOUR]
    # its 02:00 run is missing every day: a fall only where no previous day holds the window (the
    # store's second day, a 3-hour window reaching back before the store's first bucket)
    assert all(w.first < DAY for w in _falls(maintenance))
    maintenance[0, 3 * DAY + 14 * HOUR : 3 * DAY + 14 * HOUR + 4] = 0  # ... while a missing 14:00 run is
    found = [w for w in _falls(maintenance) if w.first >= DAY]
    assert found and all(w.first <= 3 * DAY + 14 * HOUR + 3 and w.last >= 3 * DAY + 14 * HOUR for w in found)

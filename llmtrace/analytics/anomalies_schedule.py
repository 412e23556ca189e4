"""Falls of a scheduled series (a cron every hour, a batch every six hours) against its own last runs.

A job that runs by the clock is on or off at fixed minutes: 20 minutes of every hour, 30 minutes
of every six hours. The trailing-baseline expectation of :mod:`anomalies_scan` cannot see such a
job: the hours before a six-hourly run are empty (no baseline at all), the daily profile spreads
each run over its gaps, a fall is held to the quiet minutes' share of the hour, and the runs' on/off
edges read as clustered calls (a clustering factor of 25-49), so a run at a tenth of its calls was
no drop (v12: an hourly cron at half its calls for an hour, four six-hourly runs at 11-14%).

Here a series whose buckets are on or off by the minute of a period of one to twelve hours
(:func:`periods`) has each window compared with the same window of its previous runs
(:func:`scheduled_falls`): the median of the last ``RUNS`` periods' windows is the expectation and
the spread is the series' own spread around those medians, so the test needs no profile, no
baseline before the window and no clustering factor. Series that are not that regular (office
hours, a cron that skips weekends, a job that sometimes has nothing to do) are left to the scan.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmtrace.analytics.anomalies_profile import cumulative, window_sum

__all__ = ["PERIOD_HOURS", "Schedules", "periods", "scheduled_falls"]

PERIOD_HOURS = (1, 2, 3, 4, 6, 8, 12)  # the smallest period that explains a series' on/off buckets is its own
AGREE = 0.95  # share of a series' buckets on (or off) as the bucket one period earlier was, for a schedule
ON = 0.9  # ... at least one minute of the period on in this share of the periods (a run, day and night)
OFF = 0.1  # ... and one on in at most this share (the gap between runs)
SEEN_RUNS = 6  # periods of a series' life before its schedule is trusted
RUNS = 3  # previous runs a window is compared with (their median)
DAYS = 3  # previous days whose same window (their median) a fall must also be below


def periods(calls: np.ndarray, first: np.ndarray, step: int) -> np.ndarray:
    """Per row: the period in buckets of its on/off schedule, 0 if it has none.

    A row is scheduled with the smallest period of ``PERIOD_HOURS`` at which at least ``AGREE`` of
    its buckets are on (calls) or off (none) as the bucket one period earlier was, one minute of the
    period is on in at least ``ON`` of the periods and another in at most ``OFF``, over at least
    ``SEEN_RUNS`` periods of its life. A busy series is never off, a sparse one on or off at random;
    a daily on/off shape (office hours, a nightly pause) turns twice a day, so the bucket an hour
    earlier disagrees for two hours of every 24 (0.92); a cron that pauses at night or at weekends
    runs at its minute in fewer than ``ON`` of the hours. A job moved once by a clock change stays
    scheduled while most of the stored periods are on one side of the move."""
    rows, size = calls.shape
    out = np.zeros(rows, dtype=int)
    life = np.arange(size)[None, :] >= first[:, None]
    on = (calls > 0) & life
    for hours in PERIOD_HOURS:
        p = hours * 3600 // step
        if p < 2 or hours * 3600 % step or p >= size:
            continue
        undecided = (out == 0) & (size - first >= SEEN_RUNS * p)
        if not undecided.any():
            continue
        both = life[:, :-p]  # life is a suffix: where a bucket is alive, so is the one a period later
        agree = ((on[:, p:] == on[:, :-p]) & both).sum(axis=1) / np.maximum(both.sum(axis=1), 1)
        pad = (-size) % p
        seen = np.pad(life, ((0, 0), (0, pad))).reshape(rows, -1, p).sum(axis=1)
        share = np.pad(on, ((0, 0), (0, pad))).reshape(rows, -1, p).sum(axis=1) / np.maximum(seen, 1)
        runs = (share.max(axis=1) >= ON) & (share.min(axis=1) <= OFF)
        out[undecided & (agree >= AGREE) & runs] = p
    return out


@dataclass
class Schedules:
    """The rows' schedules and what was found against them."""

    period: np.ndarray  # per row: its period in buckets, 0 if it has none
    expected: np.ndarray  # per row and bucket: the median of that bucket in its last runs (NaN: none)
    falls: list[tuple[int, int, int, float]]  # (row, width, last bucket, score)


def scheduled_falls(
    calls: np.ndarray,
    judged: np.ndarray,
    step: int,
    scales: tuple[int, ...],
    flag: Callable[..., list[tuple[int, int, float]]],
    nb_size: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    drop: float,
    min_change: float,
) -> Schedules:
    """The falls of the scheduled rows of ``calls`` (rows x buckets; ``judged``: the buckets whose
    windows are judged, as many as ``calls`` has): each window against the median of the same
    window ``RUNS`` periods back (the nearest that do not overlap it), at most ``drop`` of it and
    ``min_change`` calls below it, by ``flag`` (the scan's negative binomial tail) with the row's own
    spread around those medians (``nb_size``)."""
    size = calls.shape[1]
    first = np.where((calls > 0).any(axis=1), np.argmax(calls > 0, axis=1), size)
    period = periods(calls, first, step)
    ends = np.arange(size)
    hour = 3600 // step
    out = Schedules(period, np.full(calls.shape, np.nan), [])
    for p in sorted(set(period[period > 0].tolist())):
        rows = np.flatnonzero(period == p)
        c = cumulative(calls[rows])
        for width in scales:
            gap = -(-width // p)  # whole periods back to the first run that does not overlap the window
            lags = [(gap + k) * p for k in range(RUNS)]
            if lags[-1] + width > size:
                continue
            x = window_sum(c, ends, width)
            before = _runs_before(c, ends, width, lags)
            seen = (ends[None, :] - lags[-1] - width + 1) >= first[rows, None]
            if width == 1:
                out.expected[rows] = np.where(seen, before, np.nan)
            gate = seen & judged[None, :] & (x <= drop * before) & (before - x >= min_change)
            if gate.any():  # a pause at the same hour every day (maintenance at 02:00) is the job's habit
                days = _days_before(c, ends, width, first[rows], step)
                gate &= np.isnan(days) | ((x <= drop * days) & (days - x >= min_change))
            if p > hour and gate.any():  # a clock change moves a run by an hour: its calls moved, not lost
                gate &= ~_moved(calls[rows], ends, p, hour)
            g, e = np.nonzero(gate)
            if not g.size:
                continue
            r = nb_size(x, before, seen)
            for row, last, score in flag(g, e, x[g, e], before[g, e], r[g], False):
                out.falls.append((int(rows[row]), width, last, score))
    return out


def _runs_before(c: np.ndarray, ends: np.ndarray, width: int, lags: list[int]) -> np.ndarray:
    """The median of the windows ``lags`` buckets before each window (``c``: cumulative sums)."""
    return np.asarray(np.median(np.stack([window_sum(c, ends - lag, width) for lag in lags]), axis=0))


def _days_before(c: np.ndarray, ends: np.ndarray, width: int, first: np.ndarray, step: int) -> np.ndarray:
    """The median of the same window on the previous ``DAYS`` days of each row's life (NaN: none)."""
    day = 86400 // step
    held = []
    for d in range(1, DAYS + 1):
        alive = (ends[None, :] - d * day - width + 1) >= first[:, None]
        held.append(np.where(alive, window_sum(c, ends - d * day, width), np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: no previous day
        return np.asarray(np.nanmedian(np.stack(held), axis=0))


def _moved(calls: np.ndarray, ends: np.ndarray, p: int, hour: int) -> np.ndarray:
    """Per row and window end: whether the period up to an hour after the window has its calls an
    hour off one of the ``RUNS`` periods before it (a job in local time moved by a clock change):
    its on/off buckets agree with that period's an hour earlier or later in at least two more
    buckets than with that period's at the same minutes. A run at a tenth of its calls, or none,
    agrees with the same minutes as well as with any other."""
    on = calls > 0
    size = ends.size
    to = np.minimum(ends + hour, size - 1)
    out = np.zeros(calls.shape, bool)
    for run in range(1, RUNS + 1):
        agree = []
        for shift in (0, hour, -hour):
            back = np.clip(np.arange(size) - run * p - shift, 0, size - 1)
            agree.append(window_sum(cumulative((on == on[:, back]).astype(float)), to, p))
        out |= np.maximum(agree[1], agree[2]) >= agree[0] + 2
    return out

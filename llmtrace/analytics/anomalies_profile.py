"""The usual shape of a series' volume over the day and the week (volume expectations).

Volume is judged against the calls of the hours before a window, rescaled by how the
series' traffic usually changes between those hours and the window: its *profile*, the
median over up to seven previous days at the same time of day. Days of the same type
(weekday or weekend, UTC) are preferred when there are any, so a weekend's flatter day is
not held to Friday's office hours, nor Monday morning to Sunday's.

Two resolutions, chosen per bucket by how many calls back them: a 1-hour running mean
(stable on quiet series) and a 15-minute running median where the series is busy (at
least ``FINE_MIN_CALLS`` per bucket at either resolution): the median keeps the edges of a
sharp peak, such as a nightly batch starting at 02:00, which an hour's mean smears into the
quiet half hour before it (and then calls that half hour a drop).

A series without a previous day of its own borrows the shape of its parent (its service,
then the whole app, :func:`borrowed`); its level still comes from its own trailing calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["borrowed", "profile", "row_median", "weekend"]

DAY = 86400
MAX_DAYS = 7
FINE_MIN_CALLS = 8.0  # calls per bucket above which the 15-minute profile is trusted
FLOOR = 1e-3


def row_median(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the median of the non-NaN values (0 where none) and how many there are.

    One sort of the whole array (NaN sorts last) instead of ``np.nanmedian``, which goes row
    by row in Python and was a fifth of a detection run.
    """
    counts = np.sum(~np.isnan(a), axis=1)
    ordered = np.sort(a, axis=1)
    lo = np.clip((counts - 1) // 2, 0, None)[:, None]
    hi = np.clip(counts // 2, 0, None)[:, None]
    with np.errstate(invalid="ignore"):
        med = (np.take_along_axis(ordered, lo, 1) + np.take_along_axis(ordered, hi, 1))[:, 0] / 2
    return np.where(counts > 0, med, 0.0), counts


def weekend(start_epoch: int, buckets: int, step: int) -> np.ndarray:
    """Per bucket: whether it falls on a Saturday or Sunday (UTC); day 0 of the epoch is a Thursday."""
    days = (start_epoch + np.arange(buckets) * step) // DAY
    return np.asarray((days + 3) % 7 >= 5)


def _running_mean(calls: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or not calls.size:
        return calls.astype(float)
    kernel = np.ones(width) / width
    return np.array([np.convolve(row, kernel, mode="same") for row in calls])


def _running_median(calls: np.ndarray, width: int) -> np.ndarray:
    width |= 1
    if width <= 1 or not calls.size:
        return calls.astype(float)
    half = width // 2
    padded = np.pad(calls.astype(float), ((0, 0), (half, half)), mode="edge")
    return np.asarray(np.median(np.lib.stride_tricks.sliding_window_view(padded, width, axis=1), axis=-1))


def _across_days(
    smooth: np.ndarray, first: np.ndarray, kind: np.ndarray, per_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median over previous days at the same time (same day type when any), and how many days."""
    rows, size = smooth.shape
    every = np.full((MAX_DAYS, rows, size), np.nan)
    index = np.arange(size)
    for d in range(1, MAX_DAYS + 1):
        shifted = index - d * per_day
        ok = shifted >= 0
        every[d - 1][:, ok] = smooth[:, shifted[ok]]
        every[d - 1][shifted[None, :] < first[:, None]] = np.nan
    same = every.copy()
    for d in range(1, MAX_DAYS + 1):
        shifted = np.clip(index - d * per_day, 0, None)
        same[d - 1][:, kind[shifted] != kind] = np.nan
    med_all, n_all = row_median(every.reshape(MAX_DAYS, -1).T)
    med_same, n_same = row_median(same.reshape(MAX_DAYS, -1).T)
    med = np.where(n_same > 0, med_same, med_all)
    return med.reshape(rows, size), n_all.reshape(rows, size)


def profile(calls: np.ndarray, first: np.ndarray, step: int, start_epoch: int) -> np.ndarray:
    """Per series and bucket: the usual calls at that time, NaN until a previous day exists."""
    if not calls.size:
        return np.full(calls.shape, np.nan)
    per_day = max(1, DAY // step)
    kind = weekend(start_epoch, calls.shape[1], step)
    coarse, days = _across_days(_running_mean(calls, max(1, 3600 // step)), first, kind, per_day)
    fine, _ = _across_days(_running_median(calls, max(1, 900 // step)), first, kind, per_day)
    shape = np.where(np.maximum(coarse, fine) >= FINE_MIN_CALLS, fine, coarse)
    return np.where(days >= 1, np.maximum(shape, FLOOR), np.nan)


def borrowed(
    calls: np.ndarray, first: np.ndarray, step: int, start_epoch: int, parents: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The leaves' own profiles, then for each parent level (membership matrices, groups x
    leaves, most specific first) the parent's profile laid out per leaf: candidates in order,
    each NaN where it has no previous day."""
    out = [profile(calls, first, step, start_epoch)]
    for member in parents:
        if not member.size:
            continue
        group_first = np.array([first[row > 0].min() if (row > 0).any() else calls.shape[1] for row in member])
        parent = profile(member @ calls, group_first, step, start_epoch)
        out.append(parent[member.argmax(axis=0)])
    return out

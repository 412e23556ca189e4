"""How a series' volume usually changes over the day and the week (volume expectations).

Volume is judged against the calls of the hours before a window, rescaled by how the
series' traffic usually changes from those hours to the window (:class:`Seasonal`): on each
of up to seven previous days, the ratio of the window's calls to its baseline's at the same
times of day, and the median of those ratios over the days whose window and baseline fell
on the same day types (weekday or weekend, UTC) as now. So a weekend's flatter day is not
held to Friday's office hours, and the hours after midnight on Monday are compared with last
Monday's after last Sunday's evening (calls read from eight days before the judged window).

The calls are smoothed at the resolution their count supports (:func:`shape`): a 1-hour
running mean on quiet stretches, a 15-minute running median where the series is busy (at
least ``FINE_MIN_CALLS`` per bucket at either resolution), which keeps the edges of a sharp
peak, such as a nightly batch starting at 02:00, that an hour's mean smears into the quiet
half hour before it (and then calls that half hour a drop).

A series without a previous day of its own borrows the ratios of its parent (its service,
then the whole app, :func:`seasonals`); its level still comes from its own trailing calls.

Within the hour, traffic may recur at fixed minutes (cron batches at :00 and :30, a queue
drained every quarter hour): both smoothings erase such a pattern, so a window shorter than an
hour between two bursts looked like a drop, and a burst like a spike, every hour.
:func:`phase_factor` learns each series' share of an hour's calls per minute-of-hour bucket
from all its stored hours (shrunk towards an even spread by ``PHASE_PRIOR`` calls per bucket, so
a quiet series keeps a flat hour) and says how much more or less than an even share a window
usually holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "Seasonal",
    "SeasonalRows",
    "cumulative",
    "day_median",
    "group_sums",
    "hourly_sums",
    "phase_factor",
    "phase_mean",
    "rate_phase",
    "rate_phase_factor",
    "row_median",
    "same_hours",
    "seasonals",
    "shape",
    "usual_calls",
    "weekend",
    "window_sum",
]

DAY = 86400
MAX_DAYS = 7
USUAL_WEEKEND_DAYS = True  # a weekend's usual calls (a holiday's test) from earlier weekend days only (see usual_calls)
FINE_MIN_CALLS = 8.0  # calls per bucket above which the 15-minute profile is trusted
FLOOR = 1e-3
RATIO_FLOOR = 0.01  # a window at least this share of its baseline (a 6-hourly job's gap holds ~1% of its run)
FEW_DAYS_FLOOR = 0.1  # ... where fewer than FLOOR_DAYS previous days hold the window and its baseline
FLOOR_DAYS = 2
RATIO_PRIOR = 1.0  # pseudo-calls an hour added to a previous day's window and baseline in a ratio
PHASE_PRIOR = 20.0  # pseudo-calls per minute-of-hour bucket pulling the hour's shape towards flat
RATE_PHASE_PRIOR = 2.0  # pseudo-events per day and minute-of-hour bucket pulling a rate's shape towards flat


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


def day_median(
    days: np.ndarray, wanted: np.ndarray | None = None, held: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``days`` (previous days x cells): :func:`row_median` of its transpose, the
    same floats, sorted only where there is a figure and ``wanted`` (0 elsewhere, like cells
    without a figure): most cells of a week's ratios hold none (a quiet night's baseline, a day
    of the other type) or are not read (a ratio over every day is only read where fewer than
    two days of the same type exist). ``held``: which figures count (the days' without NaN
    when given; the others are taken as missing)."""
    counts = np.sum(~np.isnan(days) if held is None else held, axis=0)
    med = np.zeros(days.shape[1])
    use = counts > 0 if wanted is None else (counts > 0) & wanted
    cells = np.flatnonzero(use)
    if not cells.size:
        return med, counts
    figures = days[:, cells] if cells.size < days.shape[1] else days
    if held is not None:
        figures = np.where(held[:, cells], figures, np.nan)
    ordered = np.sort(figures, axis=0)  # NaN last
    n, at = counts[cells], np.arange(cells.size)
    med[cells] = (ordered[(n - 1) // 2, at] + ordered[n // 2, at]) / 2
    return med, counts


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


def shape(calls: np.ndarray, step: int) -> np.ndarray:
    """Per series and bucket: the calls smoothed at the resolution their count supports."""
    if not calls.size:
        return calls.astype(float)
    coarse = _running_mean(calls, max(1, 3600 // step))
    fine = _running_median(calls, max(1, 900 // step))
    return np.asarray(np.where(np.maximum(coarse, fine) >= FINE_MIN_CALLS, fine, coarse))


class Seasonal:
    """How a series' calls changed, on previous days, from a baseline's hours to a window's.

    For every previous day ``d`` (1-7) the ratio of the window's mean to the baseline's mean
    of the smoothed calls ``d`` days earlier; the median over the days whose window *and*
    baseline fell on the same day types (weekday/weekend, UTC) as now, else over all: so the
    hours after midnight on Monday are compared with last Monday's after last Sunday's
    evening, not with a weekday's after a weekday's. Both smoothings are kept (the hour's mean
    and :func:`shape`): a rise is judged against the higher of their ratios and a fall against
    the lower, so a sharp peak's quiet edge is not a drop and a burst recurring at a slightly
    different time each day is not a spike.
    """

    def __init__(self, calls: np.ndarray, first: np.ndarray, step: int, start_epoch: int) -> None:
        self.per_day = max(1, DAY // step)
        self.kind = weekend(start_epoch, calls.shape[1], step)
        hourly = _running_mean(calls, max(1, 3600 // step))
        self._holes: dict[tuple[int, int], np.ndarray] = {}
        self.smooths = [self._days(hourly, first), self._days(shape(calls, step), first)]
        self._ratios: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._settled: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._nows: dict[tuple[int, int, int], np.ndarray] = {}  # by id of a day's sums (held in smooths)

    def _days(self, smooth: np.ndarray, first: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per previous day: cumulative sums of the smoothed calls that day, and of its holes."""
        rows, size = smooth.shape
        index = np.arange(size)
        out = []
        finite = not np.isnan(smooth).any()  # then a day's holes are where it had no calls yet
        for d in range(1, MAX_DAYS + 1):
            shifted = index - d * self.per_day
            past = np.full((rows, size), np.nan)
            ok = shifted >= 0
            past[:, ok] = smooth[:, shifted[ok]]
            past[shifted[None, :] < first[:, None]] = np.nan
            key = (d, id(first))
            if not finite or key not in self._holes:  # the same for both smoothings
                self._holes[key] = cumulative(np.isnan(past).astype(float))
            out.append((cumulative(np.nan_to_num(past, nan=0.0)), self._holes[key]))
        return out

    def ratio(self, width: int, lag: int, base: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per series and window end (from bucket ``start`` on): the usual ratio of the window's
        calls per bucket to its baseline's (``base`` buckets ending ``lag`` before the window's
        end), higher and lower of the two smoothings, and where no previous day covers both
        (ratios 1 there)."""
        key = (width, lag, base, start)
        if key not in self._ratios:  # the same ratios serve several callers (and blocks of rows)
            (hourly, missing, settled), (fine, _, _) = (
                self._ratio(days, width, lag, base, start) for days in self.smooths
            )
            hi, lo = np.maximum(hourly, fine), np.minimum(hourly, fine)
            self._ratios[key] = (np.where(missing, 1.0, hi), np.where(missing, 1.0, lo), missing)
            self._settled[key] = settled
        return self._ratios[key]

    def settled(self, width: int, lag: int, base: int, start: int = 0) -> np.ndarray:
        """Where :meth:`ratio` is read from days of the window's own type (two of them, or the same
        weekday a week ago), not from any day (a store's second day, the Monday after its first weekend)."""
        self.ratio(width, lag, base, start)
        return self._settled[(width, lag, base, start)]

    def _ratio(
        self, days: list[tuple[np.ndarray, np.ndarray]], width: int, lag: int, base: int, start: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = days[0][0].shape[0]
        last = days[0][0].shape[1] - 2  # the last bucket
        ends = np.arange(start, last + 1)
        size = ends.size
        # a negative lag is a baseline after the window (``-base``: the ``base`` buckets right
        # after it), read where it has ended; its day type is taken at its far end
        inside = ends - lag <= last
        far = ends - lag - base + 1 if lag >= 0 else np.minimum(ends - lag, last)
        begin = np.clip(far, 0, None)
        every = np.empty((MAX_DAYS, rows, size))
        alike = np.empty((MAX_DAYS, size), bool)
        for d, (sums, holes) in enumerate(days):
            back = (d + 1) * self.per_day
            if lag >= 0:
                then = window_sum(sums, ends - lag, base)
                covered = window_sum(holes, ends, lag + base) == 0
            else:  # only where the baseline has ended (a prefix of the ends: consecutive sums, no gather)
                inner = int(inside.sum())
                then = np.full((rows, size), np.nan)
                then[:, :inner] = window_sum(sums, ends[:inner] - lag, base)
                covered = np.zeros((rows, size), bool)
                covered[:, :inner] = window_sum(holes, ends[:inner] - lag, width - lag) == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                # a few pseudo-calls on both sides: a day of a handful of calls says little about
                # its shape (a parent of 400 calls a week held a young service's flat night to a
                # tenth of its evening; session 19)
                prior = RATIO_PRIOR * 24 / self.per_day  # calls an hour, per bucket
                r = (self._now(sums, width, start) + prior) / (then / base + prior)
            every[d] = np.where(covered & np.isfinite(r), r, np.nan)
            alike[d] = (self.kind[ends] == self.kind[np.clip(ends - back, 0, None)]) & (
                self.kind[begin] == self.kind[np.clip(begin - back, 0, None)]
            )
        figures = every.reshape(MAX_DAYS, -1)
        # the days of the same type as now (weekday / weekend at the window and its baseline)
        same = np.broadcast_to(alike[:, None, :], every.shape).reshape(MAX_DAYS, -1) & ~np.isnan(figures)
        # one day of the same type is trusted alone only when it is the same weekday a week ago
        own_type = (np.sum(same, axis=0) >= 2) | same[MAX_DAYS - 1]
        med_same, _ = day_median(figures, own_type, same)
        med_all, n_all = day_median(figures, ~own_type)  # only read where fewer
        ratio = np.where(own_type, med_same, med_all).reshape(rows, size)
        missing = (n_all == 0).reshape(rows, size)
        # as low as RATIO_FLOOR only where two previous days or more say so: one day's low ratio (a
        # store's first day) is as likely that day's luck (v14: a provider's first-day falls, 11 more
        # false episodes with the floor everywhere)
        floor = np.where(n_all >= FLOOR_DAYS, RATIO_FLOOR, FEW_DAYS_FLOOR).reshape(rows, size)
        return np.clip(ratio, floor, 10.0), missing, own_type.reshape(rows, size)

    def _now(self, sums: np.ndarray, width: int, start: int) -> np.ndarray:
        """A previous day's mean over the windows ending at ``start`` on (both baselines' ratios)."""
        key = (id(sums), width, start)
        if key not in self._nows:
            self._nows[key] = window_sum(sums, np.arange(start, sums.shape[1] - 1), width) / width
        return self._nows[key]


def group_sums(member: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``member @ rows`` for a 0/1 membership matrix (groups x leaves): each group's sum of its
    leaves' rows, added one by one in the leaves' order (a group without leaves: zeros), without
    BLAS. Its worker threads spin after each call, and on a loaded machine that spinning was
    ~0.6 s of CPU per detection (10M calls, 7 d) for products of a few dozen rows (and again
    0.3-0.4 s in session 20, from 25 products whose membership held an empty settled row); and
    its order of adding depends on the matrices' shapes (whole calls come out the same,
    fractional expectations within an ulp)."""
    groups, leaves = np.nonzero(member)
    if member.ndim != 2 or rows.ndim != 2 or not rows.shape[1]:
        return np.asarray(member @ rows)
    if not (member[groups, leaves] == 1).all():
        return np.asarray(member @ rows)  # weights: the product itself
    out = np.zeros((member.shape[0], rows.shape[1]))
    if not groups.size:
        return out
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(leaves)], strict=True):
        g = out[groups[a]]
        np.copyto(g, rows[leaves[a]])  # row by row: no gathered copy of every member's row
        for leaf in leaves[a + 1 : b]:
            g += rows[leaf]
    return out


def cumulative(a: np.ndarray) -> np.ndarray:
    """Cumulative sums along each row with a leading zero column (window sums by differences)."""
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.result_type(a.dtype, float))
    out[:, 0] = 0.0
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def window_sum(c: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Sums of buckets (end - width, end] from cumulative sums ``c`` (leading zero column).

    ``end`` is a run of consecutive buckets shifted by a lag (``arange(a, buckets) - lag``), as
    in all callers: the sums are then differences of two shifted copies of ``c``, taken by
    slicing (a gather with index arrays was a fifth of a detection run)."""
    size = end.size
    if not size or end[-1] - end[0] != size - 1 or end[-1] >= c.shape[1] - 1:
        lo, hi = np.clip(end + 1 - width, 0, None), np.clip(end + 1, 0, None)
        return np.asarray(c[:, hi] - c[:, lo])
    hi = int(end[0]) + 1
    lo = hi - width
    if lo >= 0:
        return np.asarray(c[:, hi : hi + size] - c[:, lo : lo + size])
    # columns before ``-lo`` take column 0 for the window's start (and for its end before ``-hi``):
    # the same differences as of two index-clipped copies, written in place of building them
    out = np.empty((c.shape[0], size))
    inner = min(-lo, size)
    np.subtract(c[:, hi + inner : hi + size], c[:, lo + inner : lo + size], out=out[:, inner:])
    head = min(max(0, -hi), inner)
    np.subtract(c[:, :1], c[:, :1], out=out[:, :head])
    np.subtract(c[:, hi + head : hi + inner], c[:, :1], out=out[:, head:inner])
    return out


def _shifted(c: np.ndarray, first: int, size: int) -> np.ndarray:
    """Columns first, first + 1, ... (``size`` of them) of ``c``, index clipped at 0."""
    if first >= 0:
        return c[:, first : first + size]
    pad = min(-first, size)
    return np.concatenate([np.repeat(c[:, :1], pad, axis=1), c[:, : size - pad]], axis=1)


class SeasonalRows:
    """Some rows of a :class:`Seasonal` taken over several sets of series at once."""

    def __init__(self, whole: Seasonal, rows: np.ndarray) -> None:
        self.whole, self.rows = whole, rows

    def ratio(self, width: int, lag: int, base: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hi, lo, missing = self.whole.ratio(width, lag, base, start)
        return hi[self.rows], lo[self.rows], missing[self.rows]

    def settled(self, width: int, lag: int, base: int, start: int = 0) -> np.ndarray:
        return self.whole.settled(width, lag, base, start)[self.rows]


def seasonals(
    calls: np.ndarray, first: np.ndarray, step: int, start_epoch: int, parents: Sequence[np.ndarray]
) -> list[tuple[SeasonalRows, np.ndarray | None]]:
    """The leaves' own seasonal ratios, then each parent level's (membership matrices, groups
    x leaves, most specific first) with the leaf -> group index that lays them out per leaf.

    Every row's ratios are its own, so the leaves and all parents' groups are stacked into one
    :class:`Seasonal` (a fifth of the numpy calls of one per level: ~0.3 s of Python at 10M calls),
    each distinct series once (a group of one leaf is that leaf)."""
    blocks, firsts = [calls], [first]
    layouts: list[np.ndarray | None] = [None]
    for member in parents:
        if not member.size:
            continue
        firsts.append(np.array([first[row > 0].min() if (row > 0).any() else calls.shape[1] for row in member]))
        blocks.append(group_sums(member, calls))
        layouts.append(member.argmax(axis=0))
    stacked = np.concatenate(blocks)
    starts = np.concatenate(firsts).astype(first.dtype)
    held = np.ascontiguousarray(np.concatenate([stacked, starts[:, None].astype(float)], axis=1))
    _, distinct, inverse = np.unique(
        held.view(np.dtype((np.void, held.dtype.itemsize * held.shape[1]))).ravel(),
        return_index=True,
        return_inverse=True,
    )
    whole = Seasonal(stacked[distinct], starts[distinct], step, start_epoch)
    inverse = inverse.ravel()
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    return [(SeasonalRows(whole, inverse[offsets[i] : offsets[i + 1]]), layout) for i, layout in enumerate(layouts)]


def phase_factor(calls: np.ndarray, step: int, width: int) -> np.ndarray:
    """Per series and window end: the calls a ``width``-bucket window usually holds at that
    minute of the hour, relative to an even spread of the hour's calls (1 for windows of whole
    hours or when buckets do not divide an hour).

    Shares are pooled over every stored hour of the series: a burst recurring at :00 has
    thousands of calls behind its share, while one incident adds a few per cent to it. Bucket
    ``i``'s phase is ``i mod period``; callers pass arrays that start on a whole hour or not,
    the pattern is learnt and applied on the same indices.
    """
    period = 3600 // step if step < 3600 and 3600 % step == 0 else 1
    rows, size = calls.shape
    if period < 2 or width % period == 0 or not size:
        return np.ones((rows, size))
    pad = (-size) % period
    per_phase = np.pad(calls, ((0, 0), (0, pad))).reshape(rows, -1, period).sum(axis=1)
    share = (per_phase + PHASE_PRIOR) / (per_phase.sum(axis=1, keepdims=True) + PHASE_PRIOR * period)
    # per minute of the hour, then laid out over the buckets: a column's figure depends only on
    # its phase, added in the same order (the same floats as summing the whole rows)
    phase = np.arange(period)
    total = np.zeros((rows, period))
    for j in range(width % period):  # whole hours inside the window hold an even share
        total += share[:, (phase - j) % period]
    whole = width // period
    return np.asarray(((total * period + whole * period) / width)[:, np.arange(size) % period])


def rate_phase(k: np.ndarray, n: np.ndarray, step: int, width: int) -> np.ndarray:
    """Per series and window end: how much higher than the series' overall rate the events'
    share usually is at that minute of the hour (at least 1; 1 for windows of whole hours).

    A cron batch meeting its provider's rate limit at :30 fails a fifth of its calls there
    every hour, which a baseline pooled over the hour calls an error burst each time. Per
    stored day and minute-of-hour bucket, the bucket's rate relative to the day's (shrunk by
    ``RATE_PHASE_PRIOR`` pseudo-events towards 1), then the median over the days: a pattern
    recurring every day moves the median, one incident (a single day) does not. Only rises are
    kept, so a quiet minute never lowers the bar. Indices as in :func:`phase_factor`.
    """
    factor = rate_phase_factor(k, n, step)
    if factor is None or width >= factor.shape[1]:
        return np.ones(k.shape)
    return phase_mean(factor, k.shape[1], width)


def rate_phase_factor(k: np.ndarray, n: np.ndarray, step: int) -> np.ndarray | None:
    """Per series and minute-of-hour bucket: :func:`rate_phase`'s factor (the same for every
    window width, so a scan takes it once); None where windows of any width get 1."""
    period = 3600 // step if step < 3600 and 3600 % step == 0 else 1
    rows, size = k.shape
    if period < 2 or not size:
        return None
    per_day = max(period, DAY // step - (DAY // step) % period)
    days = size // per_day
    if days < 3:
        return None
    cut = days * per_day
    kd = k[:, :cut].reshape(rows, days, -1, period).sum(axis=2)  # series x day x phase
    nd = n[:, :cut].reshape(rows, days, -1, period).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        day_rate = kd.sum(axis=2, keepdims=True) / nd.sum(axis=2, keepdims=True)
        expected = nd * day_rate
        ratio = (kd + RATE_PHASE_PRIOR) / (expected + RATE_PHASE_PRIOR)
    ratio = np.where(nd > 0, ratio, np.nan).transpose(0, 2, 1).reshape(rows * period, days)
    med, counts = row_median(ratio)
    return np.asarray(np.where(counts >= 3, np.maximum(med, 1.0), 1.0).reshape(rows, period))


def phase_mean(factor: np.ndarray, size: int, width: int) -> np.ndarray:
    """Per series and window end (``size`` of them): the mean of ``factor`` over a ``width``-bucket
    window's minutes of the hour."""
    period = factor.shape[1]
    phase = np.arange(period)
    total = np.zeros((factor.shape[0], period))
    for j in range(width):  # per minute of the hour, then laid out (as in :func:`phase_factor`)
        total += factor[:, (phase - j) % period]
    return np.asarray((total / width)[:, np.arange(size) % period])


def same_hours(
    calls: np.ndarray,
    first: np.ndarray,
    step: int,
    start_epoch: int,
    width: int,
    start: int,
    shift: int = 0,
    kinds: bool = True,
    *,
    sums: np.ndarray | None = None,
    wanted: np.ndarray | None = None,
    busiest: bool = False,
) -> np.ndarray:
    """Per series and window end (from bucket ``start`` on): the calls the same hours of the
    previous days of the same type (weekday or weekend, UTC) held, the median over at least two
    such days of the hour-smoothed calls; ``inf`` where fewer exist.

    A trailing baseline follows the level of the hours just before a window, so when a surge
    lasting most of a day (a marketing day) ends, the evening looks like a drop against it;
    what the same hours held on other days does not. ``shift``: buckets the previous days' clock
    is moved by (their hours an hour later or earlier, for a clock change); ``kinds=False``:
    previous days of any type; ``busiest``: the most any one previous day held (at least one day),
    not the median of two or more. ``sums``: :func:`hourly_sums` of ``calls`` (the same for every call
    on them); ``wanted``: the cells whose figure is read (the others are ``inf``, not sorted).
    """
    rows, size = calls.shape
    per_day = max(1, DAY // step)
    kind = weekend(start_epoch, size, step)
    c = hourly_sums(calls, step) if sums is None else sums
    ends = np.arange(start, size)
    days = np.full((MAX_DAYS, rows, ends.size), np.nan)
    for d in range(1, MAX_DAYS + 1):
        back = np.minimum(ends - d * per_day + shift, ends - 1)
        alike = (back >= width) & ((kind[ends] == kind[np.clip(back, 0, None)]) | (not kinds))
        held = (back[None, :] - width + 1) >= first[:, None]
        days[d - 1] = np.where(alike[None, :] & held, window_sum(c, np.clip(back, 0, None), width), np.nan)
    flat = days.reshape(MAX_DAYS, -1)
    enough = np.sum(~np.isnan(flat), axis=0) >= (1 if busiest else 2)
    if wanted is not None:
        enough &= wanted.reshape(-1)
    if busiest:
        with np.errstate(invalid="ignore"):
            top = np.nanmax(np.where(enough[None, :], flat, 0.0), axis=0)
        return np.where(enough, top, np.inf).reshape(rows, ends.size)
    med, _ = day_median(flat, enough)
    return np.where(enough, med, np.inf).reshape(rows, ends.size)


def hourly_sums(calls: np.ndarray, step: int) -> np.ndarray:
    """Cumulative sums of the hour-smoothed calls, the figures :func:`same_hours` compares."""
    return cumulative(_running_mean(calls, max(1, 3600 // step)))


def usual_calls(calls: np.ndarray, step: int, start_epoch: int, lo: int, hi: int) -> np.ndarray:
    """Per row: the calls buckets [lo, hi) usually hold, the median over the previous days (up to
    seven, from the app's first call) whose span starts and ends on the same type of day as this one
    (weekday or weekend, UTC; for a weekday, every day when fewer than two are); NaN where no previous
    day covers the span, and on a weekend before any earlier weekend span: next to weekdays every
    weekend is quiet, and a store's first weekend is no holiday for that (v13: a series' 80% fall at
    01:00 on its first Sunday, its span from Saturday evening, was measured against a Sunday evening
    running into the store's first Monday morning, and dropped as the whole app's lull in 3 of 20 weeks)."""
    per_day = max(1, DAY // step)
    kind = weekend(start_epoch, calls.shape[1], step)
    every, same = [], []
    for d in range(1, MAX_DAYS + 1):
        a, b = lo - d * per_day, hi - d * per_day
        if a < 0:
            break
        held = calls[:, a:b].sum(axis=1)
        if USUAL_WEEKEND_DAYS and not held.any():
            continue  # before the app's first call: not a day it had
        every.append(held)
        if kind[a] == kind[lo] and (kind[b - 1] == kind[hi - 1] or not USUAL_WEEKEND_DAYS):
            same.append(held)
    # a weekend against earlier weekend spans only, even one
    days = same if (kind[lo] and USUAL_WEEKEND_DAYS) or len(same) >= 2 else every
    if not days:
        return np.full(calls.shape[0], np.nan)
    return np.asarray(np.median(np.array(days), axis=0))

"""The detector's scan as it stood before session 14 (main 7cb4f54), kept as the reference
the stacked scan is compared with (``tests/test_anomalies_stacked.py``): one scan per level and
rate metric, products with BLAS, a median of every cell. Verbatim but for the imports and
the rate clustering factor of session 17, the falls' two baselines, the rate's members'
mixture and the rises' busiest previous day of session 18, and session 24's three far calls,
settled wobble, falls below both baselines and first-day falls the series came back from, and
session 28's rate clustering read without the window's own pairs and rises held to the same minutes of
previous days, and session 31's falls over 30 minutes (the same changes as in the scan)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmtrace.analytics.anomalies_profile import (
    DAY,
    FEW_DAYS_FLOOR,
    FLOOR_DAYS,
    MAX_DAYS,
    RATE_PHASE_PRIOR,
    RATIO_FLOOR,
    RATIO_PRIOR,
    _running_mean,
    cumulative,
    phase_factor,
    row_median,
    shape,
    weekend,
    window_sum,
)
from llmtrace.analytics.anomalies_scan import (
    ALIGN,
    ALONE_WITH_AFTER,
    BASELINE,
    BORROW_BEST,
    CLUSTER_LAG,
    COUNT_NEWCOMERS,
    EARLY_WOBBLE,
    EXACT_UP_TO,
    FALL_SCALES,
    FALLS_BELOW_BOTH,
    FIRST_WEEKEND,
    HOURS_PRIOR,
    HOURS_STAND_IN,
    LOCAL_SPREAD,
    MIN_BASE_CALLS,
    MIN_BASE_TRIALS,
    MIN_RATE_CHANGE,
    MIN_SCORE,
    MIN_VOLUME_CHANGE,
    NB_DEFAULT_C,
    NB_MIN_C,
    NB_MIN_MU,
    PHI_WITHOUT_WINDOW,
    PRIOR_WEIGHT,
    RATE_CLUSTER_CAP,
    RATE_CLUSTER_MAX,
    RATE_CLUSTER_PRIOR,
    RATE_DEFAULT_C,
    RATE_MIN_C,
    RAW_SAME_HOURS,
    RECOVERED_FIRST_DAY,
    RISE_ANY_DAY,
    SCALES,
    SCHEDULED_FALLS,
    SETTLED_WOBBLE,
    SHIFT_HOURS,
    SILENCE_HABIT,
    SPREAD_ON_MID,
    TWO_SIDED_FALLS,
    VOLUME_BASELINE,
    VOLUME_DROP,
    VOLUME_SPIKE,
    LeafVolume,
    Scan,
    Window,
    _after,
    _borrowed_shapes,
    _cluster_sums,
    _early_wobble,
    _exact,
    _first_days,
    _flag_nb,
    _nb_size_by_hour,
    _next_hour,
    _previous_days,
    _same_hours_sums,
    _scheduled,
    _silences_before,
    _stopped,
    _usual_depth,
    _usual_silences,
    clustering,
    leaf_clustering,
    rate_clustering,
    recurring,
)
from llmtrace.analytics.anomalies_sql import METRICS
from llmtrace.analytics.tails import chernoff_log10

_cumulative, _window_sum = cumulative, window_sum


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
        self.smooths = [self._days(hourly, first), self._days(shape(calls, step), first)]

    def _days(self, smooth: np.ndarray, first: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per previous day: cumulative sums of the smoothed calls that day, and of its holes."""
        rows, size = smooth.shape
        index = np.arange(size)
        out = []
        for d in range(1, MAX_DAYS + 1):
            shifted = index - d * self.per_day
            past = np.full((rows, size), np.nan)
            ok = shifted >= 0
            past[:, ok] = smooth[:, shifted[ok]]
            past[shifted[None, :] < first[:, None]] = np.nan
            out.append((cumulative(np.nan_to_num(past, nan=0.0)), cumulative(np.isnan(past).astype(float))))
        return out

    def ratio(self, width: int, lag: int, base: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per series and window end (from bucket ``start`` on): the usual ratio of the window's
        calls per bucket to its baseline's (``base`` buckets ending ``lag`` before the window's
        end), higher and lower of the two smoothings, and where no previous day covers both
        (ratios 1 there)."""
        (hourly, missing), (fine, _) = (self._ratio(days, width, lag, base, start) for days in self.smooths)
        hi, lo = np.maximum(hourly, fine), np.minimum(hourly, fine)
        return np.where(missing, 1.0, hi), np.where(missing, 1.0, lo), missing

    def _ratio(
        self, days: list[tuple[np.ndarray, np.ndarray]], width: int, lag: int, base: int, start: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = days[0][0].shape[0]
        last = days[0][0].shape[1] - 2
        ends = np.arange(start, last + 1)
        size = ends.size
        # session 19: a negative lag is a baseline after the window, read where it has ended
        far = ends - lag - base + 1 if lag >= 0 else np.minimum(ends - lag, last)
        begin = np.clip(far, 0, None)
        every = np.full((MAX_DAYS, rows, size), np.nan)
        same = every.copy()
        for d, (sums, holes) in enumerate(days):
            back = (d + 1) * self.per_day
            with np.errstate(divide="ignore", invalid="ignore"):
                now = window_sum(sums, ends, width) / width
                then = window_sum(sums, ends - lag if lag >= 0 else begin, base)
                prior = RATIO_PRIOR * 24 / self.per_day  # session 19: calls an hour, per bucket
                r = (now + prior) / (then / base + prior)
            if lag >= 0:
                covered = window_sum(holes, ends, lag + base) == 0
            else:
                covered = (window_sum(holes, begin, width - lag) == 0) & (ends - lag <= last)
            r = np.where(covered & np.isfinite(r), r, np.nan)
            every[d] = r
            alike = (self.kind[ends] == self.kind[np.clip(ends - back, 0, None)]) & (
                self.kind[begin] == self.kind[np.clip(begin - back, 0, None)]
            )
            same[d] = np.where(alike[None, :], r, np.nan)
        med_all, n_all = row_median(every.reshape(MAX_DAYS, -1).T)
        med_same, n_same = row_median(same.reshape(MAX_DAYS, -1).T)
        # one day of the same type is trusted alone only when it is the same weekday a week ago
        week_ago = ~np.isnan(same[MAX_DAYS - 1].reshape(-1))
        ratio = np.where((n_same >= 2) | week_ago, med_same, med_all).reshape(rows, size)
        missing = (n_all == 0).reshape(rows, size)
        # session 32: as low as RATIO_FLOOR where two previous days or more hold the window and its baseline
        floor = np.where(n_all >= FLOOR_DAYS, RATIO_FLOOR, FEW_DAYS_FLOOR).reshape(rows, size)
        return np.clip(ratio, floor, 10.0), missing


def seasonals(
    calls: np.ndarray, first: np.ndarray, step: int, start_epoch: int, parents: Sequence[np.ndarray]
) -> list[tuple[Seasonal, np.ndarray | None]]:
    """The leaves' own seasonal ratios, then each parent level's (membership matrices, groups
    x leaves, most specific first) with the leaf -> group index that lays them out per leaf."""
    out: list[tuple[Seasonal, np.ndarray | None]] = [(Seasonal(calls, first, step, start_epoch), None)]
    for member in parents:
        if not member.size:
            continue
        group_first = np.array([first[row > 0].min() if (row > 0).any() else calls.shape[1] for row in member])
        out.append((Seasonal(member @ calls, group_first, step, start_epoch), member.argmax(axis=0)))
    return out


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
    period = 3600 // step if step < 3600 and 3600 % step == 0 else 1
    rows, size = k.shape
    if period < 2 or width >= period or not size:
        return np.ones((rows, size))
    per_day = max(period, DAY // step - (DAY // step) % period)
    days = size // per_day
    if days < 3:
        return np.ones((rows, size))
    cut = days * per_day
    kd = k[:, :cut].reshape(rows, days, -1, period).sum(axis=2)  # series x day x phase
    nd = n[:, :cut].reshape(rows, days, -1, period).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        day_rate = kd.sum(axis=2, keepdims=True) / nd.sum(axis=2, keepdims=True)
        expected = nd * day_rate
        ratio = (kd + RATE_PHASE_PRIOR) / (expected + RATE_PHASE_PRIOR)
    ratio = np.where(nd > 0, ratio, np.nan).transpose(0, 2, 1).reshape(rows * period, days)
    med, counts = row_median(ratio)
    factor = np.where(counts >= 3, np.maximum(med, 1.0), 1.0).reshape(rows, period)
    phases = np.arange(size) % period
    total = np.zeros((rows, size))
    for j in range(width):
        total += factor[:, (phases - j) % period]
    return np.asarray(total / width)


def same_hours(
    calls: np.ndarray,
    first: np.ndarray,
    step: int,
    start_epoch: int,
    width: int,
    start: int,
    shift: int = 0,
    kinds: bool = True,
    busiest: bool = False,
    smoothed: bool = True,
) -> np.ndarray:
    """Per series and window end (from bucket ``start`` on): the calls the same hours of the
    previous days of the same type (weekday or weekend, UTC) held, the median over at least two
    such days of the hour-smoothed calls; ``inf`` where fewer exist.

    A trailing baseline follows the level of the hours just before a window, so when a surge
    lasting most of a day (a marketing day) ends, the evening looks like a drop against it;
    what the same hours held on other days does not. ``shift``: buckets the previous days' clock
    is moved by (their hours an hour later or earlier, for a clock change); ``kinds=False``:
    previous days of any type; ``smoothed=False``: the calls themselves (session 28).
    """
    rows, size = calls.shape
    per_day = max(1, DAY // step)
    kind = weekend(start_epoch, size, step)
    c = cumulative(_running_mean(calls, max(1, 3600 // step)) if smoothed else calls)
    ends = np.arange(start, size)
    days = np.full((MAX_DAYS, rows, ends.size), np.nan)
    for d in range(1, MAX_DAYS + 1):
        back = np.minimum(ends - d * per_day + shift, ends - 1)
        alike = (back >= width) & ((kind[ends] == kind[np.clip(back, 0, None)]) | (not kinds))
        held = (back[None, :] - width + 1) >= first[:, None]
        days[d - 1] = np.where(alike[None, :] & held, window_sum(c, np.clip(back, 0, None), width), np.nan)
    if busiest:  # the most any one previous day held (session 18)
        held_days = ~np.isnan(days)
        top = np.where(held_days, days, -np.inf).max(axis=0)
        return np.where(held_days.any(axis=0), top, np.inf)
    med, counts = row_median(days.reshape(MAX_DAYS, -1).T)
    return np.where(counts >= 2, med, np.inf).reshape(rows, ends.size)


def _rate_wobble(k: np.ndarray, n: np.ndarray, p: np.ndarray, ok: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Per series: c^2, the squared relative wobble of the true rate beyond binomial noise
    (a beta-binomial: Var k = n p (1 - p) + c^2 (n p)^2), from the median over the series'
    own windows with at least ``NB_MIN_MU`` expected events (``RATE_DEFAULT_C`` with fewer than
    24 of them).

    The extra spread grows with the window's trials, so one constant multiplier (a
    quasi-binomial phi) cannot fit both 5-minute and 3-hour windows: fitted on busy windows
    it drowned a doubled latency tail, and on windows of one or two expected events the
    median residual alone made it 2-3 (a discrete count's median is not the chi-square's).
    Only windows at or above their expectation count: the baseline rate is the higher of two
    estimates, so the windows below it say how biased that is, not how the rate wobbles
    upwards (on a quiet series they doubled c and hid a 1.5x cost change).
    """
    mu = n * p
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = ((k - mu) ** 2 / 0.455 - phi * mu * (1 - p)) / mu**2
    c2 = np.where(ok & (mu >= NB_MIN_MU * phi) & (k >= mu), c2, np.nan)
    med, counts = row_median(c2)
    c2 = np.where(counts >= 24, np.clip(med, RATE_MIN_C**2, 1.0), RATE_DEFAULT_C**2)
    return np.asarray(c2)


def _nb_size(x: np.ndarray, mu: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per series: the negative binomial size r = 1 / c^2, c the relative wobble of the
    expectation beyond Poisson noise, from the median of the series' own windows with at
    least ``NB_MIN_MU`` expected calls (``NB_DEFAULT_C`` with fewer than 24 of them). Both
    sides count: the expectation's own error (a seasonal ratio from a few days) is part of
    the spread a window is judged with (one side only, tried on v3 tuning seeds, doubled
    the false volume episodes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = ((x - mu) ** 2 / 0.455 - mu) / mu**2
    c2 = np.where(ok & (mu >= NB_MIN_MU), c2, np.nan)
    med, counts = row_median(c2)
    c2 = np.where(counts >= 24, np.clip(med, NB_MIN_C**2, 1.0), NB_DEFAULT_C**2)
    return np.asarray(1 / c2)


def _flag(
    group_idx: np.ndarray,
    end: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    p: np.ndarray,
    c2: np.ndarray,
    base_n: np.ndarray,
    up: bool,
    phi: np.ndarray,
) -> list[tuple[int, int, float]]:
    """(group, end bucket, score) of windows whose overdispersed binomial tail passes MIN_SCORE:
    the exact binomial tail of k and n shrunk by the window's design effect
    ``1 + c^2 n p / (1 - p) + n / (base_n + PRIOR_WEIGHT + 1)``. The last term is the
    baseline's own uncertainty (the beta-binomial predictive of a rate learnt from
    ``base_n`` trials): 20 trials of a young series with no call above the bar do not make
    a rate of 1% that thousands of calls can be held to."""
    deff = phi + c2[group_idx] * n * p / (1 - p) + n / (base_n + PRIOR_WEIGHT + 1)
    kd, nd = k / deff, n / deff
    bound = chernoff_log10(kd, nd, p)
    slack = 0.5 * np.log10(8 * nd + 1) + 0.5
    out = []
    for i in np.flatnonzero(bound + slack >= MIN_SCORE):
        # beyond EXACT_UP_TO the bound is the score (as for volume): never above the exact one
        score = float(bound[i]) if bound[i] >= EXACT_UP_TO else _exact(kd[i], nd[i], p[i], up)
        if score >= MIN_SCORE:
            out.append((int(group_idx[i]), int(end[i]), score))
    return out


def _mixture(member: np.ndarray, phi: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row of ``member`` and bucket: its leaves' clustered variance and variance (zero for a
    row of fewer than two leaves with variance); session 18."""
    multi = ((member > 0) & (v > 0).any(axis=1)[None, :]).sum(axis=1) >= 2
    return (member @ (phi[:, None] * v)) * multi[:, None], (member @ v) * multi[:, None]


def _window_phi(phi: np.ndarray, mix: tuple[np.ndarray, np.ndarray] | None, width: int) -> np.ndarray:
    """Per row and window end: at least the members' clustering over the window (session 18);
    ``phi``: per row and window end, or a column of one per row."""
    if mix is None:
        return phi
    kernel = np.ones(width)
    size = mix[0].shape[1]
    clustered = np.array([np.convolve(row, kernel)[:size] for row in mix[0]]).reshape(mix[0].shape)
    spread = np.array([np.convolve(row, kernel)[:size] for row in mix[1]]).reshape(mix[1].shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, np.maximum(phi, clustered / spread), phi)


def _phi_without_window(
    k: np.ndarray, n: np.ndarray, p: np.ndarray, ok: np.ndarray, step: int, width: int
) -> np.ndarray:
    """Per row and window end: the rate clustering factor of the pairs that do not touch the
    window (session 28): every pair's capped squared difference and variance, less those of the
    pairs ending within the window or ``CLUSTER_LAG`` after it."""
    lag = max(1, CLUSTER_LAG // step)
    size = k.shape[1]
    r, v = np.where(ok, k - n * p, 0.0), np.where(ok, n * p * (1 - p), 0.0)
    num, var = np.zeros(k.shape), np.zeros(k.shape)
    if size > lag:
        both = ok[:, lag:] & ok[:, :-lag]
        var[:, lag:] = np.where(both, v[:, lag:] + v[:, :-lag], 0.0)
        num[:, lag:] = np.minimum(np.where(both, (r[:, lag:] - r[:, :-lag]) ** 2, 0.0), RATE_CLUSTER_CAP * var[:, lag:])
    kernel = np.ones(width + lag)
    near_num = np.array([np.convolve(row, kernel)[lag : size + lag] for row in num]).reshape(k.shape)
    near_var = np.array([np.convolve(row, kernel)[lag : size + lag] for row in var]).reshape(k.shape)
    far_num, far_var = num.sum(axis=1)[:, None] - near_num, var.sum(axis=1)[:, None] - near_var
    return np.clip((far_num + RATE_CLUSTER_PRIOR) / (far_var + RATE_CLUSTER_PRIOR), 1.0, RATE_CLUSTER_MAX)


def _rates(
    name: str,
    k: np.ndarray,
    n: np.ndarray,
    judged: np.ndarray,
    base: int,
    step: int,
    mix: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[Window], np.ndarray]:
    """Two passes: the second one's baselines leave out the buckets the first one flagged, so
    an incident earlier in the day does not raise the bar for the next one. Only the series
    with flagged buckets are scanned again (every statistic is per series, so the others'
    first pass stands)."""
    found, p_bucket = _rates_pass(name, k, n, judged, base, np.ones(k.shape), step, mix)
    rows = sorted({w.group for w in found})
    if not rows:
        return found, p_bucket
    keep = np.ones((len(rows), k.shape[1]))
    for w in found:
        keep[rows.index(w.group), w.first : w.last + 1] = 0
    again, p_again = _rates_pass(
        name, k[rows], n[rows], judged, base, keep, step, None if mix is None else (mix[0][rows], mix[1][rows])
    )
    p_bucket[rows] = p_again
    for w in again:
        w.group = rows[w.group]
    return again, p_bucket


def _rates_pass(
    name: str,
    k: np.ndarray,
    n: np.ndarray,
    judged: np.ndarray,
    base: int,
    keep: np.ndarray,
    step: int,
    mix: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[Window], np.ndarray]:
    metric = METRICS[name]
    ck, cn = _cumulative(k), _cumulative(n)
    bk, bn = _cumulative(k * keep), _cumulative(n * keep)  # baselines: flagged buckets left out
    found: list[Window] = []
    p_bucket = np.zeros(k.shape)
    ends = np.arange(k.shape[1])
    days_k, days_n = _previous_days(bk, step), _previous_days(bn, step)
    for width in SCALES:
        kw, nw = _window_sum(ck, ends, width), _window_sum(cn, ends, width)
        kb, nb = _window_sum(bk, ends - width, base), _window_sum(bn, ends - width, base)
        if width == SCALES[0]:  # session 24: the wobble without the day after a lasting shift
            settled = np.ones(k.shape, bool)
            if SETTLED_WOBBLE and (keep == 0).any():
                run = SHIFT_HOURS * 3600 // step
                shifted = _window_sum(_cumulative(1 - keep), ends, run) >= run
                settled = _window_sum(_cumulative(shifted.astype(float)), ends, base + 1) == 0
        p0 = np.clip((kb + PRIOR_WEIGHT * metric.prior) / (nb + PRIOR_WEIGHT), 1e-4, 0.999)
        # the same hours of previous days too, when they hold enough trials: rates that follow the
        # time of day (slower calls at the daily peak) are judged against the higher of the two.
        # Not the last hours before the window: they followed a slow ramp or a permanent shift up
        # within an hour or two, before the evidence for it had piled up
        kr, nr = _same_hours_sums(days_k, days_n, ends, width, step)
        with np.errstate(divide="ignore", invalid="ignore"):
            # shrunk towards the day's rate: a few hours of a quiet series are noisy, and taking the
            # higher of two estimates would pick the noise up (and the tests' spread with it)
            p_hours = np.where(nr >= MIN_BASE_TRIALS, (kr + HOURS_PRIOR * p0) / (nr + HOURS_PRIOR), 0.0)
        p0 = np.clip(np.maximum(p0, p_hours) * rate_phase(k * keep, n * keep, step, width), 1e-4, 0.999)
        if HOURS_STAND_IN:  # session 30: a quiet last day judged on the same hours of the days before
            nb = np.where(nr >= MIN_BASE_TRIALS, np.maximum(nb, nr), nb)
        ok = (nb >= MIN_BASE_TRIALS) & (nw > 0) & (ends >= width)
        if width == 1:
            p_bucket = np.where(ok, p0, np.nan)
            phi = rate_clustering(kw, nw, p0, ok & (keep > 0), step)  # session 17: clustered calls
            p1, ok1 = p0, ok & (keep > 0)
        own = _phi_without_window(k, n, p1, ok1, step, width) if PHI_WITHOUT_WINDOW else phi[:, None]
        phi_w = np.broadcast_to(_window_phi(own, mix, width), k.shape)  # session 18: members' mixture
        c2 = _rate_wobble(kw, nw, p0, ok & settled, phi_w)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = kw / nw
        gate = (
            ok
            & judged[None, :]
            & (kw - nw * p0 >= metric.min_events)  # session 24: three far calls (MIN_EXCESS otherwise)
            & (share >= metric.min_ratio * p0)
            & (share - p0 >= MIN_RATE_CHANGE)
        )
        g, e = np.nonzero(gate)
        if EARLY_WOBBLE and g.size:  # session 25: at most the wobble before the first lasting candidate
            rows = np.unique(g)
            settled_ok = (ok & settled)[rows]
            c2[rows] = _early_wobble(c2[rows], kw[rows], nw[rows], p0[rows], settled_ok, phi_w[rows], g, e, width, step)
        for group, last, score in _flag(g, e, kw[g, e], nw[g, e], p0[g, e], c2, nb[g, e], True, phi_w[g, e]):
            found.append(Window(group, name, "up", last - width + 1, last, score))
    return found, p_bucket


def leaf_volume(
    calls: np.ndarray,
    first: np.ndarray,
    step: int,
    start_epoch: int = 0,
    parents: Sequence[np.ndarray] = (),
    keep: int | None = None,
) -> LeafVolume:
    """Expected calls of every leaf window: baseline calls rescaled by the leaf's profile.

    The profile is the leaf's own where a previous day of it exists, else its parent's
    (``parents``: membership matrices, groups x leaves, most specific first), so a young
    series follows its service's day from its first hours; ``calls`` may reach further back
    than the judged buckets (weeks for the weekly profile), of which the last ``keep`` are
    returned. Groups sum these (a service whose models peak at different hours gets the sum
    of their expectations, and a model joining it does not distort its shape).
    """
    candidates = seasonals(calls, first, step, start_epoch, parents)
    cc = _cumulative(calls)
    ends = np.arange(calls.shape[1])
    start = calls.shape[1] - (calls.shape[1] if keep is None else keep)
    kept = (calls.shape[0], calls.shape[1] - start)
    align = ALIGN // step if step < ALIGN else 0
    chosen = _borrowed_shapes(candidates, cc, first, step, start) if BORROW_BEST else {}
    out = LeafVolume({}, {}, {}, {}, {}, {}, {}, calls)
    if FIRST_WEEKEND:  # session 25: weekend buckets judged on weekdays' ratios
        weekend_, weekday_ = _first_days(first, step, start_epoch, calls.shape[1])
        out.first_weekend, out.first_weekday = weekend_[:, start:], weekday_[:, start:]
    for width in sorted(set(SCALES) | set(FALL_SCALES)):  # session 31: falls over 30 minutes too
        base = max(VOLUME_BASELINE // step, 2 * width)  # long windows: a baseline twice as long
        x = _window_sum(cc, ends, width)[:, start:]
        alive = ((ends - width - 2 * base + 1)[None, :] >= first[:, None])[:, start:]
        ratios = [np.ones(kept) for _ in range(4)]  # (baseline 1, 2) x (higher, lower)
        missing = np.ones(kept, bool)
        borrowed_from = np.zeros(kept, bool)
        options = []
        for seasonal, leaf_row in candidates:  # the first that covers the window and both baselines
            found = [seasonal.ratio(width, lag, base, start) for lag in (width, width + base)]
            if leaf_row is not None:
                found = [tuple(a[leaf_row] for a in f) for f in found]
            lacking = found[0][2] | found[1][2]
            shapes = (found[0][0], found[1][0], found[0][1], found[1][1])
            options.append((shapes, lacking))
            take = missing & ~lacking
            if leaf_row is not None:
                borrowed_from |= take
            for i, r in enumerate(shapes):
                ratios[i] = np.where(take, r, ratios[i])
            missing &= lacking
        for leaf, (k, row) in chosen.items():  # a young leaf's best-fitting borrowed shape
            shapes, lacking = options[k]
            take = borrowed_from[leaf] & ~lacking[row]
            for i, r in enumerate(shapes):
                ratios[i][leaf] = np.where(take, r[row], ratios[i][leaf])
        ys = [_window_sum(cc, ends - lag, base)[:, start:] * alive for lag in (width, width + base)]
        # the minute of the hour: rises against a recurring burst's share, falls against the quiet's
        phase = phase_factor(calls, step, width)[:, start:]
        hours = [np.maximum(phase, 1.0)] * 2 + [np.minimum(phase, 1.0)] * 2
        mus = [ys[i % 2] * width * r * hours[i] / base for i, r in enumerate(ratios)]
        mids = [ys[i] * width * np.sqrt(ratios[i] * ratios[i + 2]) * phase / base for i in (0, 1)]
        out.x[width] = x * alive
        out.x_all[width] = x
        out.y[width] = (ys[0], ys[1])
        # falls: never above what the same hours of previous days held (the end of a day-long surge);
        # rises never below what they held within an hour (the morning after a quiet day, or a clock
        # change moving the morning ramp an hour earlier). Falls take no such hour: a batch that
        # stops at its usual hour would be a quiet hour away from its expectation
        usual = [same_hours(calls, first, step, start_epoch, width, start, s) * phase for s in (0, -align, align)]
        low = usual[0]
        high = np.nan_to_num(np.maximum.reduce(usual), posinf=0.0)
        if RISE_ANY_DAY:  # before two days of its type exist: the busiest of any previous days (session 18)
            shifts = (0, -align, align)
            any_day = [same_hours(calls, first, step, start_epoch, width, start, s, False, True) for s in shifts]
            high = np.where(np.isinf(usual[0]), np.nan_to_num(np.maximum.reduce(any_day), posinf=0.0) * phase, high)
            if RAW_SAME_HOURS:  # session 28: the busiest day's same minutes, unsmoothed
                raw_any = same_hours(calls, first, step, start_epoch, width, start, 0, False, True, smoothed=False)
                high = np.where(np.isinf(usual[0]), np.maximum(high, np.nan_to_num(raw_any, posinf=0.0)), high)
                low = np.where(np.isinf(usual[0]) & (raw_any == 0), 0.0, low)  # ... and falls expect none
        if RAW_SAME_HOURS:  # session 28: nor below what the same minutes held, unsmoothed
            raw = same_hours(calls, first, step, start_epoch, width, start, smoothed=False)
            high = np.maximum(high, np.nan_to_num(raw, posinf=0.0))
        out.mu[width] = (np.maximum(mus[0], high), np.maximum(mus[1], high))
        out.mu_low[width] = (np.minimum(mus[2], low), np.minimum(mus[3], low))
        out.mu_mid[width] = (mids[0], mids[1])
        out.missing[width] = missing & alive
        out.borrowed[width] = borrowed_from & alive
        if TWO_SIDED_FALLS:  # the leaves' baseline after the window: shared with the scan (session 19)
            _after(out, candidates, chosen, cc, width, base, start, alive, borrowed_from, low, phase)
    return out


def _volume(v: LeafVolume, member: np.ndarray, judged: np.ndarray, step: int) -> tuple[list[Window], np.ndarray]:
    """Volume windows of each group (rows of ``member`` over leaves), from summed leaf counts.

    Of the two baselines (and two seasonal smoothings), a rise is judged against the higher
    expectation and a fall against the lower, so the hours after a spike (or a drop) are not
    its mirror image. Rises are judged first: a fall is then judged against a baseline that
    holds none of them (the other one, else not at all), so the evening after a day-long
    surge (a marketing day) is not a drop against the surge's hours.
    """
    found: list[Window] = []
    mu_bucket = np.zeros((member.shape[0], judged.size))
    phi = np.ones(member.shape[0])
    if v.calls is not None:
        num, den = _cluster_sums(v.calls, step)  # the leaves' pooled factor: the prior of every group
        phi = clustering(member @ v.calls, step, float(num.sum() / den.sum()) if den.sum() > 0 else 1.0)
    for width in SCALES:
        if width == 1:
            rising, falling = [member @ m for m in v.mu[1]], [member @ m for m in v.mu_low[1]]
            y1 = member @ v.y[1][0]
            mu_bucket = np.where(y1 > 0, (rising[0] + falling[0]) / 2, np.nan)
        found += _volume_side(v, member, judged, width, True, None, step, phi)
    surged = np.zeros(mu_bucket.shape)
    for w in found:
        surged[w.group, w.first : w.last + 1] = 1
    counts = member @ v.x[1]  # session 24: the hour after each bucket, the silences come back from
    later = _next_hour(counts, step) if RECOVERED_FIRST_DAY else None
    habit = _silences_before(counts) if RECOVERED_FIRST_DAY else None
    stopped = _stopped(counts) if FIRST_WEEKEND else None  # session 25
    falls: list[Window] = []
    for width in FALL_SCALES:
        falls += _volume_side(v, member, judged, width, False, _cumulative(surged), step, phi, later, habit, stopped)
    if SCHEDULED_FALLS and v.calls is not None:  # session 25: a scheduled series against its last runs
        by_runs, scheduled, expected = _scheduled(member @ v.calls, judged, step)
        falls = [w for w in falls if not scheduled[w.group]] + by_runs
        mu_bucket = np.where(scheduled[:, None], expected, mu_bucket)
    return found + falls, mu_bucket


def _volume_side(
    v: LeafVolume,
    member: np.ndarray,
    judged: np.ndarray,
    width: int,
    up: bool,
    surged: np.ndarray | None,
    step: int,
    phi: np.ndarray,
    later: np.ndarray | None = None,
    habit: np.ndarray | None = None,
    stopped: np.ndarray | None = None,
) -> list[Window]:
    """Rises (or falls) of every group at one scale; ``surged``: cumulative flagged rises, whose
    buckets a fall's baseline must not hold; ``phi``: each group's clustering factor (the
    negative binomial is taken on clusters, calls / phi, with the spread left beyond them)."""
    # session 29: a fall counts the calls of members too young for their baselines
    x = member @ (v.x[width] if up or not COUNT_NEWCOMERS else v.x_all[width])
    y1, y2 = (member @ y for y in v.y[width])
    m1, m2 = (member @ m for m in (v.mu if up else v.mu_low)[width])
    missing = member @ (v.missing[width] * v.y[width][0]) > 0.2 * y1
    borrowed = member @ (v.borrowed[width] * v.y[width][0]) > 0.2 * y1
    first_is = m1 >= m2 if up else m1 <= m2
    usable = np.ones(x.shape, bool)
    if surged is not None:  # which baselines hold no flagged rise
        base = max(VOLUME_BASELINE // step, 2 * width)
        ends = np.arange(x.shape[1])
        clean1 = _window_sum(surged, ends - width, base) == 0
        clean2 = _window_sum(surged, ends - width - base, base) == 0
        first_is = np.where(clean1 & clean2, first_is, clean1)
        usable = clean1 | clean2
    y, mu = np.where(first_is, y1, y2), np.where(first_is, m1, m2)
    # A fall is judged against the lowest of several expectations (two smoothings, the same hours
    # of previous days): that guard already allows for their disagreement, so the spread is
    # measured on their unguarded middle; measured on the guarded one, the guard's own bias was
    # counted a second time as noise (c 0.26 instead of ~0.17 on a v8 series, hiding 60% drops).
    # Rises keep the spread of their guarded expectation: measured on the middle, daily tenant
    # syncs became spikes (v7: 3 more incidents, 0.15 more false episodes per series-week).
    mids = [member @ m for m in v.mu_mid[width]]
    mid = np.where(first_is, *mids) if SPREAD_ON_MID and not up else mu
    lower, apart = mu, np.zeros(x.shape)
    below_both = None
    if not up:  # both clean baselines: their geometric mean, their disagreement in the spread (session 18)
        usable1, usable2 = (y1 >= MIN_BASE_CALLS) & (m1 > 0), (y2 >= MIN_BASE_CALLS) & (m2 > 0)
        if surged is not None:
            usable1, usable2 = usable1 & clean1, usable2 & clean2
        both = usable1 & usable2
        # session 27: only one usable, paired with the hours after the window where they exist
        alone = ~both & (usable1 | usable2) if ALONE_WITH_AFTER else np.zeros(x.shape, bool)
        y_alone, m_alone, mid_alone = np.where(usable1, y1, y2), np.where(usable1, m1, m2), np.where(usable1, *mids)
        with np.errstate(divide="ignore", invalid="ignore"):
            apart = np.where(both, np.log(m1 / m2) / 2, 0.0) ** 2
        y = np.where(both, (y1 + y2) / 2, y)
        below_both = np.where(both, np.minimum(m1, m2), np.nan)  # session 24
        mu = np.where(both, np.sqrt(m1 * m2), mu)
        mid = np.where(both, np.sqrt(mids[0] * mids[1]), mid) if SPREAD_ON_MID else mu
        if width in v.y_after and surged is not None:  # and the hours after it, where clean (session 19)
            ya, ma, mida = (member @ a[width] for a in (v.y_after, v.mu_after_low, v.mu_after_mid))
            usable_a = member @ (~v.after_ok[width] * (v.y[width][0] + v.y_after[width])) == 0
            clean_a = _window_sum(surged, np.minimum(np.arange(x.shape[1]) + base, x.shape[1] - 1), base) == 0
            after_ok = usable_a & clean_a & (ya >= MIN_BASE_CALLS) & (ma > 0)
            one = alone & after_ok
            mu, mid, y = np.where(one, m_alone, mu), np.where(one, mid_alone, mid), np.where(one, y_alone, y)
            two = (both & after_ok) | one
            below_both = np.where(two, np.minimum(mu, ma), below_both)
            with np.errstate(divide="ignore", invalid="ignore"):
                apart = np.where(two, np.log(mu / ma) / 2, np.sqrt(apart)) ** 2
            mu = np.where(two, np.sqrt(mu * ma), mu)
            mid = np.where(two, np.sqrt(mid * mida), mid)
            y = np.where(two, (y + ya) / 2, y)
    ok = (y >= MIN_BASE_CALLS) & judged[None, :] & usable
    # a borrowed shape fits the series less well than its own: its spread is the series'
    # own over the windows judged with it, and at least that of its own profile
    xc, muc, midc = x / phi[:, None], mu / phi[:, None], mid / phi[:, None]
    size = _nb_size(xc, midc, ok & ~borrowed)
    size_borrowed = np.minimum(_nb_size(xc, midc, ok & borrowed), size)
    # without a profile (not even a parent's) a trailing baseline cannot follow the morning
    # ramp (nor the evening): rises are not judged, falls only to a quarter within the hour
    if up:
        gate = ok & ~missing & (x >= VOLUME_SPIKE * mu) & (x - mu >= MIN_VOLUME_CHANGE)
        if v.first_weekday is not None:  # session 25: nor on a series' first weekday
            gate &= ~(member @ (v.first_weekday * v.y[width][0]) > 0.2 * y1)
    else:
        drop = np.where(missing, 0.25 if width <= 12 else 0.0, VOLUME_DROP)
        gate = ok & (x <= drop * mu) & (mu - x >= MIN_VOLUME_CHANGE)
        if later is not None:  # session 24: without a profile, only a fall the series came back from
            with np.errstate(invalid="ignore"):
                back = ~(later < 0.5 * y1 * max(1, 3600 // step) / max(VOLUME_BASELINE // step, 2 * width))
            gate &= ~missing | back
            if v.first_weekend is not None:  # session 25: ... and on the store's first weekend
                first_weekend = member @ (v.first_weekend * v.y[width][0]) > 0.2 * y1
                gate &= ~first_weekend | back | (False if stopped is None else stopped)
        if habit is not None:  # ... and not a silence it has come back from before
            starts = np.maximum(np.arange(x.shape[1]) - width + 1, 0)
            gate &= ~(missing & (x == 0) & (habit[:, starts] >= width))
    g, e = np.nonzero(gate)
    period = 3600 // step if step < 3600 and 3600 % step == 0 else 1
    if not up and width not in SCALES and 1 < width < period and g.size:  # session 31: a usual depth
        keep = ~_usual_depth(x / phi[:, None], mu / phi[:, None], ok, period, g, e)
        g, e = g[keep], e[keep]
    own = np.where(borrowed[g, e], size_borrowed[g], size[g])
    if LOCAL_SPREAD and not up and step < 3600 and 3600 % step == 0 and DAY // step <= x.shape[1]:
        # session 27: the spread at that time of day where narrower, where a profile of the
        # window's own day type expects it
        local = _nb_size_by_hour(xc, midc, ok & ~borrowed & ~missing, step)[g, e]
        plain = borrowed[g, e] | missing[g, e] | np.isnan(local)
        for flag in (v.first_weekend, v.unsettled.get(width)):
            if flag is not None:
                plain |= (member @ (flag * v.y[width][0]) > 0.2 * y1)[g, e]
        own = np.where(plain, own, np.fmax(own, local))
    r = 1 / (1 / own + apart[g, e])
    period = 3600 // step if step < 3600 and 3600 % step == 0 else 1
    silence = None
    if SILENCE_HABIT and not up and period > 1 and width < period and g.size:
        silence = _usual_silences(x, muc, ok, period)[g, e % period]
    flagged = _flag_nb(g, e, xc[g, e], muc[g, e], r, up, silence, lower[g, e] / phi[g])
    if below_both is not None and FALLS_BELOW_BOTH:  # session 24: far below both, own spread
        low = below_both[g, e]
        with np.errstate(invalid="ignore"):
            alt = np.isfinite(low) & (x[g, e] <= drop[g, e] * low) & (low - x[g, e] >= MIN_VOLUME_CHANGE)
        ga, ea = g[alt], e[alt]
        r_own = own[alt]
        best = {(a, b): c for a, b, c in flagged}
        for a, b, c in _flag_nb(
            ga,
            ea,
            xc[ga, ea],
            low[alt] / phi[ga],
            r_own,
            up,
            None if silence is None else silence[alt],
            lower[ga, ea] / phi[ga],
        ):
            best[(a, b)] = max(c, best.get((a, b), c))
        flagged = [(a, b, c) for (a, b), c in sorted(best.items())]
    return [
        Window(group, "calls", "up" if up else "down", last - width + 1, last, score) for group, last, score in flagged
    ]


def scan(
    counts: dict[str, np.ndarray],
    judged: np.ndarray,
    step: int,
    metrics: list[str],
    volume: LeafVolume,
    member: np.ndarray,
    leaves: dict[str, np.ndarray] | None = None,
) -> Scan:
    """Flag windows of every group (rows of the ``counts`` arrays, of ``member``) for ``metrics``.

    ``judged`` marks buckets whose windows are judged (the requested window, complete
    buckets only); ``volume`` holds the leaves' expected calls, summed per group here;
    ``leaves``: the leaves' counts (session 18: their clustering, mixed per group).
    """
    windows: list[Window] = []
    buckets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    base = max(1, BASELINE // step)
    for name in metrics:
        if name == "calls":
            found, mu = _volume(volume, member, judged, step)
            buckets[name] = (counts["calls"], mu, np.ones_like(mu))
        else:
            m = METRICS[name]
            mix = None
            if leaves is not None:
                prior = np.full(leaves[m.k].shape[0], m.prior)
                mix = _mixture(member, *leaf_clustering(leaves[m.k], leaves[m.n], prior, base, step))
            found, p = _rates(name, counts[m.k], counts[m.n], judged, base, step, mix)
            buckets[name] = (counts[m.k], counts[m.n], p)
        windows += found
    return Scan(recurring(windows, step)[0], buckets)

"""The count tests of anomalies_scan on plain arrays: overdispersion and baseline uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmtrace.analytics import anomalies_profile
from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.anomalies_profile import row_median, window_sum

STEP = 300
DAY = 86400 // STEP
HOUR = 3600 // STEP
BASE = scan.BASELINE // STEP
MONDAY = 1793577600  # 2026-11-02 00:00 UTC


def _busy_series(rng: np.random.Generator, days: int, calls: int) -> tuple[np.ndarray, np.ndarray]:
    """Calls per bucket and the share above the usual p90 wobbling hour to hour (20%)."""
    buckets = days * DAY
    share = 0.1 * np.exp(0.2 * np.repeat(rng.standard_normal(buckets // HOUR + 1), HOUR)[:buckets])
    n = np.full((1, buckets), float(calls))
    return n, rng.binomial(calls, np.clip(share, 0, 1))[None, :].astype(float)


def test_a_tripled_tail_for_two_hours_on_a_busy_wobbling_series_is_flagged() -> None:
    rng = np.random.default_rng(7)
    n, k = _busy_series(rng, 3, 40)
    start = 2 * DAY + 10 * HOUR
    k[0, start : start + 2 * HOUR] = rng.binomial(40, 0.3, 2 * HOUR)
    judged = np.arange(n.shape[1]) >= DAY
    windows, _ = scan._rates("latency_p95_ms", k, n, judged, BASE, STEP)
    assert any(w.first < start + 2 * HOUR and w.last >= start for w in windows)
    assert all(w.first < start + 2 * HOUR + 3 * HOUR and w.last >= start - 3 * HOUR for w in windows)


def test_a_latency_spike_on_a_busy_series_whose_tail_follows_the_time_of_day_is_flagged() -> None:
    # 100 calls per 5 minutes; the share above a fixed bar swings 6%-14% over the day (calls are
    # slower at the peak), which a spread estimate must not read as 10x binomial noise
    rng = np.random.default_rng(11)
    buckets = 3 * DAY
    share = 0.1 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(buckets) / DAY))
    n = np.full((1, buckets), 100.0)
    k = rng.binomial(100, share)[None, :].astype(float)
    start = 2 * DAY + 20 * HOUR
    k[0, start : start + HOUR] = rng.binomial(100, 0.45, HOUR)
    windows, _ = scan._rates("latency_p95_ms", k, n, np.arange(buckets) >= DAY, BASE, STEP)
    assert any(w.first < start + HOUR and w.last >= start for w in windows)


def test_the_same_series_without_an_incident_has_no_flagged_window() -> None:
    n, k = _busy_series(np.random.default_rng(7), 3, 40)
    judged = np.arange(n.shape[1]) >= DAY
    assert scan._rates("latency_p95_ms", k, n, judged, BASE, STEP)[0] == []


def test_a_young_series_is_not_held_to_a_rate_learnt_from_a_few_trials() -> None:
    # 24 trials in its first hour, none above the bar (a 1-in-13 draw at 10%); then 200 calls
    # per bucket at the usual 10%: thousands of calls cannot be judged against "about 1%"
    buckets = DAY
    n, k = np.zeros((1, buckets)), np.zeros((1, buckets))
    n[0, :HOUR] = 2
    rng = np.random.default_rng(3)
    n[0, HOUR : 4 * HOUR] = 200
    k[0, HOUR : 4 * HOUR] = rng.binomial(200, 0.1, 3 * HOUR)
    windows, _ = scan._rates("latency_p95_ms", k, n, np.ones(buckets, bool), BASE, STEP)
    assert windows == []


def _young_with_a_daily_tail(seed: int, calls_per_minute: float, spike_at: int | None = None) -> list[scan.Window]:
    """A series' first two days: calls follow the day (x0.2-1.8) and so does the share of them
    above the usual p90 (1%-19%, with a 30% hourly wobble); with ``spike_at``, half its calls are
    slow for an hour there. Judged from its third hour, as a young series is."""
    rng = np.random.default_rng(seed)
    t = np.arange(2 * DAY)
    day = np.sin(2 * np.pi * t / DAY)
    n = rng.poisson(np.clip(calls_per_minute * 5 * (1 + 0.8 * day), 0.05, None)).astype(float)
    wobble = np.exp(0.3 * np.repeat(rng.standard_normal(t.size // HOUR + 1), HOUR)[: t.size])
    share = 0.1 * (1 + 0.9 * np.sin(2 * np.pi * (t / DAY - 0.25))) * wobble
    k = rng.binomial(n.astype(int), np.clip(share, 0, 1)).astype(float)
    if spike_at is not None:
        k[spike_at : spike_at + HOUR] = rng.binomial(n[spike_at : spike_at + HOUR].astype(int), 0.5)
    return scan._rates("latency_p95_ms", k[None, :], n[None, :], t >= 3 * HOUR, BASE, STEP)[0]


def test_a_young_series_whose_tail_follows_the_day_is_judged_against_its_prior_not_its_first_hours() -> None:
    # A rate learnt from a young series' first hours is shrunk towards the metric's prior by
    # PRIOR_WEIGHT trials' worth: with 2, a quiet night's 0 of 30 slow calls made ~0.6% the
    # baseline its morning (19% above the bar) was held to. With 10: 7 of 180 first two days raise
    # a window, against 18 (v12-v15: the stores' first days and weekends held most false rate episodes)
    quiet = [bool(_young_with_a_daily_tail(seed, rate)) for rate in (0.3, 1.0, 3.0) for seed in range(60)]
    assert sum(quiet) <= 9, sum(quiet)
    # ... while an hour at 50% slow calls in the second night (about 170 calls, 2% usually slow
    # then) is found as often as with the weaker prior: 28 of 40 (29 with 2)
    at = DAY + 2 * HOUR
    found = [any(w.first < at + HOUR and w.last >= at for w in _young_with_a_daily_tail(s, 2.0, at)) for s in range(40)]
    assert sum(found) >= 24, sum(found)


def _hand_over(seed: int, kept: float) -> tuple[list[scan.Window], int]:
    """Two models of one service (leaves 0 and 1, the service row 2) over 4 days: the old one's
    calls follow the day (12 a bucket on average) until the last day's 10:00, then stop; the new
    one starts then with ``kept`` of them. Returns the windows and the hand-over's bucket."""
    rng = np.random.default_rng(seed)
    t = np.arange(4 * DAY)
    level = 12.0 * (1 + 0.5 * np.sin(2 * np.pi * (t / DAY - 0.25)))
    at = 3 * DAY + 10 * HOUR
    calls = np.zeros((2, t.size))
    calls[0, :at] = rng.poisson(level[:at])
    calls[1, at:] = rng.poisson(kept * level[at:])
    v = scan.leaf_volume(calls, np.array([0, at]), STEP, MONDAY, [np.ones((1, 2))])
    members = np.vstack([np.eye(2), np.ones((1, 2))])
    return scan._volume(v, members, np.arange(t.size) >= 2 * DAY, STEP)[0], at


def _falls_of(windows: list[scan.Window], row: int, at: int) -> list[scan.Window]:
    return [w for w in windows if w.group == row and w.direction == "down" and w.last >= at and w.first < at + 6 * HOUR]


def test_a_service_handing_its_calls_to_a_new_model_does_not_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    # the new model is too young for baselines of its own, so its calls are left out of the
    # service's rises (a model that appears is no surge); left out of its falls too, the service
    # fell by every call the old model handed over, while its real calls held (an episode that read
    # "calls down 784 vs expected 210.3" in the synthetic store that found it)
    for seed in range(5):
        windows, at = _hand_over(seed, 1.0)
        assert _falls_of(windows, 0, at), "the old model going silent is still its own fall"
        assert not _falls_of(windows, 2, at), seed
    monkeypatch.setattr(scan, "COUNT_NEWCOMERS", False)
    assert all(_falls_of(_hand_over(seed, 1.0)[0], 2, at) for seed in range(5))


def test_a_hand_over_that_loses_most_calls_is_a_fall_of_the_service() -> None:
    for seed in range(5):
        windows, at = _hand_over(seed, 0.15)
        assert _falls_of(windows, 2, at), seed


def test_window_sums_by_slicing_equal_the_gathered_ones() -> None:
    values = np.random.default_rng(0).integers(0, 9, size=(4, 200)).astype(float)
    c = scan._cumulative(values)
    ends = np.arange(200)
    for lag in (0, 1, 12, 199, 250):
        for width in (1, 3, 36, 288):
            end = ends - lag
            lo, hi = np.clip(end + 1 - width, 0, None), np.clip(end + 1, 0, None)
            assert np.array_equal(scan._window_sum(c, end, width), c[:, hi] - c[:, lo]), (lag, width)


@pytest.mark.parametrize("step", [60, 300, 3600, 7200, 86400])
def test_same_hours_sums_from_the_days_summed_once_equal_a_window_sum_per_day(step: int) -> None:
    """The seven previous days' sums of a window and an hour either side, from one array of the
    days added up, equal the sum of seven window sums exactly (whole and half calls: the rollup's
    calls past a threshold count half in its bin), early windows (days before the first bucket)
    included."""
    rng = np.random.default_rng(step)
    buckets = 9 * 86400 // step + 5
    k = rng.integers(0, 40, (3, buckets)) / 2.0
    c = np.concatenate([np.zeros((3, 1)), np.cumsum(k, axis=1)], axis=1)
    per_day, half = 86400 // step, scan.TOD_HALF // step
    ends = np.arange(buckets)
    days = scan._previous_days(c, step)
    for width in scan.SCALES:
        expected = np.zeros((3, buckets))
        for d in range(1, 8):
            expected += window_sum(c, ends - d * per_day + half, width + 2 * half)
        got, again = scan._same_hours_sums(days, days, ends, width, step)
        assert np.array_equal(got, expected) and np.array_equal(again, expected)


def test_row_medians_skip_missing_values() -> None:
    a = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, np.nan, np.nan], [5.0, 1.0, np.nan, np.nan]])
    medians, counts = row_median(a)
    assert medians.tolist() == [2.0, 0.0, 3.0] and counts.tolist() == [3, 0, 2]


def _cron(rng: np.random.Generator, days: int, burst: float, quiet: float) -> np.ndarray:
    """Calls per bucket of a series with batch bursts at :00 and :30 and ``quiet`` calls a bucket between."""
    level = np.tile(np.where(np.arange(HOUR) % (HOUR // 2) == 0, burst, quiet), days * 24)
    return rng.poisson(level)[None, :].astype(float)


def _volume_windows(calls: np.ndarray) -> list[scan.Window]:
    v = scan.leaf_volume(calls, np.array([0]), STEP)
    return scan._volume(v, np.ones((1, 1)), np.arange(calls.shape[1]) >= DAY, STEP)[0]


def test_batch_bursts_at_fixed_minutes_and_the_quiet_between_them_are_not_volume_anomalies() -> None:
    # without the minute-of-hour shape, the 5-minute windows between bursts were 222 drops
    assert _volume_windows(_cron(np.random.default_rng(5), 3, 150.0, 0.5)) == []
    assert _volume_windows(_cron(np.random.default_rng(6), 3, 80.0, 6.0)) == []


def test_a_drop_in_the_quiet_between_batch_bursts_is_still_flagged() -> None:
    calls = _cron(np.random.default_rng(5), 3, 80.0, 6.0)
    start = 2 * DAY + 14 * HOUR + 1  # 14:05-14:30: the steady traffic stops (30 calls expected)
    calls[0, start : start + 5] = 0
    found = _volume_windows(calls)
    assert found and all(w.direction == "down" and start <= w.last and w.first < start + 5 for w in found)


def test_a_window_flagged_at_the_same_minute_of_the_hour_a_third_time_is_a_recurring_pattern() -> None:
    def at(last: int, width: int = 1, metric: str = "error_rate") -> scan.Window:
        return scan.Window(0, metric, "up", last - width + 1, last, 9.0)

    half_past = DAY + 6  # 00:30 on day 1
    cron = [at(half_past), at(half_past + 5 * HOUR), at(half_past + DAY), at(half_past + DAY, 12)]
    other = [at(half_past + DAY, metric="calls"), at(half_past + DAY + 1)]  # another metric, another minute
    kept, dropped = scan.recurring(cron + other, STEP)
    assert dropped == [cron[2]]  # the third 00:30 burst; the hour's window and the others stay
    # an incident's own consecutive hours are not a pattern until it has lasted over two hours
    incident = [at(half_past + h * HOUR) for h in range(4)]
    kept, dropped = scan.recurring(incident, STEP)
    assert kept == incident[:3] and dropped == incident[3:]
    assert scan.recurring(cron, 3600) == (cron, [])  # hourly buckets: no minute of the hour


def test_a_nightly_job_flagged_around_the_same_time_on_two_earlier_days_is_a_recurring_pattern() -> None:
    """Its jitter changes the window's width and minute, and on a shared series (its provider) the
    metric flagged: the time of day is what recurs."""

    def at(first: int, last: int, metric: str, direction: str = "up") -> scan.Window:
        return scan.Window(0, metric, direction, first, last, 9.0)

    one_ten = 14  # 01:10 in 5-minute buckets
    nights = [
        at(DAY + one_ten, DAY + one_ten + 1, "calls"),
        at(2 * DAY + one_ten - 1, 2 * DAY + one_ten + 2, "cost_per_call_usd"),
    ]
    third = at(3 * DAY + one_ten + 1, 3 * DAY + one_ten + 2, "tokens_per_call")
    elsewhere = [
        at(3 * DAY + one_ten + 12, 3 * DAY + one_ten + 13, "calls"),  # 02:10: an hour later
        at(3 * DAY + one_ten, 3 * DAY + one_ten + 1, "calls", "down"),  # the other direction
    ]
    kept, dropped = scan.recurring([*nights, third, *elsewhere], STEP)
    assert dropped == [third]
    assert kept == [*nights, *elsewhere[::-1]]  # in the order of their last bucket
    assert scan.recurring([nights[0], third], STEP) == ([nights[0], third], [])  # one earlier night is not a pattern
    # failures are not the job's traffic mix: errors at the job's hour on a third night are news
    errors = at(3 * DAY + one_ten, 3 * DAY + one_ten + 2, "error_rate")
    assert scan.recurring([*nights, errors], STEP) == ([*nights, errors], [])


def test_errors_recurring_at_the_same_minute_of_every_hour_are_the_usual_rate_there() -> None:
    # a cron batch meets its rate limit at :30: 20% of that bucket's calls fail every hour, 1% elsewhere
    rng = np.random.default_rng(5)
    buckets = 4 * DAY
    p = np.where(np.arange(buckets) % HOUR == 6, 0.2, 0.01)
    n = np.full((1, buckets), 60.0)
    k = rng.binomial(60, p)[None, :].astype(float)
    judged = np.arange(buckets) >= DAY
    assert scan._rates("error_rate", k, n, judged, BASE, STEP)[0] == []
    burst = 3 * DAY + 5 * HOUR + 2  # :10-:25, minutes with no pattern
    k[0, burst : burst + 3] = rng.binomial(60, 0.3, 3)
    windows, _ = scan._rates("error_rate", k, n, judged, BASE, STEP)
    assert windows and all(w.first <= burst + 2 and w.last >= burst for w in windows)


def test_the_evening_after_a_day_long_surge_is_not_a_drop() -> None:
    # a marketing day triples the office hours' calls; when it ends at 18:00 the trailing hours
    # still hold the surge (8 falls against them), but the same hours of the previous days say
    # the evening is normal
    rng = np.random.default_rng(3)
    days = 9
    hour = np.arange(days * DAY) // HOUR % 24
    level = np.where((hour >= 8) & (hour < 18), 12.0, np.where((hour >= 18) & (hour < 23), 6.0, 2.0))
    surge = (np.arange(days * DAY) >= 8 * DAY + 8 * HOUR) & (np.arange(days * DAY) < 8 * DAY + 18 * HOUR)
    calls = rng.poisson(np.where(surge, 3 * level, level))[None, :].astype(float)
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    found = scan._volume(v, np.ones((1, 1)), np.arange(calls.shape[1]) >= 8 * DAY, STEP)[0]
    assert any(w.direction == "up" for w in found)  # the surge itself is news
    assert not [w for w in found if w.direction == "down"]


def _wobbling_day(rng: np.random.Generator, days: int, fall: tuple[int, int], factor: float) -> np.ndarray:
    """A business day's calls (30 a bucket from 08:00 to 19:00, 3 at night) whose hours wobble by
    15% (lognormal), with ``fall`` (buckets) cut to ``factor`` on the last day."""
    t = np.arange(days * DAY)
    hour = (t % DAY) / HOUR
    level = 3.0 + 27.0 / (1 + np.exp(-(hour - 8) * 2)) / (1 + np.exp((hour - 19) * 2))
    level *= np.exp(0.15 * np.repeat(rng.standard_normal(days * 24), HOUR))
    level[fall[0] : fall[1]] *= factor
    return rng.poisson(level)[None, :].astype(float)


def _falls_found(monkeypatch: pytest.MonkeyPatch, two_sided: bool, at: int, hours: float) -> tuple[int, int]:
    """Of 30 draws: those whose fall to 30% for ``hours`` from bucket ``at`` of the last day is
    found, and the falls flagged elsewhere."""
    monkeypatch.setattr(scan, "TWO_SIDED_FALLS", two_sided)
    days, found, elsewhere = 8, 0, 0
    start = (days - 1) * DAY + at
    end = start + int(hours * HOUR)
    for seed in range(30):
        calls = _wobbling_day(np.random.default_rng(seed), days, (start, end), 0.3)
        v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
        judged = np.arange(calls.shape[1]) >= (days - 1) * DAY
        falls = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]
        found += any(w.first < end and w.last >= start for w in falls)
        elsewhere += sum(not (w.first < end + 6 and w.last >= start - 6) for w in falls)
    return found, elsewhere


def test_a_fall_found_only_with_the_hours_after_it_is_seen_when_they_have_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the hour at 30% of the test below: where the hours before it alone flag a window, it is seen at
    # its end; where only the hours after it make it a fall, when they have ended (a report's
    # detected_at, a backtest's time to detect: what `watch` could have said then)
    days, start = 8, 7 * DAY + 12 * HOUR
    late = 0
    for seed in range(30):
        calls = _wobbling_day(np.random.default_rng(seed), days, (start, start + HOUR), 0.3)
        judged = np.arange(calls.shape[1]) >= (days - 1) * DAY

        def falls(two_sided: bool, calls: np.ndarray = calls, judged: np.ndarray = judged) -> list[scan.Window]:
            monkeypatch.setattr(scan, "TWO_SIDED_FALLS", two_sided)
            v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
            return [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]

        before_alone = {(w.first, w.last) for w in falls(False)}
        for w in falls(True):
            width = w.last - w.first + 1
            if (w.first, w.last) in before_alone:
                assert w.seen is None, w
            elif w.seen is not None:
                assert w.seen == w.last + max(scan.VOLUME_BASELINE // STEP, 2 * width), w
                late += 1
    assert late >= 4  # windows only the hours after them flag (24 draws found against 18)


def test_a_fall_is_judged_between_the_hours_before_and_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # an hour at 30% at noon, on a series whose hours wobble by 15%: 7 sd for a judge who knows
    # the true level. Extrapolated from the hours before alone, the expectation carries their
    # wobble and the profile's error; between the hours before and after it, it carries about half
    trailing = _falls_found(monkeypatch, False, 12 * HOUR, 1)
    both = _falls_found(monkeypatch, True, 12 * HOUR, 1)
    assert both[0] >= trailing[0] + 4, (trailing, both)  # 24 of 30 against 18 when written
    assert both[1] == trailing[1] == 0
    # windows whose hours after them have not ended yet (the store's last hours) have none
    calls = _wobbling_day(np.random.default_rng(0), 8, (0, 0), 1.0)
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    for width in scan.SCALES:
        base = max(scan.VOLUME_BASELINE // STEP, 2 * width)
        assert not v.after_ok[width][:, -base:].any() and not v.y_after[width][:, -base:].any()
        assert v.after_ok[width][:, 2 * DAY : -base].all()


def _sparse_streams(seed: int, spike: bool) -> tuple[np.ndarray, np.ndarray]:
    """~0.24 streams a minute for 4 days, 0.5% of them past twice the usual p90 of TTFT; with
    ``spike``, 4 streams in 30 minutes all far past it (a provider's slow first tokens)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(1.2, 4 * DAY).astype(float)[None, :]
    k = rng.binomial(n[0].astype(int), 0.005).astype(float)[None, :]
    if spike:
        at = 3 * DAY + 20 * HOUR
        n[0, at : at + 6] = k[0, at : at + 6] = [1, 0, 1, 1, 0, 1]
    return k, n


def test_four_streams_of_a_sparse_series_far_past_its_bar_are_a_spike() -> None:
    # 4 events where ~0.02 are expected: the gate asked for 4 events beyond the expectation, so
    # 4 was not enough (v9: a sparse series' TTFT x9 for 28 min, 4 streams, missed); 2 of these 20
    # draws were found then
    judged = np.arange(4 * DAY) >= DAY
    found = [scan._rates("ttft_p95_ms_2x", *_sparse_streams(s, True), judged, BASE, STEP)[0] for s in range(20)]
    assert sum(bool(f) for f in found) >= 10
    # without the spike nothing, and a series on which no window could pass is answered, not a crash
    assert all(
        scan._rates("ttft_p95_ms_2x", *_sparse_streams(s, False), judged, BASE, STEP)[0] == [] for s in range(20)
    )


def test_a_slow_ramp_of_the_latency_tail_is_flagged() -> None:
    # the share above the usual p90 climbs from 10% to 25% over two hours and stays there (a
    # permanent slowdown, judged 4 hours later): a baseline of the last hours before each
    # window followed it up before it was evident (missed in one of these six draws)
    buckets = 2 * DAY + 16 * HOUR
    start = 2 * DAY + 10 * HOUR
    share = np.full(buckets, 0.1)
    share[start : start + 2 * HOUR] = np.linspace(0.1, 0.25, 2 * HOUR)
    share[start + 2 * HOUR :] = 0.25
    n = np.full((1, buckets), 12.0)
    for seed in range(6):
        k = np.random.default_rng(seed).binomial(12, share)[None, :].astype(float)
        windows, _ = scan._rates("latency_p95_ms", k, n, np.arange(buckets) >= DAY, BASE, STEP)
        assert windows and min(w.first for w in windows) >= start - HOUR


def _clustered(rng: np.random.Generator, level: np.ndarray, sizes: tuple[int, int]) -> np.ndarray:
    """Calls per bucket arriving as traces of ``sizes[0]``..``sizes[1]`` calls each."""
    traces = rng.poisson(level / np.mean(sizes))
    return np.array([rng.integers(sizes[0], sizes[1] + 1, size=t).sum() for t in traces], dtype=float)


def test_the_clustering_factor_is_the_calls_per_trace_spread() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(4 * DAY)
    level = 2.0 + 30.0 * np.clip(np.sin(2 * np.pi * (t % DAY) / DAY), 0, None)  # a day and a quiet night
    rows = np.vstack([rng.poisson(level), _clustered(rng, level, (2, 2)), _clustered(rng, level, (1, 8))])
    phi = scan.clustering(rows.astype(float), STEP, parent=1.0)
    # E[s^2] / E[s]: 1 for single calls, 2 for pairs, 25.5 / 4.5 = 5.7 for 1-8 calls a trace
    assert abs(phi[0] - 1) < 0.15 and abs(phi[1] - 2) < 0.3 and abs(phi[2] - 5.7) < 0.8, phi
    # a cron's bursts at :00 and :30 are its minute-of-hour shape, not spread
    assert scan.clustering(_cron(np.random.default_rng(6), 3, 80.0, 6.0), STEP)[0] < 1.3
    # a young series (a few hours) keeps its parent's factor
    assert abs(scan.clustering(rows[2:, -30:], STEP, parent=3.0)[0] - 3.0) < 1.0


def test_clustered_calls_at_night_are_not_a_drop_but_a_silence_of_hours_is() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(5 * DAY)
    level = np.where((t % DAY) < 8 * HOUR, 6.0, 40.0)  # agent traces of 1-8 calls: a quiet night has empty buckets
    calls = _clustered(rng, level, (1, 8))[None, :]
    judged = np.arange(calls.shape[1]) >= 4 * DAY
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    assert [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"] == []
    outage = 4 * DAY + 14 * HOUR
    calls[0, outage : outage + 6] = 0  # 30 minutes of silence at 40 calls a bucket
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    found = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]
    assert found and all(outage - 1 <= w.last and w.first <= outage + 6 for w in found)


def test_a_fall_on_a_day_the_whole_app_is_quiet_is_traffic_not_an_incident() -> None:
    from llmtrace.analytics.anomalies_episodes import Episode
    from llmtrace.analytics.anomalies_levels import lull

    rng = np.random.default_rng(4)
    t = np.arange(9 * DAY)
    level = 5.0 + 20.0 * ((t % DAY) >= 8 * HOUR)
    holiday = (t >= 8 * DAY) & (t < 9 * DAY)
    calls = rng.poisson(np.where(holiday, 0.4, 1.0) * level, size=(3, t.size)).astype(float)
    services = np.eye(3)  # one leaf per service

    def fall(day: int, leaves: frozenset[int] = frozenset({0})) -> Episode:
        first = day * DAY + 10 * HOUR
        return Episode("service,model", 0, leaves, "calls", "down", first, first + 12, 6.0, first + 3)

    def judged(e: Episode, others: list[Episode] = []) -> bool:  # noqa: B006
        return lull(e, [e, *others], calls, services, 0, STEP, MONDAY)

    assert judged(fall(8))  # every service at 40% all day: a holiday
    assert judged(fall(8, frozenset({0, 1, 2})))  # the app's own fall too
    assert not judged(fall(7))  # a normal day: only this series fell
    errors = Episode(
        "service,model", 0, frozenset({0}), "error_rate", "up", 8 * DAY + 10 * HOUR, 8 * DAY + 11 * HOUR, 9.0, 0
    )
    assert not judged(fall(8), [errors])  # not error-free: an outage on a quiet day
    gap = calls.copy()
    gap[:, 7 * DAY + 10 * HOUR : 7 * DAY + 11 * HOUR] = 0  # an hour-long app-wide gap on a normal day
    assert not lull(fall(7), [fall(7)], gap, services, 0, STEP, MONDAY)
    # measured: a series that stops on the quiet day is an outage; one that slows with the app is not
    stopped, slowed = fall(8), fall(8)
    stopped.observed, stopped.expected = 1.0, 300.0
    slowed.observed, slowed.expected = 100.0, 300.0  # a third of its due, the app at ~40%
    assert not judged(stopped)
    assert judged(slowed)


def test_a_fall_on_a_stores_first_weekend_is_not_the_apps_lull(monkeypatch: pytest.MonkeyPatch) -> None:
    # v13 (3 of 20 weeks): a store from Monday 02:00; one series fell 80% at 01:00 on its first Sunday.
    # The lull's span (6 h either side) ran from Saturday evening, and its "usual" was a Sunday evening
    # running into the store's first Monday morning: every business service looked 60% down, a holiday
    from llmtrace.analytics.anomalies_episodes import Episode
    from llmtrace.analytics.anomalies_levels import lull

    rng = np.random.default_rng(5)
    start = MONDAY - 7 * DAY * STEP  # the history starts a week before the store's first call
    t = np.arange(14 * DAY)
    weekday = ((t // DAY) % 7) < 5
    office = (t % DAY >= 6 * HOUR) & (t % DAY < 19 * HOUR)
    level = np.where(weekday, np.where(office, 40.0, 10.0), 2.0)
    calls = rng.poisson(level, size=(4, t.size)).astype(float)
    calls[:, : 7 * DAY + 2 * HOUR] = 0  # the store's first call: Monday 02:00
    services = np.eye(4)
    sunday = 13 * DAY + 1 * HOUR
    fall = Episode("service,model", 0, frozenset({0}), "calls", "down", sunday, sunday + 14, 9.0, sunday + 3)
    assert not lull(fall, [fall], calls, services, 0, STEP, start)
    monkeypatch.setattr(anomalies_profile, "USUAL_WEEKEND_DAYS", False)
    assert lull(fall, [fall], calls, services, 0, STEP, start)  # the old reading: a holiday
    monkeypatch.undo()
    # a store with an earlier weekend: a second Sunday on which every service holds 40% of its usual
    # weekend is a lull (against the first weekend's span); the same Sunday at its usual level is not
    usual = rng.poisson(level, size=(4, t.size)).astype(float)
    quiet = usual.copy()
    quiet[:, sunday - 6 * HOUR :] = rng.poisson(0.4 * level[sunday - 6 * HOUR :], size=(4, t.size - sunday + 6 * HOUR))
    assert lull(fall, [fall], quiet, services, 0, STEP, MONDAY)
    assert not lull(fall, [fall], usual, services, 0, STEP, MONDAY)


def _day_and_night(days: int, ramp_hour: np.ndarray) -> np.ndarray:
    t = np.arange(days * DAY)
    return np.where((t % DAY) >= ramp_hour[t // DAY] * HOUR, 20.0, 2.0)


def test_a_morning_ramp_an_hour_early_is_a_clock_change_not_a_rise() -> None:
    rng = np.random.default_rng(8)
    ramp = np.array([8] * 8 + [7])  # the clocks change: the last day's traffic starts an hour earlier (UTC)
    level = _day_and_night(9, ramp)
    judged = np.arange(level.size) >= 6 * DAY
    calls = rng.poisson(level)[None, :].astype(float)
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    assert [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "up"] == []
    spike = 8 * DAY + 17 * HOUR
    level[spike : spike + HOUR] *= 3  # an hour at three times the day's calls, far from the ramp
    calls = rng.poisson(level)[None, :].astype(float)
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    found = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "up"]
    assert found and all(spike <= w.last and w.first < spike + HOUR for w in found)


def _hourly_job(rng: np.random.Generator, days: int) -> np.ndarray:
    """Calls per bucket of a job running 10-20 minutes from :00 of every hour (15 calls/min) over a
    trickle of 0.1/min: its 10th-20th minutes are on or off by chance."""
    level = np.full(days * DAY, 0.5)
    for h in range(days * 24):
        level[h * HOUR : h * HOUR + int(rng.integers(2, 5))] += 75.0
    return rng.poisson(level)[None, :].astype(float)


def test_a_job_ending_early_as_it_often_does_is_not_a_drop_but_a_missed_run_is() -> None:
    rng = np.random.default_rng(11)
    calls = _hourly_job(rng, 4)
    assert not [w for w in _volume_windows(calls) if w.direction == "down"]
    gone = 3 * DAY + 14 * HOUR  # the 14:00 run does not happen: its always-busy first minutes fall silent
    calls[0, gone : gone + 2] = 0
    found = [w for w in _volume_windows(calls) if w.direction == "down"]
    assert found and all(gone <= w.last and w.first < gone + 2 for w in found)


def _nightly_job(rng: np.random.Generator, days: int) -> np.ndarray:
    """A trickle of 0.03 calls/min and a 10-20 minute run at 02:00 every night (24 calls/min)."""
    level = np.full(days * DAY, 0.15)
    for d in range(days):
        level[d * DAY + 2 * HOUR : d * DAY + 2 * HOUR + int(rng.integers(2, 5))] += 120.0
    return rng.poisson(level)[None, :].astype(float)


def test_a_nightly_run_on_the_stores_first_weekend_is_expected_from_any_previous_night() -> None:
    # the store starts on a Thursday: Saturday and Sunday have no earlier day of their kind, and
    # without one the run's rise was held to the trickle before it (flagged in 3 of 6 seeds)
    thursday = MONDAY + 3 * 86400
    for seed in (1, 2, 5):
        calls = _nightly_job(np.random.default_rng(seed), 4)
        v = scan.leaf_volume(calls, np.array([0]), STEP, thursday)
        found = scan._volume(v, np.ones((1, 1)), np.arange(calls.shape[1]) >= 2 * DAY, STEP)[0]
        assert not [w for w in found if w.direction == "up"], seed
    calls = _nightly_job(np.random.default_rng(1), 4)
    calls[0, 3 * DAY + 14 * HOUR : 3 * DAY + 14 * HOUR + 3] += 150  # Sunday 14:00: a run nobody planned
    v = scan.leaf_volume(calls, np.array([0]), STEP, thursday)
    found = scan._volume(v, np.ones((1, 1)), np.arange(calls.shape[1]) >= 2 * DAY, STEP)[0]
    assert [w for w in found if w.direction == "up" and w.first <= 3 * DAY + 14 * HOUR + 2 <= w.last + 2]


def _recurring_before(windows: list[scan.Window], step: int) -> tuple[list[scan.Window], list[scan.Window]]:
    """``recurring`` as it was before it sliced the recent windows by bisection (main 2c2384e): every
    earlier window of the series scanned in Python for each window (2M steps, 0.9 s at 10M calls)."""
    period = 3600 // step
    lookback, gap = scan.RECUR_LOOKBACK // step, scan.RECUR_GAP // step
    day, slack = scan.DAY // step, scan.RECUR_SLACK // step
    seen: dict[tuple[int, str, str, int, int], list[int]] = {}
    daily: dict[tuple[int, str, str], list[tuple[int, int]]] = {}
    kept: list[scan.Window] = []
    dropped: list[scan.Window] = []
    for w in sorted(windows, key=lambda w: w.last):
        width = w.last - w.first + 1
        if width % period == 0:
            kept.append(w)
            continue
        earlier = seen.setdefault((w.group, w.metric, w.direction, width, w.last % period), [])
        times = sum(1 for t in earlier if w.last - lookback <= t <= w.last - gap)
        mix = w.metric if w.metric in scan.OWN_PATTERN else "traffic"
        before = daily.setdefault((w.group, w.direction, mix), [])
        days = set()
        for first, last in before:
            shift = round((w.last - last) / day) * day
            recent = w.last - lookback <= last <= w.last - gap
            if recent and shift and first + shift - slack <= w.last and last + shift + slack >= w.first:
                days.add(shift)
        (dropped if times >= scan.RECUR_TIMES or len(days) >= scan.RECUR_TIMES else kept).append(w)
        earlier.append(w.last)
        before.append((w.first, w.last))
    return kept, dropped


@pytest.mark.parametrize("seed", range(6))
def test_recurring_patterns_are_those_the_scan_of_every_earlier_window_found(seed: int) -> None:
    """Windows of a few series over 10 days, clustered at a few times of day (so both rules fire)."""
    rng = np.random.default_rng(seed)
    day = scan.DAY // STEP
    windows = []
    for _ in range(1500):
        group, metric = (
            int(rng.integers(3)),
            str(rng.choice(["calls", "latency_p95_ms", "error_rate", "cost_per_call_usd"])),
        )
        at = int(rng.integers(10)) * day + int(rng.choice([20, 21, 100, 160, 230])) + int(rng.integers(-2, 3))
        width = int(rng.choice([1, 3, 12, 36]))
        windows.append(scan.Window(group, metric, str(rng.choice(["up", "down"])), at, at + width - 1, 6.0))
    kept, dropped = scan.recurring(windows, STEP)
    assert (kept, dropped) == _recurring_before(windows, STEP)
    assert len(dropped) > 100 and len(kept) > 100


def _traces_sharing_fate(
    rng: np.random.Generator, buckets: int, traces: float, sizes: tuple[int, int], share: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Calls and events per bucket when every call of a trace is an event or none is (an agent's
    long run with a growing context: all its calls are costly): ``share`` of traces per bucket."""
    n, k = np.zeros((1, buckets)), np.zeros((1, buckets))
    for t in range(buckets):
        size = rng.integers(sizes[0], sizes[1] + 1, size=rng.poisson(traces))
        n[0, t] = size.sum()
        k[0, t] = size[rng.random(size.size) < share[t]].sum()
    return n, k


def test_the_rate_clustering_factor_is_the_events_per_trace_spread_and_ignores_an_incidents_plateau() -> None:
    rng = np.random.default_rng(4)
    buckets = 3 * DAY
    p = np.full((1, buckets), 0.1)
    ok = np.ones((1, buckets), bool)
    n = np.full((1, buckets), 40.0)
    single = rng.binomial(40, 0.1, buckets)[None, :].astype(float)
    assert abs(scan.rate_clustering(single, n, p, ok, STEP)[0] - 1) < 0.15
    n8, k8 = _traces_sharing_fate(rng, buckets, 8.0, (1, 8), np.full(buckets, 0.1))
    phi = scan.rate_clustering(k8, n8, np.full(n8.shape, 0.1), ok, STEP)[0]
    assert abs(phi - 5.7) < 1.2, phi  # E[s^2] / E[s] for 1-8 calls a trace, times (1 - p) / (1 - p)
    # two hours of a tripled share in the history: a plateau, not spread (squared residuals
    # summed over the buckets read it as a factor of 1.6, and would hide a burst the next day)
    burst = single.copy()
    burst[0, DAY : DAY + 2 * HOUR] = rng.binomial(40, 0.3, 2 * HOUR)
    assert scan.rate_clustering(burst, n, p, ok, STEP)[0] < 1.15
    assert ((burst - n * p) ** 2).sum() / (n * p * (1 - p)).sum() > 1.5
    # a few buckets of history say little: shrunk towards 1
    assert scan.rate_clustering(k8[:, :12], n8[:, :12], np.full((1, 12), 0.1), ok[:, :12], STEP)[0] < 2.5


def test_costly_calls_that_come_as_whole_agent_traces_are_not_an_incident_but_a_tripled_share_is() -> None:
    # traces of 1-30 calls (4 agent runs in 5 minutes); 8% of traces are costly in all their
    # calls: a bucket holding one long costly run is not 20 independent costly calls
    rng = np.random.default_rng(9)
    buckets = 3 * DAY
    share = np.full(buckets, 0.08)
    n, k = _traces_sharing_fate(rng, buckets, 4.0, (1, 30), share)
    judged = np.arange(buckets) >= DAY
    assert scan._rates("cost_per_call_usd", k, n, judged, BASE, STEP)[0] == []
    start = 2 * DAY + 9 * HOUR
    share[start : start + 2 * HOUR] = 0.4  # two hours of a wrong model: 40% of the traces cost more
    n2, k2 = _traces_sharing_fate(np.random.default_rng(9), buckets, 4.0, (1, 30), share)
    windows, _ = scan._rates("cost_per_call_usd", k2, n2, judged, BASE, STEP)
    assert windows and all(w.first < start + 3 * HOUR and w.last >= start - HOUR for w in windows)


def _wobbling_sessions(seed: int, drop: bool) -> tuple[np.ndarray, int]:
    """9 days of chat sessions (1-5 calls each) whose hourly level wobbles by an independent 25%,
    busy 07:00-22:00; with ``drop``, 75 minutes at 13% from 13:00 on the last day."""
    rng = np.random.default_rng(seed)
    t = np.arange(9 * DAY)
    hour = t // HOUR % 24
    level = np.where((hour >= 7) & (hour < 22), 30.0, 8.0) * np.repeat(rng.lognormal(0, 0.25, 9 * 24), HOUR)
    start = 8 * DAY + 13 * HOUR
    if drop:
        level[start : start + 15] *= 0.13
    return _clustered(rng, level, (1, 5))[None, :], start


def test_a_fall_is_judged_against_both_baselines_not_the_lower() -> None:
    # the lower of two noisy expectations stood well below their middle wherever they disagreed,
    # on top of a spread that held their disagreement already: main found 5 of these 20 falls
    hits, false = 0, 0
    for seed in range(20):
        for drop in (True, False):
            calls, start = _wobbling_sessions(seed, drop)
            v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
            judged = np.arange(calls.shape[1]) >= 8 * DAY
            falls = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]
            inside = [w for w in falls if w.first < start + 15 and w.last >= start]
            hits += drop and bool(inside)
            false += len(falls) - len(inside)
    assert hits >= 8 and false == 0, (hits, false)


def _agent_and_chat(seed: int, jump: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Calls and costly calls of two leaves over four days: an agent series of traces of 1-40
    calls (all of a trace costly or none, 10% of traces) working 08:00-18:00 only, and a chat
    series of ~150 independent calls per bucket all day; with ``jump``, half the agent's traces
    are costly for two hours from that bucket (a wrong model)."""
    rng = np.random.default_rng(seed)
    buckets = 4 * DAY
    hours = np.arange(buckets) % DAY
    working = (hours >= 8 * HOUR) & (hours < 18 * HOUR)
    share = np.full(buckets, 0.1)
    if jump is not None:
        share[jump : jump + 2 * HOUR] = 0.5
    n_agent, k_agent = _traces_sharing_fate(rng, buckets, 3.0, (1, 40), share)
    n_agent[0, ~working], k_agent[0, ~working] = 0.0, 0.0
    n_chat = rng.poisson(150, buckets)[None, :].astype(float)
    k_chat = rng.binomial(n_chat.astype(int), 0.1).astype(float)
    return np.concatenate([n_agent, n_chat]), np.concatenate([k_agent, k_chat])


def _parent_cost_windows(n: np.ndarray, k: np.ndarray, mixed: bool) -> list[scan.Window]:
    """The cost windows of the parent of both leaves (their sum), with or without the leaves."""
    member = np.ones((1, 2))
    counts = [{"cost_x": member @ k, "cost_n": member @ n}]
    judged = np.arange(n.shape[1]) >= DAY
    volume = scan.leaf_volume(n, np.zeros(2, dtype=int), STEP)
    leaves = {"cost_x": k, "cost_n": n} if mixed else None
    return scan.scan_levels(counts, judged, STEP, ["cost_per_call_usd"], volume, [member], leaves)[0].windows


def test_a_parent_of_an_agent_series_busy_only_in_working_hours_has_its_clustering_then() -> None:
    # pooled over the whole day the parent's factor is the chat's nights' ~1 and the agent's
    # days' ~27 averaged: in the working hours a usual cluster of costly agent runs made windows
    n, k = _agent_and_chat(2)
    assert _parent_cost_windows(n, k, mixed=False)  # without its members' mixture: false windows
    assert _parent_cost_windows(n, k, mixed=True) == []


def test_two_hours_of_costly_agent_runs_are_still_found_at_the_parent() -> None:
    start = 3 * DAY + 10 * HOUR
    n, k = _agent_and_chat(0, jump=start)
    windows = _parent_cost_windows(n, k, mixed=True)
    assert windows and all(w.first < start + 2 * HOUR + 3 * HOUR and w.last >= start for w in windows)


def test_the_members_mixture_is_the_variance_weighted_clustering_of_the_leaves_holding_variance() -> None:
    phi = np.array([4.0, 1.0, 9.0])
    v = np.array([[1.0, 3.0, 0.0], [3.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # the third leaf never has calls
    member = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    clustered, spread = scan.rate_mixture(member, phi, v)
    ratio = np.diff(clustered[0])[:2] / np.diff(spread[0])[:2]
    assert np.allclose(ratio, [(4 * 1 + 3) / 4, (4 * 3 + 1) / 4]) and np.diff(spread[0])[2] == 0
    assert not clustered[1].any() and not spread[1].any()  # one leaf with calls: the row's own factor
    own = np.array([2.0, 2.0])
    phi_w = scan._window_phi(own, (clustered, spread), np.arange(3), 1)
    assert np.allclose(phi_w, [[2.0, 3.25, 2.0], [2.0, 2.0, 2.0]])  # never below the row's own


def test_the_mixture_of_the_rows_of_several_leaves_is_their_whole_sum() -> None:
    # only rows of two or more leaves with variance are summed (over the leaves they hold): the same
    # floats as summing every row and zeroing the others, with an empty settled row among them
    rng = np.random.default_rng(8)
    leaves = 6
    phi, v = 1 + rng.random(leaves) * 3, rng.random((leaves, 300))
    v[4] = 0.0  # a leaf without calls
    member = np.array(
        [[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    )
    clustered, spread = scan.rate_mixture(member.astype(float), phi, v)
    for row, several in enumerate([True, False, False, False, True]):
        want = [np.r_[0.0, np.cumsum(sum(w[j] for j in np.flatnonzero(member[row])))] for w in (phi[:, None] * v, v)]
        if several:
            assert np.array_equal(clustered[row], want[0]) and np.array_equal(spread[row], want[1])
        else:
            assert not clustered[row].any() and not spread[row].any()


def _office_hours_from_friday(rng: np.random.Generator) -> np.ndarray:
    """A business series first seen on a Friday at 00:00 UTC, through Monday: 30 calls a bucket
    07:00-18:00 on weekdays and 3 at night, 5 all weekend."""
    t = np.arange(4 * DAY)
    hour, day = t // HOUR % 24, t // DAY  # day 0 Friday, 1 Saturday, 2 Sunday, 3 Monday
    level = np.where((day == 1) | (day == 2), 5.0, np.where((hour >= 7) & (hour < 18), 30.0, 3.0))
    return rng.poisson(level)[None, :].astype(float)


def test_a_stores_first_monday_morning_is_no_spike() -> None:
    # Monday is the first weekday after the store's first weekend: no two weekdays before it, so its
    # rises were held to the median of Friday, Saturday and Sunday's same hours (a weekend morning),
    # and every business series' Monday ramp was a spike (main: 07:05 flagged in each of these
    # draws; 39 of v9's 65 false episodes). Now to the busiest of them: Friday's.
    judged = np.arange(4 * DAY) >= 3 * DAY
    for seed in range(3):
        v = scan.leaf_volume(
            _office_hours_from_friday(np.random.default_rng(seed)), np.array([0]), STEP, MONDAY - 3 * 86400
        )
        rises = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "up"]
        assert rises == [], (seed, rises)


def _three_slow_calls(seed: int, spike: int) -> tuple[np.ndarray, np.ndarray]:
    """A young job's calls, ~0.1 a minute for a day, 0.5% of them past twice its usual p90; with
    ``spike``, that many calls in 40 minutes all far past it (a Sunday's 3 calls at 8-12x)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(0.5, DAY + 16 * HOUR).astype(float)[None, :]
    k = rng.binomial(n[0].astype(int), 0.005).astype(float)[None, :]
    at = DAY + 12 * HOUR
    k[0, at - 3 * HOUR : at + 3 * HOUR] = 0  # no drawn call past the bar near the spike's
    n[0, at : at + 8] = 0
    for i in range(spike):
        n[0, at + 3 * i] = k[0, at + 3 * i] = 1
    return k, n


def test_three_calls_of_a_sparse_series_far_past_its_bar_are_a_spike_and_two_are_not() -> None:
    # v11: a young job at 0.06 calls/min on a Sunday showed 40-minute latency and TTFT spikes (x4-8)
    # as 2-4 calls; the gate asked for 4 events beyond the expectation, so 3 never passed (0 of 20)
    judged = np.arange(DAY + 16 * HOUR) >= DAY
    for metric in ("latency_p95_ms_2x", "ttft_p95_ms_2x"):
        three = [scan._rates(metric, *_three_slow_calls(s, 3), judged, BASE, STEP)[0] for s in range(20)]
        assert sum(bool(w) for w in three) >= 8  # 9 of 20 (0 of 20 before)
        assert not any(scan._rates(metric, *_three_slow_calls(s, 2), judged, BASE, STEP)[0] for s in range(20))
    # the plain share above the p90 (10% usual) still asks for 4 beyond the expectation
    assert scan.METRICS["latency_p95_ms"].min_events == scan.MIN_EXCESS == 3.5
    assert scan.METRICS["latency_p95_ms_2x"].min_events == 2.5


def test_a_ramp_after_a_lasting_shift_is_judged_with_the_wobble_of_settled_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A blind judge's series (v11 seed 1113, search-rag/gpt-4o, its share of calls slower than the
    # usual p90 per 5 minutes as the server stored it): a release with 2.5x the output tokens made
    # ~70% of calls slow for hours (bucket 1631 on), then a 3.8x latency ramp put 93% past the bar
    # from bucket 1770 to 1809. The day of windows above the lagging baseline after the release read
    # as the rate's wobble (c 0.59 at hourly windows instead of 0.24) and hid the ramp
    row = np.load(Path(__file__).parent / "fixtures" / "v11_seed1113_latency_row.npz")
    k, n = row["k"].astype(float)[None, :], row["n"].astype(float)[None, :]
    judged = np.arange(k.shape[1]) >= int(row["judged_from"])

    def ramp_found() -> bool:
        windows, _ = scan._rates("latency_p95_ms", k, n, judged, BASE, STEP)
        return any(w.first <= 1809 and w.last >= 1770 for w in windows)

    assert ramp_found()
    monkeypatch.setattr(scan, "SETTLED_WOBBLE", False)
    assert not ramp_found()


def _young_beside_the_app(seed: int, drop: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The app's day (one series, 30 calls a bucket swinging 30% with a 15:00 peak) and a young
    flat series (10 a bucket, hours wobbling 10%) from 14:00 the day before; with ``drop``, an hour
    of the young one at 20% from 06:40 on the last day, where the app's morning climbs."""
    rng = np.random.default_rng(seed)
    t = np.arange(3 * DAY)
    app = 30.0 * (1 + 0.3 * np.sin(2 * np.pi * ((t % DAY) / HOUR - 9) / 24))
    young = 10.0 * np.repeat(rng.lognormal(0, 0.1, 3 * 24), HOUR)
    first = DAY + 14 * HOUR
    young[:first] = 0
    start = 2 * DAY + 6 * HOUR + 8
    if drop:
        young[start : start + HOUR] *= 0.2
    return rng.poisson(np.vstack([app, young])).astype(float), np.array([0, first]), start


def _young_falls(monkeypatch: pytest.MonkeyPatch, below_both: bool) -> tuple[int, int]:
    monkeypatch.setattr(scan, "FALLS_BELOW_BOTH", below_both)
    hits, false = 0, 0
    for seed in range(20):
        for drop in (True, False):
            calls, first, start = _young_beside_the_app(seed, drop)
            v = scan.leaf_volume(calls, first, STEP, MONDAY, [np.ones((1, 2))])
            judged = np.arange(calls.shape[1]) >= 2 * DAY
            windows = scan._volume(v, np.eye(2), judged, STEP)[0]
            falls = [w for w in windows if w.direction == "down" and w.group == 1]
            inside = [w for w in falls if w.first < start + HOUR and w.last >= start]
            hits += drop and bool(inside)
            false += len(falls) - len(inside)
    return hits, false


def test_a_young_series_far_below_the_hours_before_and_after_it_is_a_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    # the borrowed shape (the app's morning) expects the window from the hours after it well below
    # what the hours before say; their disagreement, added to the spread, hid the fall (v11: a young
    # voice app's 22 calls where ~110 were due). Far below both, each with the series' own spread
    both = _young_falls(monkeypatch, True)
    either = _young_falls(monkeypatch, False)
    assert both[0] >= either[0] + 3, (both, either)  # 16 against 11 of 20 when written
    assert both[1] == either[1] == 0


def _busy_day(seed: int, factor: float) -> tuple[np.ndarray, int]:
    """8 days of a busy series (200 calls a bucket by day, 40 at night, hours wobbling 5%), an hour
    of the last day's noon at ``factor`` of its calls."""
    rng = np.random.default_rng(seed)
    t = np.arange(8 * DAY)
    hour = (t % DAY) / HOUR
    level = 40.0 + 160.0 / (1 + np.exp(-(hour - 8) * 2)) / (1 + np.exp((hour - 19) * 2))
    level *= np.repeat(rng.lognormal(0, 0.05, 8 * 24), HOUR)
    start = 7 * DAY + 12 * HOUR
    level[start : start + HOUR] *= factor
    return rng.poisson(level)[None, :].astype(float), start


def test_a_third_of_a_busy_series_calls_missing_for_an_hour_is_a_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    # ~800 calls missing of 2,400 where the hours wobble by 5%: many standard deviations, which the
    # issue counts as an incident, but the effect gate asked for half the calls gone (v11's 40%
    # drops: 1 of 8 found)
    def found(factor: float) -> tuple[int, int]:
        hits, false = 0, 0
        for seed in range(10):
            calls, start = _busy_day(seed, factor)
            v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
            judged = np.arange(calls.shape[1]) >= 7 * DAY
            falls = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]
            inside = [w for w in falls if w.first < start + HOUR and w.last >= start]
            hits += bool(inside)
            false += len(falls) - len(inside)
        return hits, false

    hits, false = found(0.67)
    assert hits >= 5 and false == 0, (hits, false)  # 6 of 10 when written
    assert found(1.0) == (0, 0)
    monkeypatch.setattr(scan, "VOLUME_DROP", 0.5)
    assert found(0.67)[0] == 0


def _first_day_falls(calls: np.ndarray) -> list[scan.Window]:
    """The falls of one series on a store that starts with it (no previous day: no profile)."""
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
    judged = np.ones(calls.shape[1], bool)
    return [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]


def _office(seed: int) -> np.ndarray:
    """A day and a half of office hours (40 calls a bucket 08:00-18:00, 2 otherwise) from Monday 00:00."""
    hour = np.arange(36 * HOUR) // HOUR % 24
    level = np.where((hour >= 8) & (hour < 18), 40.0, 2.0)
    return np.random.default_rng(seed).poisson(level)[None, :].astype(float)


def _six_hourly(seed: int) -> np.ndarray:
    """A day and a half of a batch job: 30 minutes at 200 calls a bucket every 6 hours."""
    level = np.where(np.arange(36 * HOUR) % (6 * HOUR) < 6, 200.0, 0.0)
    return np.random.default_rng(seed).poisson(level)[None, :].astype(float)


def test_a_stores_first_day_close_and_batch_gaps_are_not_falls(monkeypatch: pytest.MonkeyPatch) -> None:
    # v12 (blind): 296 of 366 false episodes were the store's first day: every office's evening
    # close and every gap of a six-hourly batch, judged against the hours before it, no profile yet
    closes = [w for s in range(5) for w in _first_day_falls(_office(s)) if w.last >= 18 * HOUR]
    gaps = [w for s in range(5) for w in _first_day_falls(_six_hourly(s))]
    assert closes == [] and gaps == []
    # ... while an hour at 15% that the series comes back from is still a fall
    for seed in range(5):
        level = np.full(36 * HOUR, 30.0)
        level[15 * HOUR : 16 * HOUR] *= 0.15
        calls = np.random.default_rng(seed).poisson(level)[None, :].astype(float)
        assert any(w.first < 16 * HOUR and w.last >= 15 * HOUR for w in _first_day_falls(calls))
    monkeypatch.setattr(scan, "RECOVERED_FIRST_DAY", False)
    assert any(w.last >= 18 * HOUR for s in range(5) for w in _first_day_falls(_office(s)))
    # the batch has six runs by its 36th hour: its schedule keeps the trailing baselines off its gaps
    assert not any(_first_day_falls(_six_hourly(s)) for s in range(5))
    monkeypatch.setattr(scan, "SCHEDULED_FALLS", False)
    assert any(_first_day_falls(_six_hourly(s)) for s in range(5))


def test_a_first_day_fall_in_the_stores_last_hour_is_judged_without_the_hour_after() -> None:
    # the hour after has not happened yet: the recovery rule cannot hold such a fall back
    for seed in range(5):
        level = np.full(20 * HOUR, 30.0)
        level[-8:] *= 0.05  # the store's last 40 minutes
        calls = np.random.default_rng(seed).poisson(level)[None, :].astype(float)
        assert any(w.last >= 20 * HOUR - 8 for w in _first_day_falls(calls))


def test_a_silence_counts_as_habit_only_once_the_series_came_back_from_one_as_long() -> None:
    calls = np.array([[0, 0, 3, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 5, 0]], float)
    # the empty buckets before the first call are not a silence the series came back from
    assert scan._silences_before(calls).tolist() == [[0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 4, 4]]
    assert scan._next_hour(np.ones((1, 3 * HOUR)), STEP)[0, : 2 * HOUR].tolist() == [float(HOUR)] * (2 * HOUR)
    assert np.isnan(scan._next_hour(np.ones((1, 3 * HOUR)), STEP)[0, -HOUR:]).all()


def test_a_young_series_whose_rate_shifts_for_good_is_judged_with_the_wobble_before_the_shift(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # v12 (blind): a translation service 14 hours old doubled its output tokens for good; its
    # windows after the shift were as many as before, all far above their baseline, and their
    # median read as the rate's wobble (c 0.95): 12 hours of half its calls past the bar against 10%
    def shift_found(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        first, shift = DAY + 10 * HOUR, 2 * DAY
        n = np.zeros((1, 2 * DAY + 12 * HOUR))
        n[0, first:] = rng.poisson(5.0, n.shape[1] - first)
        share = np.where(np.arange(n.shape[1]) >= shift, 0.5, 0.1)
        k = rng.binomial(n.astype(int), share).astype(float)
        windows, _ = scan._rates("tokens_per_call", k, n, np.arange(n.shape[1]) >= DAY, BASE, STEP)
        return any(w.last >= shift and w.first < shift + 6 * HOUR for w in windows)

    assert sum(shift_found(seed) for seed in range(5)) >= 4  # 0 of 5 before
    monkeypatch.setattr(scan, "EARLY_WOBBLE", False)
    assert not any(shift_found(seed) for seed in range(5))


def _week_falls(calls: np.ndarray, start_epoch: int = MONDAY) -> list[scan.Window]:
    first = np.array([int(np.argmax(calls[0] > 0))])
    v = scan.leaf_volume(calls, first, STEP, start_epoch)
    judged = np.arange(calls.shape[1]) >= DAY
    return [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]


def test_an_office_closed_on_the_stores_first_weekend_is_no_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    # A blind judge's series (v13 seed 1302, code-review/claude-opus-4-1, calls per 5 minutes as the
    # server stored them, Monday 00:00 UTC on): an office in UTC+8 that does not open on Saturday.
    # A week's store holds one weekend, judged on weekdays' ratios (Friday night to a morning ramp):
    # 67 of v13's 118 false episodes were offices' calls down that weekend
    row = np.load(Path(__file__).parent / "fixtures" / "v13_seed1302_office_calls.npz")
    calls, start_epoch = row["calls"].astype(float)[None, :], int(row["start_epoch"])
    assert _week_falls(calls, start_epoch) == []
    monkeypatch.setattr(scan, "FIRST_WEEKEND", False)
    assert any(4 * DAY + 20 * HOUR <= w.last < 7 * DAY for w in _week_falls(calls, start_epoch))


def test_an_outage_the_series_comes_back_from_on_the_first_weekend_is_still_one() -> None:
    for seed in range(5):
        calls = np.random.default_rng(seed).poisson(20.0, 7 * DAY)[None, :].astype(float)
        outage = 5 * DAY + 10 * HOUR  # the first Saturday, 10:00-11:00
        calls[0, outage : outage + HOUR] = 0
        assert any(w.first < outage + HOUR and w.last >= outage for w in _week_falls(calls))


def test_a_series_that_stops_for_good_on_the_first_weekend_is_still_a_fall() -> None:
    # a model switched off on a Saturday (its calls moved to another) never comes back: that is not
    # an office closed for the weekend (tests/test_anomalies.py's model switch, on a Sunday)
    for seed in range(5):
        calls = np.random.default_rng(seed).poisson(20.0, 7 * DAY)[None, :].astype(float)
        switch = 5 * DAY + 10 * HOUR
        calls[0, switch:] = 0
        assert any(w.first < switch + HOUR and w.last >= switch for w in _week_falls(calls))
    assert scan._stopped(np.array([[0.0, 2, 0, 1, 0, 0]])).tolist() == [[False, False, False, True, True, True]]


def test_the_first_weekend_is_each_series_own() -> None:
    monday = np.array([0])
    marks = scan._first_days(monday, STEP, MONDAY, 15 * DAY)[0][0]
    days = marks.reshape(15, DAY).any(axis=1).tolist()
    # its first Saturday and Sunday only: the next weekend has two weekend days before it
    assert days == [False] * 5 + [True, True] + [False] * 8
    # a series first seen on a Saturday: that day has no previous day, its Sunday is judged so
    days = scan._first_days(np.array([5 * DAY]), STEP, MONDAY, 8 * DAY)[0][0].reshape(8, DAY).any(axis=1).tolist()
    assert days == [False] * 6 + [True, False]


def _born_on_saturday(seed: int) -> np.ndarray:
    """Two series from a Thursday: one flat all along (10 calls a bucket), one first seen on the
    Saturday (4 a bucket all weekend, then office hours, 30 a bucket 08:00-18:00 UTC from Monday)."""
    t = np.arange(6 * DAY)
    hour, day = t // HOUR % 24, t // DAY  # day 0 Thursday, 2 Saturday, 4 Monday, 5 Tuesday
    young = np.where(day < 2, 0.0, np.where((day >= 4) & (hour >= 8) & (hour < 18), 30.0, 4.0))
    rng = np.random.default_rng(seed)
    return np.stack([rng.poisson(10.0, t.size), rng.poisson(young)]).astype(float)


def _rises_from_saturday(calls: np.ndarray) -> list[scan.Window]:
    first = np.array([0, 2 * DAY])
    v = scan.leaf_volume(calls, first, STEP, MONDAY - 4 * 86400)
    judged = np.arange(calls.shape[1]) >= 3 * DAY
    return [w for w in scan._volume(v, np.eye(2), judged, STEP)[0] if w.direction == "up" and w.group == 1]


def test_a_series_first_weekday_after_weekends_only_is_no_spike(monkeypatch: pytest.MonkeyPatch) -> None:
    # v13 (blind): a model added on a Saturday had only weekend days behind it, so its ratios and
    # its busiest previous day were a weekend's and its first Monday morning a spike, 14 of 20 weeks
    assert all(_rises_from_saturday(_born_on_saturday(s)) == [] for s in range(5))
    # ... while its Tuesday (a Monday behind it) is judged: an hour at four times its level is a spike
    for seed in range(5):
        calls = _born_on_saturday(seed)
        spike = 5 * DAY + 14 * HOUR
        calls[1, spike : spike + HOUR] *= 4
        assert any(w.first < spike + HOUR and w.last >= spike for w in _rises_from_saturday(calls))
    monkeypatch.setattr(scan, "FIRST_WEEKEND", False)
    assert all(_rises_from_saturday(_born_on_saturday(s)) for s in range(5))


def test_a_store_that_starts_on_a_weekend_judges_its_first_monday_as_before() -> None:
    # v2's stores start on a Saturday: every series' first weekday is the store's, where a 5x spike
    # of an hour (62 sd) must still be found (RISE_ANY_DAY holds the Monday ramps)
    # a series born on the Sunday, a day after the store, has its Monday marked; the store's own not
    marks = scan._first_days(np.array([0, DAY + 1]), STEP, MONDAY - 2 * 86400, 4 * DAY)[1]
    assert not marks[0].any() and marks[1, 2 * DAY + HOUR : 3 * DAY].all() and not marks[1, 3 * DAY :].any()
    v = scan.leaf_volume(np.ones((2, 4 * DAY)), np.array([0, 0]), STEP, MONDAY - 2 * 86400)
    assert v.first_weekday is not None and not v.first_weekday.any()


def _sparse_office(seed: int, days: int, fall: tuple[int, int]) -> np.ndarray:
    """A sparse office series: 6 calls a bucket from 08:00 to 17:00 (hours wobbling 5%), a call
    every few hours at night, ``fall`` (buckets) cut to 15% on the last day."""
    rng = np.random.default_rng(seed)
    hour = np.arange(days * DAY) % DAY // HOUR
    level = np.where((hour >= 8) & (hour < 17), 6.0, 0.03)
    level *= np.exp(0.05 * np.repeat(rng.standard_normal(days * 24), HOUR))
    level[fall[0] : fall[1]] *= 0.15
    return rng.poisson(level)[None, :].astype(float)


def test_a_morning_fall_whose_older_baseline_is_the_night_is_judged_with_the_hours_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 10:00-11:00: the hours before it (07:00-10:00) hold two hours of the day, the three before
    # those a call or two of the night: too few to expect anything from, and as the lower of the
    # two expectations they were the one a fall was judged against, so no window was judged at all
    # (v13: 10 of a sparse helpdesk's morning outages). The hours before and the hours after it are
    # the two baselines then, and a -85% hour is found
    def found(alone: bool) -> tuple[int, int]:
        monkeypatch.setattr(scan, "ALONE_WITH_AFTER", alone)
        days, hits, elsewhere = 8, 0, 0
        start = (days - 1) * DAY + 10 * HOUR
        for seed in range(20):
            calls = _sparse_office(seed, days, (start, start + HOUR))
            v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY)
            judged = np.arange(calls.shape[1]) >= DAY  # the week, as `anomalies --since 8d`
            falls = [w for w in scan._volume(v, np.ones((1, 1)), judged, STEP)[0] if w.direction == "down"]
            hits += any(w.first < start + HOUR and w.last >= start for w in falls)
            elsewhere += sum(w.first >= start - 10 * HOUR and not w.first < start + HOUR + 6 for w in falls)
        return hits, elsewhere

    alone, without = found(True), found(False)
    assert alone[0] >= without[0] + 10 and alone[1] == without[1] == 0, (alone, without)  # 19 and 0 of 20 when written


def test_the_spread_at_a_time_of_day_is_read_from_that_hour_of_every_day() -> None:
    # a profile that errs by 30% on its ramps (06:00-09:00, 16:00-19:00) and only by chance at noon:
    # the series-wide median carried the ramps' error to noon; the hour's own is the floor's
    rng = np.random.default_rng(3)
    days, mu = 8, 100.0
    hour = np.arange(days * DAY) % DAY // HOUR
    ramps = ((hour >= 6) & (hour < 9)) | ((hour >= 16) & (hour < 19))
    wobble = np.where(ramps, np.exp(0.3 * rng.standard_normal(days * DAY)), 1.0)
    x = rng.poisson(mu * wobble)[None, :].astype(float)
    expected = np.full(x.shape, mu)
    ok = np.ones(x.shape, bool)
    series_wide = scan._nb_size(x, expected, ok)[0]
    by_hour = scan._nb_size_by_hour(x, expected, ok, STEP)[0]
    noon, ramp = by_hour[7 * DAY + 12 * HOUR], by_hour[7 * DAY + 7 * HOUR]
    assert noon == pytest.approx(1 / scan.NB_MIN_C**2)  # the floor: Poisson alone at noon
    assert ramp < 30 < series_wide < noon, (ramp, series_wide, noon)  # c ~0.3 on the ramp
    # two days of windows at an hour are not enough to read its spread from
    young = ok & (np.arange(days * DAY) >= 6 * DAY)
    assert np.isnan(scan._nb_size_by_hour(x, expected, young, STEP)).all()


def _weekly_job(seed: int, burst: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Eight days of a report service: a call every few minutes (1% failing) and its weekly run,
    ~130 calls from Monday 08:00; with ``burst``, this Monday's run fails 16 of its first 123 calls."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(0.8, (1, 8 * DAY)).astype(float)
    k = rng.binomial(n.astype(int), 0.01).astype(float)
    for day in (0, 7):
        run = day * DAY + 8 * HOUR
        n[0, run : run + 6] = [37, 42, 22, 15, 11, 7]
        k[0, run : run + 6] = [0, 0, 1, 0, 0, 0]
    n[0, run : run + 6] = [52, 37, 34, 26, 11, 13]
    if burst:
        k[0, run : run + 3] = [5, 6, 5]
    return n, k, run


def test_a_weekly_runs_burst_of_errors_is_not_read_as_its_own_clustering() -> None:
    # the burst's own edges read the series as clustered (phi ~6) and hid it: 6 of 20 found; the
    # rest of the week shows no clustering: 14 of 20 (the others stay hidden by the uncertainty of
    # a baseline of ~230 sparse calls the day before)
    found = false = 0
    for seed in range(20):
        for burst in (True, False):
            n, k, run = _weekly_job(seed, burst)
            windows, _ = scan._rates("error_rate", k, n, np.arange(n.shape[1]) >= DAY, BASE, STEP)
            if burst:
                found += any(w.first <= run + 2 and w.last >= run for w in windows)
            else:
                false += bool(windows)
    assert found >= 12 and false == 0, (found, false)


def test_a_rise_is_expected_at_least_as_high_as_the_same_minutes_of_previous_days_held() -> None:
    # a store that opens on a Saturday, a quiet weekend and busy weekdays, and a batch of ~110 calls
    # a bucket every day from 17:00 for 40 minutes: on the second Sunday an hour's smoothing of the
    # weekend days before (up to a week back) spread the batch's first minutes over the quiet before
    # it (66 calls expected in its first bucket, 224 in its first 15 minutes) where they held 103-124
    rng = np.random.default_rng(1)
    t = np.arange(9 * DAY)
    level = np.where((t // DAY + 5) % 7 >= 5, 3.0, 14.0) * (0.6 + 0.4 * np.sin(np.pi * (t % DAY) / DAY))
    for day in range(9):
        level[day * DAY + 17 * HOUR : day * DAY + 17 * HOUR + 8] += 110.0
    calls = rng.poisson(level)[None, :].astype(float)
    v = scan.leaf_volume(calls, np.array([0]), STEP, MONDAY - 2 * 86400)
    for width in (1, 3):
        end = 8 * DAY + 17 * HOUR + width - 1
        held = [calls[0, end - d * DAY - width + 1 : end - d * DAY + 1].sum() for d in (1, 7)]
        assert v.mu[width][0][0, end] >= np.median(held) - 1e-9, (width, v.mu[width][0][0, end], held)
        # the store's second day, before two days of its type exist: at least the first day's same minutes
        end = DAY + 17 * HOUR + width - 1
        held = calls[0, end - DAY - width + 1 : end - DAY + 1].sum()
        assert v.mu[width][0][0, end] >= held - 1e-9, (width, v.mu[width][0][0, end], held)


def test_a_daily_batchs_night_on_the_stores_second_day_is_no_silence() -> None:
    # one run a day from 17:00 for 40 minutes and nothing else: the profile's ratio from the evening
    # (the run's end) to the night is at least a tenth, so the second night expected ~15 calls in three
    # hours and its silence was a fall; no previous day held a call then
    rng = np.random.default_rng(2)
    level = np.full(3 * DAY, 0.01)
    for day in range(3):
        level[day * DAY + 17 * HOUR : day * DAY + 17 * HOUR + 8] = 110.0
    calls = rng.poisson(level)[None, :].astype(float)
    calls[0, : 17 * HOUR] = 0  # the store opens at the first run
    v = scan.leaf_volume(calls, np.array([17 * HOUR]), STEP, MONDAY)
    night = DAY + 23 * HOUR + 35  # 23:00-02:00 after the second run
    assert calls[0, night - 35 : night + 1].sum() == 0 and calls[0, night - 35 - DAY : night + 1 - DAY].sum() == 0
    assert all(m[0, night] == 0 for m in v.mu_low[36])
    falls = [w for w in scan._volume(v, np.ones((1, 1)), np.arange(3 * DAY) >= DAY, STEP)[0] if w.direction == "down"]
    assert not [w for w in falls if w.first <= night and w.last >= night - 35], falls

"""The held-out v3 traffic generator (benchmarks/detection_scenarios_v3.py): its labels must be
true of the data it writes, and a seed must always give the same data."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v3 as gen

END = gen.default_end()  # a recent Wednesday 10:00 UTC (inside the store's TTL); the scenario starts on a Monday


def _busiest(sc: gen.Scenario) -> int:
    old = [i for i, s in enumerate(sc.series) if s.first_minute == 0 and s.service.stream_share > 0.5]
    return max(old, key=lambda i: sc.series[i].rate)


def _with_incident(kind: str, factor: float, minutes: int = 60) -> tuple[gen.Scenario, gen.Incident]:
    """Seed 1's traffic with a single hand-placed incident on its busiest streaming series, at a
    weekday's busy hour (Tuesday 15:00 UTC)."""
    sc = gen.build(1, END)
    start = 8 * 1440 + 5 * 60  # the scenario starts on Monday 10:00 UTC
    end = gen.MINUTES if kind in gen.PERMANENT else start + minutes
    inc = gen.Incident(kind, (_busiest(sc),), start, end, factor, "series")
    sc.incidents = [inc]
    sc.series = [replace(s, releases=s.releases[:1]) for s in sc.series]
    return sc, inc


def _split(sc: gen.Scenario, inc: gen.Incident) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The incident's calls, and those of the same hours one day earlier."""
    cols = gen.series_calls(sc, inc.series[0])
    end = min(inc.end, inc.start + 120)
    inside = (cols["t"] >= inc.start) & (cols["t"] < end)
    before = (cols["t"] >= inc.start - 1440) & (cols["t"] < end - 1440)
    return {k: v[inside] for k, v in cols.items()}, {k: v[before] for k, v in cols.items()}


def test_same_seed_gives_identical_scenario_and_calls() -> None:
    a, b = gen.build(5, END), gen.build(5, END)
    assert a.incidents == b.incidents and a.benign == b.benign
    for i in (0, len(a.series) - 1):
        ca, cb = gen.series_calls(a, i), gen.series_calls(b, i)
        assert ca.keys() == cb.keys()
        for key in ca:
            np.testing.assert_array_equal(ca[key], cb[key])


def test_different_seeds_give_different_incidents() -> None:
    assert gen.build(5, END).incidents != gen.build(6, END).incidents


def test_labels_lie_in_the_judged_week_with_the_promised_durations() -> None:
    kinds, benign = set(), set()
    for seed in range(200, 205):
        sc = gen.build(seed, END)
        for inc in sc.incidents:
            kinds.add(inc.kind)
            assert sc.judged_from <= inc.start < gen.MINUTES
            if inc.kind not in gen.PERMANENT:
                assert 5 <= inc.end - inc.start <= 120 or inc.end == gen.MINUTES
            if inc.young:
                first = sc.series[inc.series[0]].first_minute
                assert 12 * 60 <= inc.start - first <= 20 * 60
        benign |= {b.kind for b in sc.benign}
    assert kinds == set(gen.KINDS)
    assert benign == {"release", "daily_peak", "weekend", "monday", "new_series"}


def test_rates_span_a_fifth_of_a_call_to_fifty_calls_per_minute() -> None:
    rates = [s.rate for s in gen.build(200, END).series]
    assert min(rates) < 0.5 and max(rates) > 25 and all(0.2 <= r <= 50 for r in rates)


def test_error_burst_window_has_its_labelled_error_rate() -> None:
    sc, inc = _with_incident("errors", 0.3)
    inside, before = _split(sc, inc)
    n = len(inside["t"])
    assert n > 300
    assert abs(inside["failed"].mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    assert before["failed"].mean() < 0.05


def test_truncation_burst_cuts_answers_at_max_tokens() -> None:
    sc, inc = _with_incident("truncation", 0.4)
    inside, before = _split(sc, inc)
    ok = ~inside["failed"]
    cut = inside["finish"][ok] == 1
    assert abs(cut.mean() - 0.4) < 0.06
    assert (inside["out_tok"][ok][cut] == sc.series[inc.series[0]].service.max_tokens).all()
    assert (before["finish"] == 1).mean() < 0.06


@pytest.mark.parametrize(("kind", "factor"), [("volume_drop", 0.1), ("volume_spike", 4.0)])
def test_volume_incidents_change_the_call_count_by_their_factor(kind: str, factor: float) -> None:
    sc, inc = _with_incident(kind, factor)
    cols = gen.series_calls(sc, inc.series[0])
    seen = ((cols["t"] >= inc.start) & (cols["t"] < inc.end)).sum()
    expected = gen.expected_per_minute(sc, inc.series[0])[inc.start : inc.end].sum() * factor
    assert abs(seen - expected) < 0.35 * expected + 10


@pytest.mark.parametrize(
    ("kind", "factor", "column"),
    [("latency", 3.0, "dur_ms"), ("ttft", 4.0, "ttft_ms"), ("tokens_shift", 2.0, "out_tok"), ("cost", 2.5, "cost")],
)
def test_distribution_incidents_move_the_median_by_about_their_factor(kind: str, factor: float, column: str) -> None:
    sc, inc = _with_incident(kind, factor)
    inside, before = _split(sc, inc)
    ok_in, ok_before = ~inside["failed"], ~before["failed"]
    ratio = np.nanmedian(inside[column][ok_in]) / np.nanmedian(before[column][ok_before])
    low = 1.8 if kind == "latency" else 0.75 * factor  # latency: decoding slows, TTFT does not
    assert low < ratio < 1.25 * factor


def test_ttft_is_recorded_on_successful_streams_only() -> None:
    sc = gen.build(3, END)
    cols = gen.series_calls(sc, _busiest(sc))
    has_ttft = ~np.isnan(cols["ttft_ms"])
    np.testing.assert_array_equal(has_ttft, cols["stream"] & ~cols["failed"])
    assert (cols["ttft_ms"][has_ttft] < cols["dur_ms"][has_ttft]).all()
    assert (cols["out_tok"][cols["failed"]] == 0).all() and np.isnan(cols["cost"][cols["failed"]]).all()


def test_young_series_have_no_calls_before_they_appear() -> None:
    sc = gen.build(4, END)
    young = [i for i, s in enumerate(sc.series) if s.first_minute > 0]
    assert len(young) == gen.YOUNG_INCIDENTS + 1
    for i in young:
        assert gen.series_calls(sc, i)["t"].min() >= sc.series[i].first_minute


def test_weekend_traffic_of_business_series_is_a_fraction_of_weekdays() -> None:
    sc = gen.build(2, END)
    i = next(i for i, s in enumerate(sc.series) if s.service.profile == "business" and s.rate > 2)
    t = gen.series_calls(sc, i)["t"]
    saturday = ((t >= 5 * 1440 - 600) & (t < 6 * 1440 - 600)).sum()  # scenario day 5 = Saturday
    tuesday = ((t >= 8 * 1440 - 600) & (t < 9 * 1440 - 600)).sum()
    assert saturday < 0.35 * tuesday


def test_naive_end_and_bad_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        gen.build(1, datetime(2026, 12, 2, 10, 0))
    with pytest.raises(ValueError, match="must be > 0"):
        gen.build(1, END, scale=0)


def test_insert_writes_every_call_into_llm_calls(store) -> None:
    sc = gen.build(9, END, scale=0.01)
    calls = [gen.series_calls(sc, i) for i in range(len(sc.series))]
    total = gen.insert(store, sc)
    assert total == sum(len(c["t"]) for c in calls)
    row = store.query(
        "SELECT count(), countIf(IsError), countIf(TtftUs IS NOT NULL), countIf(FinishReason IN "
        "('length', 'max_tokens', 'MAX_TOKENS')), uniqExact(ServiceName, RequestModel), min(Timestamp) "
        "FROM llm_calls"
    ).result_rows[0]
    assert row[0] == total
    assert row[1] == sum(int(c["failed"].sum()) for c in calls)
    assert row[2] == sum(int((~np.isnan(c["ttft_ms"])).sum()) for c in calls)
    assert row[3] == sum(int((c["finish"] == 1).sum()) for c in calls)
    assert row[4] == len(sc.series)
    assert row[5].replace(tzinfo=timezone.utc) >= sc.start
    assert store.query("EXISTS TABLE v3_stage").result_rows[0][0] == 0

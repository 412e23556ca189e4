"""The blind judge v14's traffic generator (benchmarks/detection_scenarios_v14.py): a seed and an end
always give the same week, every labelled incident moves its series in its direction inside its
window, and the benign changes it must not alert on are there."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v14 as gen

END = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)  # a Monday morning, as the judged run's
SEED = 1400
UP = {"latency_spike", "slow_ramp", "ttft_spike", "error_burst", "output_shift"}
DOWN = {"volume_drop", "service_drop", "tenant_drop"}


@pytest.fixture(scope="module")
def week() -> tuple[gen.Week, dict[str, dict[str, np.ndarray]]]:
    w = gen.Week(SEED, END, scale=0.3)
    calls, _ = gen.generate(w)
    return w, calls


def test_a_seed_and_an_end_give_the_same_week(week: tuple[gen.Week, dict[str, dict[str, np.ndarray]]]) -> None:
    w, calls = week
    again = gen.Week(SEED, END, scale=0.3)
    calls_again, _ = gen.generate(again)
    assert [i.label() for i in again.incidents] == [i.label() for i in w.incidents]
    assert calls_again.keys() == calls.keys()
    for key, c in calls.items():
        assert all(np.array_equal(c[f], calls_again[key][f], equal_nan=True) for f in ("t", "dur", "err", "out"))


def test_every_eligible_incident_moves_its_series_its_way(
    week: tuple[gen.Week, dict[str, dict[str, np.ndarray]]],
) -> None:
    w, calls = week
    kinds = {i.kind for i in w.incidents}
    assert UP & kinds and DOWN & kinds, kinds
    eligible = 0
    for inc in w.incidents:
        assert 0 <= inc.start < inc.end <= gen.WEEK and all(s in calls for s in inc.series), inc.label()
        e = gen.eligibility(w, inc, calls)
        if not e["eligible"]:
            continue
        eligible += 1
        assert e["z"] >= 3 and inc.end - inc.start >= 10, (inc.label(), e)
        effect = e["effect"] if e["effect"] is not None else float("inf")
        assert (effect > 1) if inc.kind in UP else (effect < 1), (inc.label(), e)
    assert eligible >= 15, eligible


def test_a_volume_drop_is_fewer_calls_than_the_same_hours_before_and_after(
    week: tuple[gen.Week, dict[str, dict[str, np.ndarray]]],
) -> None:
    w, calls = week
    drops = [i for i in w.incidents if i.kind == "volume_drop" and gen.eligibility(w, i, calls)["eligible"]]
    assert drops
    for inc in drops:
        t = calls[inc.series[0]]["t"]
        width = inc.end - inc.start
        inside = np.sum((t >= inc.start) & (t < inc.end))
        around = np.sum((t >= inc.start - width) & (t < inc.start)) + np.sum((t >= inc.end) & (t < inc.end + width))
        assert inside < 0.75 * around / 2, (inc.label(), inside, around)


def test_the_benign_changes_are_in_the_week(week: tuple[gen.Week, dict[str, dict[str, np.ndarray]]]) -> None:
    w, _ = week
    kinds = {b.kind for b in w.benign}
    assert {"release", "canary", "holiday"} <= kinds, kinds

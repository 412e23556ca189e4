"""The held-out v10 traffic generator (benchmarks/detection_scenarios_v10.py) stays sound: a seed
always gives the same scenario, each incident kind changes its statistic where and as labelled, and
its span rows land in a real chDB store as the same calls in ``llm_calls``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_harness as h
import detection_scenarios_v10 as gen
import detection_v10 as bench

MINI = 2  # chat-app/gpt-4o-mini: dense, streamed
START = 5 * 1440 + 14 * 60  # Tue 24 Nov 14:00 UTC, a busy weekday afternoon (fixed, not "now")


def _pair(sc: gen.Scenario, inc: gen.Incident, i: int = MINI) -> tuple[dict, dict]:
    """The series' calls over the incident window without and with it, on the same noise."""
    nz = gen.noise(sc, np.random.default_rng([1, 2]))
    lo, hi = inc.start, inc.end if inc.kind not in gen.PERMANENT else inc.start + 120
    off = gen.calls(sc, i, lo, hi, nz, [], np.random.default_rng([3]))
    on = gen.calls(sc, i, lo, hi, nz, [inc], np.random.default_rng([3]))
    return off, on


def test_a_seed_is_reproducible_and_has_the_promised_shape() -> None:
    a, b = gen.build(1000), gen.build(1000)
    assert [(x.kind, x.start, x.series, x.factor) for x in a.incidents] == [
        (x.kind, x.start, x.series, x.factor) for x in b.incidents
    ]
    assert 10 <= len(a.series) <= 16
    assert {x.kind for x in a.incidents} == set(gen.KINDS)
    young = a.series[gen.YOUNG]
    on_young = [x for x in a.incidents if gen.YOUNG in x.series and x.start > young.first_minute]
    assert any(720 <= x.start - young.first_minute <= 1440 for x in on_young)
    assert all(a.judged_from <= x.start and x.end <= gen.MINUTES for x in a.incidents)
    assert {b.kind for b in a.benign} == set(gen.BENIGN_KINDS)


@pytest.mark.parametrize(
    ("kind", "factor", "check"),
    [
        ("latency_spike", 5.0, lambda off, on: _p95(on["dur_ms"]) / _p95(off["dur_ms"]) > 3.5),
        ("ttft_spike", 6.0, lambda off, on: _p95(on["ttft_ms"]) / _p95(off["ttft_ms"]) > 4.5),
        ("error_burst", 0.4, lambda off, on: 0.3 < _failed(on) < 0.5 and _failed(off) < 0.03),
        ("volume_drop", 0.15, lambda off, on: len(on["t"]) < 0.25 * len(off["t"])),
        ("output_shift", 2.5, lambda off, on: on["out_tok"].mean() / off["out_tok"].mean() > 1.8),
        ("cost_jump", 4.0, lambda off, on: 3.5 < on["cost"].sum() / off["cost"].sum() < 4.5),
        ("empty_output", 0.3, lambda off, on: 0.2 < _empty(on) < 0.4 and _empty(off) == 0),
    ],
)
def test_each_incident_changes_its_statistic_in_its_window(kind: str, factor: float, check) -> None:
    sc = gen.build(1000)
    inc = gen.Incident(kind, START, START + 40, (MINI,), factor, False)
    off, on = _pair(sc, inc)
    assert len(off["t"]) > 200
    assert check(off, on)
    # outside the window nothing changes
    nz = gen.noise(sc, np.random.default_rng([1, 2]))
    before = [gen.calls(sc, MINI, START - 60, START, nz, x, np.random.default_rng([4])) for x in ([], [inc])]
    assert np.array_equal(before[0]["dur_ms"], before[1]["dur_ms"])


def test_a_regional_outage_fails_the_calls_of_its_zone_only() -> None:
    sc = gen.build(1000)
    inc = gen.Incident("regional_outage", START, START + 40, (MINI,), 1.0, False, "provider", zone=1)
    _, on = _pair(sc, inc)
    failed = on["status"] == gen.FAILED
    assert failed[on["zone"] == 1].mean() > 0.95
    assert failed[on["zone"] != 1].mean() < 0.05


def test_rows_land_in_a_chdb_store_as_the_same_calls() -> None:
    sc = gen.build(1000)
    nz = gen.noise(sc, np.random.default_rng([sc.seed, 11]))
    picked = {MINI: None, gen.BATCH: None, 4: None}  # streamed chat, cron batch, reasoning agent
    expected = {}

    def fill(client, sc) -> int:
        rows = []
        for i in picked:
            c = gen.calls(sc, i, START, START + 180, nz, sc.incidents, np.random.default_rng([5, i]))
            ids = np.random.default_rng([6, i]).integers(0, 2**63, (len(c["t"]), 3))
            expected[sc.series[i].service] = (len(c["t"]), int((c["status"] == gen.FAILED).sum()))
            rows.extend(gen._rows(sc, i, c, ids)[1])
        h.insert_rows(client, rows)
        return len(rows)

    with h.store(bench.BENCH, sc, fill) as (client, inserted):
        got = client.query("SELECT ServiceName, count(), sum(IsError) FROM llm_calls GROUP BY ServiceName").result_rows
    assert inserted["calls"] == sum(n for n, _ in expected.values())
    assert {s: (int(n), int(e)) for s, n, e in got} == expected


def _p95(v: np.ndarray) -> float:
    return float(np.nanpercentile(v, 95))


def _failed(c: dict) -> float:
    return float((c["status"] == gen.FAILED).mean())


def _empty(c: dict) -> float:
    ok = c["status"] == gen.OK
    return float((ok & (c["out_tok"] == 0)).mean() / ok.mean())

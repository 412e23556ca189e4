"""The held-out v9 traffic generator (benchmarks/detection_scenarios_v9.py): a seed always gives
the same data, its incidents change their series only inside their labelled window and in the
labelled direction, and its rows land in ``llm_calls`` as generated."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v9 as gen

SEED = 900


@pytest.fixture(scope="module")
def sc() -> gen.Scenario:
    return gen.build(SEED)


def _window(c: dict[str, np.ndarray], lo: float, hi: float) -> dict[str, np.ndarray]:
    keep = (c["t"] >= lo) & (c["t"] < hi)
    return {k: v[keep] for k, v in c.items()}


def test_same_seed_same_calls(sc: gen.Scenario) -> None:
    again = gen.build(SEED)
    assert [(i.kind, i.series, i.start, i.end) for i in again.incidents] == [
        (i.kind, i.series, i.start, i.end) for i in sc.incidents
    ]
    a, b = gen.series_calls(sc, 9), gen.series_calls(again, 9)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def test_design(sc: gen.Scenario) -> None:
    """Every kind is there, in the judged week; the young series starts 12-24 h before an incident."""
    assert {i.kind for i in sc.incidents} == set(gen.KINDS)
    assert all(gen.JUDGED_FROM <= i.start < i.end <= gen.MINUTES for i in sc.incidents)
    young = sc.series[gen.YOUNG]
    first = min(i.start for i in sc.incidents if gen.YOUNG in i.series)
    assert 12 * 60 <= first - young.first_minute <= 24 * 60
    times = gen.series_calls(sc, gen.YOUNG)["t"]
    assert len(times) and times.min() >= young.first_minute
    assert {b.kind for b in sc.benign} == set(gen.BENIGN_KINDS)
    rates = [s.rate for s in sc.series]
    assert min(rates) < 0.5 and max(rates) > 10


STAT = {
    "latency_spike": lambda c: np.median(c["dur_ms"][c["status"] == gen.OK]),
    "latency_ramp": lambda c: np.median(c["dur_ms"][c["status"] == gen.OK]),
    "ttft_spike": lambda c: np.nanmedian(c["ttft_ms"][c["status"] == gen.OK]),
    "error_burst": lambda c: np.mean(c["status"] == gen.FAILED),
    "provider_outage": lambda c: np.mean(c["status"] == gen.FAILED),
    "output_shift": lambda c: np.mean(c["out_tok"][c["status"] == gen.OK]),
    "truncation_up": lambda c: np.mean(c["cut"][c["status"] == gen.OK]),
}


@pytest.mark.parametrize("kind", gen.KINDS)
def test_incidents_land_where_labelled(sc: gen.Scenario, kind: str) -> None:
    """Paired with the same draws minus the incident: the labelled window moves the right way,
    the minutes outside it (temporary kinds other than volume) are untouched."""
    drawn = next(i for i in sc.incidents if i.kind == kind)
    # the seed's size and length, moved to a busy weekday hour (Wed 14:00 UTC) on the busy
    # ``support-bot/gpt-4o-mini`` (a provider outage keeps its series), so a window holds enough calls
    start = 5 * 1440 + 8 * 60
    end = gen.MINUTES if kind in gen.PERMANENT else start + drawn.end - drawn.start
    inc = replace(drawn, series=drawn.series if drawn.scope == "provider" else (0,), start=start, end=end)
    others = [i for i in sc.incidents if i is not drawn]
    for j in inc.series:
        on = gen.calls(sc, j, 0, gen.MINUTES, sc.noise, [*others, inc])
        off = gen.calls(sc, j, 0, gen.MINUTES, sc.noise, others)
        end = min(inc.end, inc.start + 240)
        a, b = _window(on, inc.start, end), _window(off, inc.start, end)
        if kind == "volume_drop":
            assert len(a["t"]) < 0.6 * len(b["t"])
            continue
        assert STAT[kind](a) > 1.3 * STAT[kind](b), (kind, j)
        if kind not in gen.PERMANENT:
            assert np.array_equal(_window(on, 0, inc.start - 1)["dur_ms"], _window(off, 0, inc.start - 1)["dur_ms"])
            # an agent call may run a little past the window; a minute later nothing differs
            assert np.array_equal(_window(on, inc.end + 1, gen.MINUTES)["dur_ms"],
                                  _window(off, inc.end + 1, gen.MINUTES)["dur_ms"])  # fmt: skip


def test_rows_land_in_llm_calls(sc: gen.Scenario, tmp_path: Path) -> None:
    """Three quiet series (one of agent traces) into a real chDB store: calls, failures, cuts,
    content filters, streamed TTFTs and shared trace ids as generated."""
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(f"chdb://{tmp_path}")
    try:
        apply_migrations(client_runner(client), ttl_days=3650)
        expect = {}
        for i in (9, 11, 12):
            c = gen.series_calls(sc, i)
            _, rows = gen._rows(sc, i, c, gen._ids(sc, i, c))
            gen.insert_rows(client, rows)
            ok = c["status"] == gen.OK
            expect[sc.series[i].service] = (
                len(c["t"]), int((~ok).sum()), int((c["cut"] & ok).sum()), int((c["filt"] & ok).sum()),
                int((c["stream"] & ok).sum()), len(np.unique(c["trace"])),
            )  # fmt: skip
        got = client.query(
            "SELECT ServiceName, count(), countIf(IsError), countIf(FinishReason = 'length'),"
            " countIf(FinishReason = 'content_filter'), countIf(TtftUs > 0), uniqExact(TraceId)"
            " FROM llm_calls GROUP BY ServiceName"
        ).result_rows
    finally:
        client.close()
    assert {r[0]: tuple(int(v) for v in r[1:]) for r in got} == expect
    assert expect["analytics-bot"][5] < expect["analytics-bot"][0] / 2  # agent traces of several calls

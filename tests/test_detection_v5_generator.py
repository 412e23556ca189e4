"""The held-out v5 traffic generator (benchmarks/detection_scenarios_v5.py): its labels must be
true of the calls it draws and of the spans it writes, a seed must always give the same data,
its layout and rates must be the documented ones, and the effect sizing must tell a large
incident from none."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v5 as gen5

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

SEEDS = range(500, 510)


@pytest.fixture(scope="module")
def scenarios() -> list[gen5.Scenario]:
    return [gen5.build(seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def drawn500() -> tuple[gen5.Scenario, list[dict[str, np.ndarray]]]:
    sc = gen5.build(500)
    return sc, gen5.all_calls(sc)


def _in(c: dict[str, np.ndarray], lo: float, hi: float) -> dict[str, np.ndarray]:
    keep = (c["t"] >= lo) & (c["t"] < hi)
    return {k: v[keep] for k, v in c.items()}


def _first(sc: gen5.Scenario, kind: str, scope: str = "series") -> gen5.Incident:
    return next(i for i in sc.incidents if i.kind == kind and i.scope == scope)


def test_a_seed_always_gives_the_same_scenario_and_calls() -> None:
    a, b, other = gen5.build(503), gen5.build(503), gen5.build(504)
    assert a.incidents == b.incidents and a.benign == b.benign and a.series == b.series
    assert a.incidents != other.incidents
    ca, cb = gen5.all_calls(a), gen5.all_calls(b)
    for x, y in zip(ca, cb, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_every_kind_scope_outage_and_young_series_occur_over_the_reported_seeds(scenarios: list) -> None:
    incidents = [i for sc in scenarios for i in sc.incidents]
    assert {i.kind for i in incidents} == set(gen5.KINDS)
    assert {i.scope for i in incidents} == {"series", "service", "provider"}
    for sc in scenarios:
        outages = [i for i in sc.incidents if i.group == "outage"]
        assert len(outages) in (2, 4) and {i.kind for i in outages} == {"errors_5xx", "volume_drop"}
        for o in outages:  # every old series of the provider that lives to the end
            provider = sc.series[o.series[0]].provider
            assert set(o.series) == {j for j, s in enumerate(sc.series) if s.provider == provider
                                     and s.first_minute == 0 and s.last_minute == gen5.MINUTES}  # fmt: skip
        young = [i for i in sc.incidents if any(sc.series[j].first_minute > 0 for j in i.series)]
        assert young, f"seed {sc.seed} has no incident on a young series"


def test_incidents_fall_in_the_judged_week_with_documented_durations_and_ages(scenarios: list) -> None:
    for sc in scenarios:
        assert 32 <= len([i for i in sc.incidents if i.group != "outage"]) <= 40
        for inc in sc.incidents:
            assert gen5.JUDGED_FROM <= inc.start < gen5.MINUTES
            if inc.kind in gen5.PERMANENT:
                assert inc.end == gen5.MINUTES
            else:
                assert 5 <= inc.end - inc.start <= 180 or inc.end == gen5.MINUTES - 1
            born = max(sc.series[j].first_minute for j in inc.series)
            if born > 0 and inc.group == "":
                assert 360 <= inc.start - born <= 2880, "young-series incidents start 6-48 h after the first call"


def test_layout_has_one_dominant_customer_sparse_series_and_all_three_modes(scenarios: list) -> None:
    for sc in scenarios:
        old = [s for s in sc.series if s.first_minute == 0]
        big = [s for s in old if s.rate >= 3]
        assert len(big) == 1 and big[0].rate <= 6 and 0.7 <= big[0].tenants[0].weight <= 0.85
        others = [s for s in old if s is not big[0]]
        assert all(0.05 <= s.rate <= 2 for s in others)
        assert all(1.0 <= s.growth <= 1.12 for s in sc.series)
        assert {s.mode for s in sc.series} == {"stream", "batch", "mixed"}
    rates = np.array([s.rate for sc in scenarios for s in sc.series if s.first_minute == 0 and s.rate < 3])
    # a third sparse, log-uniform in 0.05-1 (20% of all under 0.3), the rest in 1-2 calls/min
    assert 0.2 <= np.mean(rates < 1) <= 0.47 and 0.1 <= np.mean(rates < 0.3) <= 0.32


def test_drawn_counts_follow_the_expected_rate_and_growth(drawn500: tuple) -> None:
    sc, cs = drawn500
    quiet = [i for i, s in enumerate(sc.series) if s.first_minute == 0 and s.rate > 0.5]
    for i in quiet:
        m = np.arange(0, gen5.JUDGED_FROM, dtype=float)  # history: no incidents there
        lam = gen5.expected(sc, i, m, [])
        n = int((cs[i]["t"] < gen5.JUDGED_FROM).sum())
        first = (cs[i]["status"] == gen5.E429).sum()  # retries add up to RETRY_P per 429
        assert abs(n - lam.sum()) < 0.04 * lam.sum() + first, sc.series[i]
    grow = max(quiet, key=lambda i: sc.series[i].growth)
    weeks = [((cs[grow]["t"] >= w * gen5.WEEK) & (cs[grow]["t"] < (w + 1) * gen5.WEEK)).sum() for w in (0, 1)]
    assert weeks[1] / weeks[0] == pytest.approx(sc.series[grow].growth, abs=0.04)


def test_rate_incidents_raise_their_share_to_the_labelled_probability(drawn500: tuple) -> None:
    sc, cs = drawn500
    checks = {
        "errors_5xx": lambda c: c["status"] == gen5.E5XX,
        "errors_429": lambda c: c["status"] == gen5.E429,
        "truncation": lambda c: c["cut"][c["status"] == gen5.OK],
        "empty_output": lambda c: (c["out_tok"] == 0)[(c["status"] == gen5.OK) & ~c["cut"]],
    }
    checked: list[str] = []
    for scenario in (sc, gen5.build(501), gen5.build(502)):
        drawn = cs if scenario is sc else gen5.all_calls(scenario)
        for inc in scenario.incidents:
            if inc.kind not in checks:
                continue
            events = np.concatenate([checks[inc.kind](_in(drawn[j], inc.start, inc.end)) for j in inc.series])
            if len(events) >= 30:
                checked.append(inc.kind)
                spread = 3 * np.sqrt(inc.factor * (1 - inc.factor) / len(events)) + 0.02
                assert abs(events.mean() - inc.factor) < spread, (scenario.seed, inc)
    assert set(checked) == set(checks) and len(checked) >= 12


def test_volume_latency_ttft_and_permanent_shifts_move_their_metric(drawn500: tuple) -> None:
    sc, cs = drawn500
    for inc in sc.incidents:
        i = inc.series[0]
        during, before = _in(cs[i], inc.start, inc.end), _in(cs[i], inc.start - 1440, inc.end - 1440)
        ok_d, ok_b = during["status"] == gen5.OK, before["status"] == gen5.OK
        if inc.kind == "volume_spike" and len(before["t"]) > 50:
            assert len(during["t"]) > len(before["t"]) * (1 + (inc.factor - 1) / 3)
        if inc.kind == "volume_drop" and len(before["t"]) > 50:
            assert len(during["t"]) < len(before["t"]) * (inc.factor + (1 - inc.factor) * 2 / 3)
        if inc.kind == "latency" and ok_d.sum() > 30 and inc.factor > 2:
            assert np.median(during["dur_ms"][ok_d]) > 1.5 * np.median(before["dur_ms"][ok_b])
        if inc.kind == "tokens_shift" and inc.factor > 1.5:
            after = _in(cs[i], inc.start, gen5.MINUTES)
            earlier = _in(cs[i], inc.start - gen5.WEEK, inc.start)
            ratio = np.mean(after["out_tok"][after["status"] == gen5.OK]) / np.mean(
                earlier["out_tok"][earlier["status"] == gen5.OK]
            )
            assert ratio > 1 + (inc.factor - 1) / 2


def test_outliers_are_single_slow_calls_and_labelled_benign(drawn500: tuple) -> None:
    sc, cs = drawn500
    sc = gen5.build(500)
    gen5.outliers(sc, cs)
    labels = [b for b in sc.benign if b.kind == "outlier"]
    week = sum(int((c["outlier"] & (c["t"] >= gen5.JUDGED_FROM)).sum()) for c in cs)
    total = sum(len(c["t"]) for c in cs)
    assert len(labels) == week > 0
    assert sum(int(c["outlier"].sum()) for c in cs) / total == pytest.approx(gen5.OUTLIER_P, rel=0.5)
    for b in labels[:20]:
        c = cs[b.series[0]]
        at = c["outlier"] & (c["t"] >= b.start) & (c["t"] < b.end)
        assert at.sum() >= 1 and (c["dur_ms"][at] >= 60_000).all()


def test_the_migration_moves_a_series_whole_traffic_to_a_new_model(drawn500: tuple) -> None:
    sc, cs = drawn500
    old, new = (b for b in sc.benign if b.kind == "migration")
    assert old.start == new.start
    before_old = cs[old.series[0]]
    assert (before_old["t"] < old.start + 1).all()  # retries of the last minute may trail by seconds
    assert cs[new.series[0]]["t"].min() >= new.start
    assert sc.series[new.series[0]].service == sc.series[old.series[0]].service


def test_calls_of_an_empty_range_are_empty(drawn500: tuple) -> None:
    sc, _ = drawn500
    got = gen5.calls(sc, 0, 100, 100, gen5.wobble(sc, np.random.default_rng(1)), [], np.random.default_rng(2))
    assert all(len(v) == 0 for v in got.values())


def test_spans_written_to_otel_traces_become_the_drawn_calls(empty_store: ChdbClient, drawn500: tuple) -> None:
    sc, cs = drawn500
    apply_migrations(client_runner(empty_store), ttl_days=3650)  # fixed 2026-09 dates: keep them past any TTL
    inc = _first(sc, "errors_5xx")
    lo, hi = inc.start - 60, inc.end + 60
    written = gen5.insert(empty_store, sc, cs, lo, hi)
    want = sum(len(_in(c, lo, hi)["t"]) for c in cs)
    assert written == want > 0
    s = sc.series[inc.series[0]]
    got = empty_store.query(
        "SELECT count(), countIf(IsError), countIf(FinishReason = 'length'), countIf(NOT IsError AND OutputTokens = 0),"
        " countIf(IsStream), countIf(TtftUs > 0), round(sum(CostUsd), 6), sum(OutputTokens), any(Provider)"
        " FROM llm_calls WHERE ServiceName = {s:String} AND RequestModel = {m:String}",
        parameters={"s": s.service, "m": s.model},
    ).result_rows[0]
    c = _in(cs[inc.series[0]], lo, hi)
    ok = c["status"] == gen5.OK
    assert got[:6] == (
        len(c["t"]), int((~ok).sum()), int(c["cut"].sum()), int((ok & (c["out_tok"] == 0)).sum()),
        int(c["stream"].sum()), int((ok & c["stream"]).sum()),
    )  # fmt: skip
    assert got[6] == pytest.approx(float(np.nansum(c["cost"])), rel=1e-4)
    assert (got[7], got[8]) == (int(c["out_tok"].sum()), s.provider)
    assert empty_store.query("SELECT count() FROM llm_calls").result_rows[0][0] == written


def test_effect_sizing_tells_a_large_incident_from_no_change() -> None:
    import detection_v5 as bench

    sc = gen5.build(500)
    i = max(range(len(sc.series)), key=lambda j: sc.series[j].rate if sc.series[j].first_minute == 0 else 0)
    start = gen5.JUDGED_FROM + 2 * 1440 + 600
    big = gen5.Incident("errors_5xx", start, start + 60, (i,), 0.5)
    none = gen5.Incident("latency", start, start + 60, (i,), 1.0)
    sc.incidents = [big]
    size, extra = bench.effect(sc, big)
    assert size > 10 and extra > 50
    sc.incidents = [none]
    assert bench.effect(sc, none)[0] < 1

"""The v8 held-out generator (benchmarks/detection_scenarios_v8.py) writes what it labels.

``benchmarks/detection_v8.py`` scores the detector against these labels, so they are checked
where the detector would see them: in the calls drawn with and without each incident, in the
benign changes' traffic, and in the ``llm_calls`` rows the real views derive from the spans.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v8 as gen

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

pytest_plugins = ["tests.conftest_store"]
SEED = 804


@pytest.fixture(scope="module")
def sc() -> gen.Scenario:
    return gen.build(SEED)


def _draw(sc: gen.Scenario, inc: gen.Incident, on: bool, span: int = 120) -> dict[str, np.ndarray]:
    lo, hi = inc.start, min(inc.end, inc.start + span)
    others = [o for o in sc.incidents if o is not inc]
    parts = [gen.calls(sc, i, lo, hi, sc.noise, [*others, inc] if on else others) for i in inc.series]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_a_seed_gives_the_same_scenario_and_calls_and_another_seed_does_not(sc: gen.Scenario) -> None:
    again = gen.build(SEED)
    assert again.series == sc.series and again.incidents == sc.incidents and again.benign == sc.benign
    a, b = (gen.calls(x, 2, 4000, 4060, x.noise, x.incidents) for x in (sc, again))
    assert len(a["t"]) > 500  # the busy series: 30+ calls a minute
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert gen.build(SEED + 1).incidents != sc.incidents


def test_incidents_follow_the_plan_inside_the_judged_week(sc: gen.Scenario) -> None:
    assert {k: sum(i.kind == k for i in sc.incidents) for k in gen.KINDS} == gen.PLAN
    assert len(sc.incidents) == 30
    for inc in sc.incidents:
        assert gen.JUDGED_FROM <= inc.start < inc.end <= gen.MINUTES
        assert (inc.end == gen.MINUTES) is (inc.kind in gen.PERMANENT)
        for i in inc.series:
            assert sc.series[i].first_minute + 720 <= inc.start
    young = sc.series[gen._YOUNG].first_minute
    on_young = [i.start - young for i in sc.incidents if gen._YOUNG in i.series]
    assert len(on_young) == 3 and all(720 <= m <= 1440 + 240 for m in on_young)
    providers = [i for i in sc.incidents if i.kind == "provider_overload"]
    assert {sc.series[i.series[0]].provider for i in providers} == {"anthropic", "openai"}
    assert all({sc.series[s].provider for s in i.series} == {sc.series[i.series[0]].provider} for i in providers)
    assert all(len(i.series) >= 3 for i in providers)


def test_benign_changes_are_labelled_inside_the_window_and_change_the_traffic(sc: gen.Scenario) -> None:
    kinds = {b.kind for b in sc.benign}
    assert kinds == set(gen.BENIGN_KINDS)
    for b in sc.benign:
        assert 0 <= b.start < b.end and b.start < gen.MINUTES
    # the backfill: x10+ calls on summarize at night
    fill = next(b for b in sc.benign if b.kind == "backfill")
    night = gen.calls(sc, fill.series[0], fill.start, fill.end, sc.noise, [])
    before = gen.calls(sc, fill.series[0], fill.start - 1440, fill.end - 1440, sc.noise, [])
    assert len(night["t"]) > 10 * max(len(before["t"]), 1)
    assert 1 * 60 <= fill.start % 1440 < 4 * 60 + 1
    # the A/B ramp: gpt-4o gives about half its calls to gpt-4.1 and keeps doing so
    ramp = next(b for b in sc.benign if b.kind == "ab_ramp")
    old, new = ramp.series
    unplanned = dataclasses.replace(sc, benign=[b for b in sc.benign if b is not ramp])
    rate = lambda x, i: len(gen.calls(x, i, ramp.end, ramp.end + 1440, x.noise, [])["t"])  # noqa: E731
    assert 0.4 < rate(sc, old) / rate(unplanned, old) < 0.6
    assert rate(sc, new) - rate(unplanned, new) == pytest.approx(rate(unplanned, old) - rate(sc, old), rel=0.1)
    # weekends: B2B series at a quarter of the weekday
    week = next(b for b in sc.benign if b.kind == "weekend")
    i = week.series[0]
    assert sc.shapes[i][4 * 1440 : 5 * 1440].sum() < 0.4 * sc.shapes[i][2 * 1440 : 3 * 1440].sum()
    # DST: the us share peaks an hour earlier in UTC after the change
    us_hour = lambda day: np.argmax(sc.shapes[6][day * 1440 : (day + 1) * 1440]) // 60  # noqa: E731  (80 % us)
    assert us_hour(2) - us_hour(6) == 1
    # two releases at the minute of an error burst on the same series
    bursts = {(i.start, i.series[0]) for i in sc.incidents if i.kind == "error_burst"}
    assert sum((b.start, b.series[0]) in bursts for b in sc.benign if b.kind == "release") == 2


def _failed(c: dict[str, np.ndarray]) -> float:
    return float((c["status"] != gen.OK).sum())


def _ok_p95(key: str) -> Callable[[dict[str, np.ndarray]], float]:
    def stat(c: dict[str, np.ndarray]) -> float:
        v = c[key][(c["status"] == gen.OK) & ~np.isnan(c[key])]
        return float(np.percentile(v, 95)) if len(v) else 0.0

    return stat


def _ok_mean(key: str) -> Callable[[dict[str, np.ndarray]], float]:
    return lambda c: float(c[key][c["status"] == gen.OK].mean()) if (c["status"] == gen.OK).any() else 0.0


_RAISES: dict[str, Callable[[dict[str, np.ndarray]], float]] = {
    **{k: _failed for k in gen.ERROR_KINDS},
    "latency_spike": _ok_p95("dur_ms"),
    "ttft_creep": _ok_p95("ttft_ms"),
    "volume_drop": lambda c: -float(len(c["t"])),
    "cache_miss": _ok_mean("cost"),
    "output_blowup": _ok_mean("out_tok"),
}


@pytest.mark.parametrize("kind", gen.KINDS)
def test_each_incident_shows_in_the_calls_drawn_with_it(sc: gen.Scenario, kind: str) -> None:
    stat = _RAISES[kind]
    span = 600 if kind == "ttft_creep" else 120
    shifts = [stat(_draw(sc, i, True, span)) - stat(_draw(sc, i, False, span)) for i in sc.incidents if i.kind == kind]
    assert min(shifts) >= 0 and sum(shifts) > 0


def test_a_stream_outage_fails_only_streams_and_a_cache_miss_leaves_tokens_alone(sc: gen.Scenario) -> None:
    inc = next(i for i in sc.incidents if i.kind == "stream_outage")
    c = _draw(sc, inc, True)
    assert (c["status"][~c["stream"]] == gen.OK).mean() > 0.95
    assert (c["status"][c["stream"]] != gen.OK).mean() >= 0.3
    miss = next(i for i in sc.incidents if i.kind == "cache_miss")
    on, off = _draw(sc, miss, True), _draw(sc, miss, False)
    assert np.array_equal(on["in_tok"], off["in_tok"]) and on["cached"].sum() < 0.5 * off["cached"].sum()


@pytest.fixture(scope="module")
def stored(chdb_path: Path, sc: gen.Scenario) -> Iterator[tuple[ChdbClient, dict[str, tuple[gen.Incident, dict]]]]:
    """An hour of three incidents' series, written as spans and read back through ``llm_calls``
    (the overload is Anthropic's, so its 529s have their own error type)."""
    admin = ChdbClient.open(str(chdb_path))
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin.command(f"CREATE DATABASE {database}")
    client = ChdbClient.open(str(chdb_path), database=database)
    apply_migrations(client_runner(client), ttl_days=3650)  # March dates: keep them past any TTL
    drawn, rows = {}, []
    for kind in ("provider_overload", "cache_miss"):
        inc = next(i for i in sc.incidents if i.kind == kind and sc.series[i.series[0]].provider == "anthropic")
        i = inc.series[0]
        c = gen.calls(sc, i, inc.start, inc.start + 60, sc.noise, sc.incidents)
        drawn[kind] = (inc, c)
        ids = np.random.default_rng([SEED, i]).integers(1, 2**63, (len(c["t"]), 2))
        rows += gen._rows(sc, i, c, ids)[1]
    gen.insert_rows(client, rows)
    try:
        yield client, drawn
    finally:
        client.close()
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


@pytest.mark.parametrize(
    ("kind", "column", "expected"),
    [
        ("provider_overload", "countIf(IsError AND ErrorType IN ('anthropic.OverloadedError', "
         "'openai.InternalServerError'))", lambda c: int(((c["status"] != gen.OK) & (c["err"] == 1)).sum())),
        ("cache_miss", "sum(CacheReadTokens)", lambda c: int(c["cached"].sum())),
        ("cache_miss", "round(sum(CostUsd), 4)", lambda c: round(float(c["cost"].sum()), 4)),
        ("provider_overload", "countIf(IsStream AND TtftUs > 0)",
         lambda c: int((c["stream"] & (c["status"] == gen.OK)).sum())),
        ("provider_overload", "count()", lambda c: len(c["t"])),
    ],
)  # fmt: skip
def test_the_stored_calls_carry_each_label(stored, sc: gen.Scenario, kind: str, column: str, expected) -> None:  # type: ignore[no-untyped-def]
    client, drawn = stored
    inc, c = drawn[kind]
    s = sc.series[inc.series[0]]
    got = client.command(
        f"SELECT {column} FROM llm_calls WHERE ServiceName = {{s:String}} AND RequestModel = {{m:String}} "
        "AND Timestamp >= {lo:DateTime64(3)} AND Timestamp < {hi:DateTime64(3)}",
        parameters={"s": s.service, "m": s.model, "lo": sc.at(inc.start), "hi": sc.at(inc.start + 60)},
    )
    assert float(got) == pytest.approx(expected(c), rel=1e-6, abs=1e-4)
    assert expected(c) > 0


def test_an_empty_window_has_no_calls_and_an_unknown_series_is_refused(sc: gen.Scenario) -> None:
    assert len(gen.calls(sc, 0, 5000, 5000, sc.noise, sc.incidents)["t"]) == 0
    assert len(gen.calls(sc, gen._YOUNG, 0, 1440, sc.noise, sc.incidents)["t"]) == 0  # before its launch
    with pytest.raises(IndexError):
        gen.calls(sc, len(sc.series), 5000, 5010, sc.noise, sc.incidents)

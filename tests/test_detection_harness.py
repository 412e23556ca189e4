"""The shared judge of the held-out detection benchmarks (benchmarks/detection_harness.py).

Matching and eligibility decide every recall figure the benchmarks report, so their edges are
pinned here on a small hand-made scenario; the paired Monte Carlo is checked on a toy generator
whose effect is known in closed form.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_harness as h

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Series:
    attrs: dict[str, str]
    rate: float = 10.0
    first_minute: int = 0
    last_minute: int = 10_000


@dataclass(frozen=True)
class _Incident:
    kind: str
    start: int
    end: int
    series: tuple[int, ...]
    factor: float = 3.0
    scope: str = "series"
    spill: tuple[int, ...] = ()


@dataclass
class _Scenario:
    series: list[_Series]
    incidents: list[_Incident] = field(default_factory=list)
    benign: list[Any] = field(default_factory=list)
    seed: int = 1

    def minute(self, t: datetime) -> float:
        return (t - T0).total_seconds() / 60


@dataclass
class _Episode:
    metric: str
    direction: str
    start: datetime
    end: datetime
    series: dict[str, str]
    level: str = "service,model"


FAMILIES = {"errors": {("error_rate", "up")}, "shift": {("tokens_per_call", "up")}}
SC = _Scenario([_Series({"service": "a", "model": "m1"}), _Series({"service": "b", "model": "m1"})])


def _ep(metric: str, lo: float, hi: float, series: dict[str, str] | None = None) -> _Episode:
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    return _Episode(metric, "up", at(lo), at(hi), {"service": "a"} if series is None else series)


def test_an_episode_finds_an_incident_of_its_family_time_and_series() -> None:
    inc = _Incident("errors", 1000, 1030, (0,))
    assert h.finds(_ep("error_rate", 1010, 1020), SC, inc, FAMILIES, ())
    assert not h.finds(_ep("tokens_per_call", 1010, 1020), SC, inc, FAMILIES, ())
    assert not h.finds(_ep("error_rate", 1010, 1020, {"service": "b"}), SC, inc, FAMILIES, ())


def test_the_time_window_is_five_minutes_before_to_thirty_after_and_six_hours_for_permanent_shifts() -> None:
    inc = _Incident("errors", 1000, 1030, (0,))
    assert h.finds(_ep("error_rate", 990, 995), SC, inc, FAMILIES, ())
    assert not h.finds(_ep("error_rate", 980, 994), SC, inc, FAMILIES, ())
    assert h.finds(_ep("error_rate", 1060, 1070), SC, inc, FAMILIES, ())
    assert not h.finds(_ep("error_rate", 1061, 1070), SC, inc, FAMILIES, ())
    shift = _Incident("shift", 1000, 10_000, (0,))
    assert h.finds(_ep("tokens_per_call", 1360, 1400), SC, shift, FAMILIES, ("shift",))
    assert not h.finds(_ep("tokens_per_call", 1361, 1400), SC, shift, FAMILIES, ("shift",))


def test_an_app_wide_episode_fits_every_series_and_a_model_level_one_every_user_of_the_model() -> None:
    inc = _Incident("errors", 1000, 1030, (1,))
    assert h.finds(_ep("error_rate", 1000, 1010, {}), SC, inc, FAMILIES, ())
    assert h.finds(_ep("error_rate", 1000, 1010, {"model": "m1"}), SC, inc, FAMILIES, ())


def test_a_fallback_series_is_explained_by_its_primarys_outage_only_through_spill() -> None:
    bench = types.SimpleNamespace(explains=FAMILIES, gen=types.SimpleNamespace(PERMANENT=()))
    on_b = _ep("error_rate", 1000, 1010, {"service": "b"})
    sc = _Scenario(SC.series, [_Incident("errors", 1000, 1030, (0,))])
    assert not h.explained(bench, on_b, sc)  # type: ignore[arg-type]
    sc = _Scenario(SC.series, [_Incident("errors", 1000, 1030, (0,), spill=(1,))])
    assert h.explained(bench, on_b, sc)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"minutes": 10, "size": 3.0, "extra": 10.0, "kind": "errors"}, True),
        ({"minutes": 9, "size": 30.0, "extra": 100.0, "kind": "errors"}, False),
        ({"minutes": 60, "size": 2.9, "extra": 100.0, "kind": "errors"}, False),
        ({"minutes": 60, "size": 8.0, "extra": 9.9, "kind": "errors"}, False),
        ({"minutes": 60, "size": 3.0, "extra": 0.0, "kind": "shift"}, True),
    ],
)
def test_eligible_is_ten_minutes_three_sd_and_ten_extra_events_for_counts(row: dict, expected: bool) -> None:
    bench = types.SimpleNamespace(counted=("errors",))
    assert h.eligible(bench, row) is expected  # type: ignore[arg-type]


def _toy_calls(sc: Any, i: int, lo: int, hi: int, noise: Any, incidents: list, rng: np.random.Generator) -> dict:
    """10 calls a minute, 1% failing, 30% during an incident."""
    t = np.repeat(np.arange(lo, hi, dtype=float), 10) + rng.random((hi - lo) * 10)
    p = np.full(len(t), 0.01)
    for inc in incidents:
        p[(t >= inc.start) & (t < inc.end)] = 0.3
    return {"t": t, "failed": rng.random(len(t)) < p}


def test_the_paired_monte_carlo_measures_a_known_effect() -> None:
    gen = types.SimpleNamespace(calls=_toy_calls, PERMANENT=())
    bench = h.Bench(
        gen=gen, family=FAMILIES, explains=FAMILIES, benign_kinds=(), counted=("errors",),  # type: ignore[arg-type]
        stat=lambda kind, c: float(c["failed"].sum()), noise=lambda sc, rng: None, label=str,
    )  # fmt: skip
    inc = _Incident("errors", 100, 120, (0,))
    size, extra = h.effect(bench, _Scenario(SC.series, [inc]), inc)
    assert extra == pytest.approx(200 * 0.29, rel=0.1)  # 200 calls, 29 points more failing
    assert size == pytest.approx(extra / np.sqrt(200 * 0.01 * 0.99), rel=0.35)


def _toy_shift(sc: Any, i: int, lo: int, hi: int, noise: Any, incidents: list, rng: np.random.Generator) -> dict:
    """One normal reading per window, 4 higher during an incident."""
    shift = 4.0 if any(inc.start < hi and inc.end > lo for inc in incidents) else 0.0
    return {"t": np.array([float(lo)]), "v": np.array([rng.normal() + shift])}


def test_the_ceiling_oracle_crosses_a_threshold_as_often_as_the_effect_over_the_noise_says() -> None:
    """benchmarks/detection_ceiling.py: sized with the harness's own draws (the first ``reps``);
    an effect of 4 sd crosses z = 4 in about half the replicates, z = 3 in ~84%, z = 5 in ~16%."""
    import detection_ceiling as ceiling

    gen = types.SimpleNamespace(calls=_toy_shift, PERMANENT=())
    bench = h.Bench(
        gen=gen, family=FAMILIES, explains=FAMILIES, benign_kinds=(), counted=(),  # type: ignore[arg-type]
        stat=lambda kind, c: float(c["v"][0]), noise=lambda sc, rng: None, label=str, reps=40,
    )  # fmt: skip
    inc = _Incident("shift", 100, 130, (0,))
    sc = _Scenario(SC.series, [inc])
    r = ceiling.oracle(bench, sc, inc, 2000)
    assert r["size"] == h.effect(bench, sc, inc)[0]
    assert r["eligible"]
    assert r["crossed"][3.0] == pytest.approx(0.84, abs=0.05)
    assert r["crossed"][4.0] == pytest.approx(0.5, abs=0.05)
    assert r["crossed"][5.0] == pytest.approx(0.16, abs=0.05)
    assert ceiling.DIRECTIONS * ceiling.WINDOWS_PER_WEEK * ceiling.tail(4.0) == pytest.approx(0.51, abs=0.01)


def test_seed_ranges_and_lists_parse() -> None:
    assert h.seeds("600-602") == [600, 601, 602]
    assert h.seeds("600,605") == [600, 605]
    with pytest.raises(ValueError):
        h.seeds("six")


def test_the_watch_report_counts_incidents_found_within_ten_minutes_and_not_found_as_beyond(capsys) -> None:  # type: ignore[no-untyped-def]
    rows = [{"kind": "errors", "ttd": 5, "cpu": 0.1}, {"kind": "errors", "ttd": 10, "cpu": 0.2},
            {"kind": "drop", "ttd": 15, "cpu": 0.3}, {"kind": "drop", "ttd": None, "cpu": 0.4}]  # fmt: skip
    h.watch_report(rows, steps=12)
    out = capsys.readouterr().out
    assert "found within 60 min 3;" in out and "within 10 min 2/4 = 0.50" in out
    assert "drop [15, inf]; errors [5, 10]" in out and "median 15 min, p90 inf min" in out  # upper ranks: never below


def test_a_kept_store_is_filled_once_and_judged_again_as_it_was(tmp_path: Path) -> None:
    """``--stores``: the second run reuses the first run's store instead of inserting anew."""
    fills: list[int] = []

    def insert(client: Any, sc: Any) -> int:
        fills.append(sc.seed)
        client.command("CREATE TABLE kept (x UInt8) ENGINE = MergeTree ORDER BY x")
        client.command("INSERT INTO kept VALUES (7)")
        return 1

    gen = types.SimpleNamespace(insert=insert, PERMANENT=())
    bench = h.Bench(
        gen=gen, family=FAMILIES, explains=FAMILIES, benign_kinds=(), counted=(),  # type: ignore[arg-type]
        stat=lambda kind, c: 0.0, noise=lambda sc, rng: None, label=str,
    )  # fmt: skip
    sc = types.SimpleNamespace(seed=42)
    for _ in range(2):
        with h.store(bench, sc, keep=str(tmp_path)) as (client, _):
            assert client.query("SELECT x FROM kept").result_rows == [(7,)]
    assert fills == [42]
    with h.store(bench, sc) as (client, _):  # without keep: a fresh store, filled again
        assert fills == [42, 42]

"""The v7 held-out generator (benchmarks/detection_scenarios_v7.py) writes what it labels.

Every recall and false-episode figure of ``benchmarks/detection_v7.py`` trusts these labels, so
they are checked where the detector would see them: in the calls drawn with and without each
incident, and in the ``llm_calls`` rows the real views derive from the spans it writes. Also:
a seed is deterministic, and the rates and seasonality are what the docstring says.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v7 as gen

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

pytest_plugins = ["tests.conftest_store"]
SEED = 703


@pytest.fixture(scope="module")
def sc() -> gen.Scenario:
    return gen.build(SEED)


def _window(sc: gen.Scenario, inc: gen.Incident) -> tuple[int, int]:
    return inc.start, min(inc.end, inc.start + 60)


def _draw(sc: gen.Scenario, inc: gen.Incident, on: bool) -> dict[str, np.ndarray]:
    lo, hi = _window(sc, inc)
    others = [o for o in sc.incidents if o is not inc]
    parts = [gen.calls(sc, i, lo, hi, sc.noise, [*others, inc] if on else others) for i in inc.series]  # type: ignore[arg-type]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_a_seed_gives_the_same_scenario_and_calls_and_another_seed_does_not(sc: gen.Scenario) -> None:
    again = gen.build(SEED)
    assert again.series == sc.series and again.incidents == sc.incidents and again.benign == sc.benign
    a, b = (gen.calls(x, 0, 3000, 3100, x.noise, x.incidents) for x in (sc, again))  # type: ignore[arg-type]
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert gen.build(SEED + 1).incidents != sc.incidents


def test_incidents_follow_the_plan_in_the_judged_week_on_series_with_twelve_hours_of_history(sc: gen.Scenario) -> None:
    counts = {k: sum(i.kind == k for i in sc.incidents) for k in gen.KINDS}
    assert counts == gen._PLAN
    for inc in sc.incidents:
        assert gen.JUDGED_FROM <= inc.start < inc.end <= gen.MINUTES
        assert (inc.end == gen.MINUTES) is (inc.kind in gen.PERMANENT)
        assert inc.kind in gen.PERMANENT or 5 <= inc.end - inc.start <= 480
        for i in inc.series:
            assert sc.series[i].first_minute + 720 <= inc.start and inc.end <= sc.series[i].last_minute
    young = [i for i in sc.incidents if any(0 < sc.series[s].first_minute > i.start - 2880 for s in i.series)]
    assert young, "some incidents sit on series younger than two days"


def test_rates_and_seasonality_are_as_documented(sc: gen.Scenario) -> None:
    rate = {s.service + "/" + s.model: s.rate for s in sc.series}
    assert 0.05 <= rate["contract-review/mistral-large-latest"] <= 0.15
    assert 0.15 <= rate["code-review/claude-sonnet-4-5"] <= 0.6
    peak = max(float(g.shape.max()) for g in sc.groups.values())
    assert 8 <= peak <= 60  # the busiest minute of the busiest source (the hourly ETL job or the classifier)
    docs = sc.groups["docs-qa"].shape
    members = sc.groups["docs-qa"].members
    weekend = next(b for b in sc.benign if b.kind == "weekend" and b.series == members and b.start >= 2 * 1440)
    week_day = docs[weekend.start - 1440 * 2 : weekend.start - 1440].mean()  # the Thursday before, local
    assert 0.1 <= docs[weekend.start : weekend.start + 1440].mean() / week_day <= 0.3
    etl = sc.groups["etl-enrich"]
    runs = [b.start for b in sc.benign if b.kind == "batch_job" and b.series == etl.members]
    assert len(runs) >= gen.MINUTES // 60 - 1 and set(np.diff(runs)) == {60}  # a job every hour
    assert all(etl.shape[r : r + 10].min() > 50 * etl.shape[r - 15 : r - 5].max() for r in runs[1:])


def _failed(c: dict[str, np.ndarray]) -> float:
    return float((c["status"] != gen.OK).sum())


def _ok_mean(key: str) -> Callable[[dict[str, np.ndarray]], float]:
    return lambda c: float(np.nanmean(c[key][c["status"] == gen.OK])) if (c["status"] == gen.OK).any() else 0.0


# per kind, a statistic of the window's calls that the incident must raise
_RAISES: dict[str, Callable[[dict[str, np.ndarray]], float]] = {
    **{k: _failed for k in gen.ERROR_KINDS},
    **{k: _ok_mean("dur_ms") for k in gen.LATENCY_KINDS},
    "ttft_regression": _ok_mean("ttft_ms"),
    "truncation": lambda c: float(c["cut"].sum()),
    "content_filter": lambda c: float(c["empty"].sum()),
    "volume_drop": lambda c: -float(len(c["t"])),
    "runaway_loop": lambda c: float(len(c["t"])),
    "prompt_bloat": _ok_mean("in_tok"),
}


@pytest.mark.parametrize("kind", gen.KINDS)
def test_each_incident_shows_in_the_calls_drawn_with_it(sc: gen.Scenario, kind: str) -> None:
    stat = _RAISES[kind]
    shifts = [stat(_draw(sc, inc, True)) - stat(_draw(sc, inc, False)) for inc in sc.incidents if inc.kind == kind]
    assert min(shifts) >= 0 and sum(shifts) > 0


@pytest.fixture(scope="module")
def stored(chdb_path: Path, sc: gen.Scenario) -> Iterator[tuple[ChdbClient, dict[int, dict[str, np.ndarray]]]]:
    """One incident of each of four kinds, its window's spans written and read back through llm_calls."""
    admin = ChdbClient.open(str(chdb_path))
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin.command(f"CREATE DATABASE {database}")
    client = ChdbClient.open(str(chdb_path), database=database)
    apply_migrations(client_runner(client), ttl_days=3650)  # June dates: keep them past any TTL
    drawn, rows = {}, []
    rng = np.random.default_rng(0)
    for kind in ("rate_limit", "truncation", "content_filter", "volume_drop"):
        inc = next(i for i in sc.incidents if i.kind == kind)
        lo, hi = _window(sc, inc)
        c = gen.calls(sc, inc.series[0], lo, hi, sc.noise, sc.incidents)  # type: ignore[arg-type]
        drawn[id(inc)] = c
        rows += gen._rows(sc, inc.series[0], c, rng.integers(1, 2**63, (len(c["t"]), 2)), rng)[1]
    gen.insert_rows(client, rows)
    try:
        yield client, drawn
    finally:
        client.close()
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


def _count(client: ChdbClient, sc: gen.Scenario, inc: gen.Incident, where: str) -> int:
    s = sc.series[inc.series[0]]
    lo, hi = _window(sc, inc)
    return int(client.command(
        f"SELECT count() FROM llm_calls WHERE ServiceName = {{s:String}} AND RequestModel = {{m:String}} "
        f"AND Timestamp >= {{lo:DateTime64(3)}} AND Timestamp < {{hi:DateTime64(3)}} AND {where}",
        parameters={"s": s.service, "m": s.model, "lo": sc.at(lo), "hi": sc.at(hi)},
    ))  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "where", "label"),
    [
        ("rate_limit", "IsError AND ErrorType LIKE '%.RateLimitError'", lambda c: c["err"] == gen.E429),
        ("truncation", "FinishReason = 'length' AND NOT IsError", lambda c: c["cut"]),
        ("content_filter", "FinishReason = 'content_filter' AND OutputTokens = 0", lambda c: c["empty"]),
        ("volume_drop", "Release LIKE 'v2.%.4'", lambda c: c["release"] == 2),
    ],
)
def test_the_stored_calls_carry_each_label(stored, sc: gen.Scenario, kind: str, where: str, label) -> None:  # type: ignore[no-untyped-def]
    client, drawn = stored
    inc = next(i for i in sc.incidents if i.kind == kind)
    c = drawn[id(inc)]
    assert _count(client, sc, inc, "1") == len(c["t"])
    assert _count(client, sc, inc, where) == int(label(c).sum())


def test_a_failed_embeddings_call_aborts_its_rag_trace(sc: gen.Scenario) -> None:
    g = sc.groups["docs-qa"]
    got = gen._group_calls(sc, g, 3000, 4000, sc.noise, sc.incidents)  # type: ignore[arg-type]
    emb, rerank, old, new = (got[i] for i in g.members)
    ok_traces = set(emb["trace"][emb["status"] == gen.OK].tolist())
    assert set(rerank["trace"].tolist()) == ok_traces
    assert set(old["trace"].tolist()) | set(new["trace"].tolist()) == ok_traces
    assert (emb["out_tok"] == 0).all() and (rerank["out_tok"] == 0).all()


def test_an_empty_window_has_no_calls_and_an_unknown_series_is_refused(sc: gen.Scenario) -> None:
    assert len(gen.calls(sc, 0, 5000, 5000, sc.noise, sc.incidents)["t"]) == 0  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        gen.calls(sc, len(sc.series), 5000, 5010, sc.noise, sc.incidents)  # type: ignore[arg-type]

"""The v6 held-out generator (benchmarks/detection_scenarios_v6.py) writes what it labels.

The benchmark's verdicts are only as good as its labels: each test checks that an incident,
benign change or documented rate is really in the drawn calls or in the stored spans.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v6 as gen6

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

SEED = 600


@pytest.fixture(scope="module")
def sc() -> gen6.Scenario:
    return gen6.build(SEED)


def _index(sc: gen6.Scenario, service: str, model: str, env: str = "production") -> int:
    return next(i for i, s in enumerate(sc.series) if (s.service, s.model, s.environment) == (service, model, env))


def _draw(sc: gen6.Scenario, i: int, lo: int, hi: int, incidents: list[gen6.Incident], seed: int = 1) -> dict:
    noise = gen6.wobble(sc, np.random.default_rng([seed, 1]))
    return gen6.calls(sc, i, lo, hi, noise, incidents, np.random.default_rng([seed, 2, i]))


def test_a_seed_gives_the_same_scenario_and_calls_every_time(sc: gen6.Scenario) -> None:
    again = gen6.build(SEED)
    assert again.incidents == sc.incidents and again.benign == sc.benign and again.series == sc.series
    a, b = _draw(sc, 3, 5000, 5600, sc.incidents), _draw(again, 3, 5000, 5600, again.incidents)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    other = gen6.build(SEED + 1)
    assert other.incidents != sc.incidents


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError):
        gen6.build(-1)


def test_every_kind_has_incidents_in_the_judged_week_on_live_series(sc: gen6.Scenario) -> None:
    assert {inc.kind for inc in sc.incidents} == set(gen6.KINDS)
    for inc in sc.incidents:
        assert gen6.HISTORY <= inc.start < inc.end <= gen6.MINUTES
        assert any(sc.series[i].first_minute <= inc.start for i in inc.series), inc


def test_an_error_incident_fails_calls_at_its_rate_and_retries_multiply_volume(sc: gen6.Scenario) -> None:
    i = _index(sc, "search-answers", "gpt-4.1-mini")
    lo, hi = 4 * 1440 + 13 * 60, 4 * 1440 + 14 * 60  # its local afternoon
    inc = gen6.Incident("errors", lo, hi, (i,), "series", 0.6)
    base, hit = _draw(sc, i, lo, hi, []), _draw(sc, i, lo, hi, [inc])
    primary = hit["attempt"] == 0
    n = int(primary.sum())
    assert n > 300
    assert abs((hit["status"][primary] != gen6.OK).mean() - 0.6) < 3 * (0.24 / n) ** 0.5
    failed = hit["status"] != gen6.OK
    assert (hit["status"][failed] == gen6.SERVER_ERROR).all()
    # one retry (search-answers retries once): about 1 + 0.6 attempts per call
    assert 1.5 < len(hit["t"]) / len(base["t"]) < 1.7
    assert (hit["attempt"] <= sc.series[i].retries).all()


def test_a_rate_limit_incident_fails_with_429s_only(sc: gen6.Scenario) -> None:
    i = _index(sc, "translate", "mistral-large-latest")
    inc = gen6.Incident("rate_limit", 6000, 6120, (i,), "series", 0.5)
    hit = _draw(sc, i, 6000, 6120, [inc])
    failed = hit["status"] != gen6.OK
    assert failed.sum() > 50 and (hit["status"][failed] == gen6.RATE_LIMITED).all()
    assert (hit["dur_ms"][failed] < 300).all()


def test_a_provider_outage_sends_the_failed_planner_calls_to_the_fallback(sc: gen6.Scenario) -> None:
    planner = _index(sc, "support-agent", "claude-sonnet-4-5")
    fallback = gen6.FALLBACK[planner]
    lo, hi = 4 * 1440 + 15 * 60, 4 * 1440 + 17 * 60  # its local morning (UTC-5)
    inc = gen6.Incident("provider_outage", lo, hi, (planner,), "provider", 0.9, "outage", (fallback,))
    base, hit = _draw(sc, fallback, lo, hi, []), _draw(sc, fallback, lo, hi, [inc])
    planner_calls = _draw(sc, planner, lo, hi, [])
    assert len(planner_calls["t"]) > 50
    assert 0.7 * len(planner_calls["t"]) < len(hit["t"]) - len(base["t"]) < 1.1 * len(planner_calls["t"])
    failed_planner = _draw(sc, planner, lo, hi, [inc])
    assert (failed_planner["attempt"] == 0).all()  # no retry on the failing provider: the fallback takes it


def test_a_cache_collapse_raises_cost_per_call_with_the_same_tokens(sc: gen6.Scenario) -> None:
    i = _index(sc, "search-answers", "gpt-4.1-mini")
    inc = gen6.Incident("cache_collapse", 6000, 6120, (i,), "series", 0.02)
    base, hit = _draw(sc, i, 6000, 6120, []), _draw(sc, i, 6000, 6120, [inc])
    assert np.array_equal(base["in_tok"], hit["in_tok"]) and np.array_equal(base["out_tok"], hit["out_tok"])
    ok = hit["status"] == gen6.OK
    assert hit["cached"][ok].mean() < 0.05 * hit["in_tok"][ok].mean() < base["cached"][ok].mean()
    assert hit["cost"][ok].mean() > 2 * base["cost"][ok].mean()


def test_latency_and_ttft_incidents_multiply_their_metric(sc: gen6.Scenario) -> None:
    i = _index(sc, "voice-concierge", "gemini-2.5-flash")
    lo, hi = 3 * 1440 + 6 * 60, 3 * 1440 + 8 * 60  # the voice app's local afternoon (UTC+9)
    for kind, key in (("latency", "dur_ms"), ("ttft", "ttft_ms")):
        inc = gen6.Incident(kind, lo, hi, (i,), "series", 3.0)
        base, hit = _draw(sc, i, lo, hi, []), _draw(sc, i, lo, hi, [inc])
        ok = (base["status"] == gen6.OK) & (hit["status"] == gen6.OK) & ~np.isnan(base["ttft_ms"])
        ratio = np.nanmedian(hit[key][ok]) / np.nanmedian(base[key][ok])
        assert 2.5 < ratio < 3.5, (kind, ratio)


def test_baseline_error_rates_span_a_tenth_of_a_percent_to_five_percent(sc: gen6.Scenario) -> None:
    rates = {}
    for name, model in (("translate", "mistral-large-latest"), ("finance-reports", "gpt-4.1-mini")):
        i = _index(sc, name, model)
        c = _draw(sc, i, 0, gen6.MINUTES, [])
        rates[name] = float((c["status"][c["attempt"] == 0] != gen6.OK).mean())
    assert 0.0003 < rates["translate"] < 0.003
    assert 0.035 < rates["finance-reports"] < 0.07


def test_day_night_ratios_reach_from_2x_to_50x_and_dst_moves_the_us_peak(sc: gen6.Scenario) -> None:
    t = np.arange(2 * 1440, 3 * 1440, dtype=float) + 0.5  # a Wednesday: weekdays in every time zone
    ratios = [float(gen6.profile(sc, s, t).max() / gen6.profile(sc, s, t).min()) for s in sc.series]
    assert min(ratios) == pytest.approx(2, rel=0.05) and 20 <= max(ratios) <= 50
    s = sc.series[_index(sc, "support-agent", "claude-sonnet-4-5")]
    assert s.dst and 5 * 1440 < sc.dst_minute < 7 * 1440
    friday, tuesday = (np.arange(d * 1440, (d + 1) * 1440, dtype=float) for d in (4, 8))
    peak_before = friday[np.argmax(gen6.profile(sc, s, friday))] % 1440
    peak_after = tuesday[np.argmax(gen6.profile(sc, s, tuesday))] % 1440
    assert peak_before - peak_after == pytest.approx(60, abs=1)  # local 14:00 is an hour earlier in UTC


def test_agent_tool_loops_come_as_traces_of_several_calls(sc: gen6.Scenario) -> None:
    i = _index(sc, "support-agent", "gpt-4.1-mini")
    c = _draw(sc, i, 6000, 6600, [])
    first = c["attempt"] == 0
    per_trace = np.bincount(c["trace"][first])
    per_trace = per_trace[per_trace > 0]
    assert abs(per_trace.mean() - sc.series[i].steps) < 0.4 and per_trace.max() >= 5


def test_labelled_benign_changes_are_in_the_traffic(sc: gen6.Scenario) -> None:
    kinds = {b.kind for b in sc.benign}
    assert {"load_test", "holiday", "dst", "growth", "release", "new_series", "migration"} <= kinds
    load = next(b for b in sc.benign if b.kind == "load_test")
    s = sc.series[load.series[0]]
    t = np.array([load.start + 1.0, load.start - 60.0])
    during, before = gen6.profile(sc, s, t)
    assert during / before > 5
    translate = _index(sc, "translate", "mistral-large-latest")
    rel = sc.series[translate].release_minute
    assert rel is not None
    a, b = _draw(sc, translate, rel - 600, rel, []), _draw(sc, translate, rel, rel + 600, [])
    assert 1.15 < np.median(b["out_tok"][b["status"] == 0]) / np.median(a["out_tok"][a["status"] == 0]) < 1.45


@pytest.fixture(scope="module")
def stored(sc: gen6.Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChdbClient, dict]]:
    """The spans of two small series (staging code review and finance reports) in a real store."""
    client = ChdbClient.open(str(tmp_path_factory.mktemp("v6")))
    apply_migrations(client_runner(client), ttl_days=3650)
    arrive, rows, _ = gen6.span_rows(sc)
    picked = [r for r in rows if r[7] in ("finance-reports", "code-review")]
    gen6.insert_rows(client, picked)
    drawn = gen6.all_calls(sc)
    try:
        yield client, {"rows": picked, "drawn": drawn, "arrive": arrive}
    finally:
        client.close()


def test_stored_llm_calls_match_the_drawn_calls(sc: gen6.Scenario, stored: tuple[ChdbClient, dict]) -> None:
    client, got = stored
    for name, model, env in (("finance-reports", "gpt-4.1-mini", "production"),
                             ("code-review", "claude-sonnet-4-5", "staging")):  # fmt: skip
        c = got["drawn"][_index(sc, name, model, env)]
        row = client.query(
            "SELECT count(), sum(IsError), sum(CacheReadTokens), sum(OutputTokens), any(Provider), "
            "sum(FinishReason = 'length') FROM llm_calls WHERE ServiceName = {s:String} AND Environment = {e:String}",
            parameters={"s": name, "e": env},
        ).result_rows[0]
        ok = c["status"] == gen6.OK
        assert row[0] == len(c["t"]) and row[1] == int((~ok).sum())
        assert row[2] == int(c["cached"][ok].sum()) and row[3] == int(c["out_tok"][ok].sum())
        assert row[4] == sc.series[_index(sc, name, model, env)].provider and row[5] == int(c["cut"].sum())


def test_spans_arrive_in_order_of_their_end(stored: tuple[ChdbClient, dict]) -> None:
    _, got = stored
    assert (np.diff(got["arrive"]) >= 0).all()

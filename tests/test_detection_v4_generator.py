"""The held-out v4 traffic generator (benchmarks/detection_scenarios_v4.py): its labels must be
true of the calls it draws and of the spans it writes, a seed must always give the same data,
and its rates must be the documented ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v4 as gen

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner

SEEDS = (400, 401, 402)


@pytest.fixture(scope="module")
def drawn() -> dict[int, tuple[gen.Scenario, dict[str, np.ndarray]]]:
    out = {}
    for seed in SEEDS:
        sc = gen.build(seed)
        out[seed] = (sc, gen.generate(sc))
    return out


def _of(cols: dict[str, np.ndarray], i: int, lo: float, hi: float) -> dict[str, np.ndarray]:
    keep = (cols["series"] == i) & (cols["t"] >= lo) & (cols["t"] < hi)
    return {k: v[keep] for k, v in cols.items()}


def test_a_seed_always_gives_the_same_scenario_and_calls() -> None:
    a, b, other = gen.build(407), gen.build(407), gen.build(408)
    assert a.incidents == b.incidents and a.benign == b.benign and a.end == b.end
    ca, cb = gen.generate(a), gen.generate(b)
    for name in ("t", "series", "status", "out_tok", "dur_ms", "attempt"):
        assert np.array_equal(ca[name], cb[name], equal_nan=True), name
    assert other.incidents != a.incidents


def test_every_incident_kind_scope_and_young_series_occur_over_the_reported_seeds() -> None:
    scenarios = [gen.build(seed) for seed in range(400, 410)]
    incidents = [inc for sc in scenarios for inc in sc.incidents]
    assert {inc.kind for inc in incidents} == set(gen.KINDS)
    assert {inc.scope for inc in incidents} == {"series", "service", "provider"}
    young = [
        inc
        for sc in scenarios
        for inc in sc.incidents
        if any(sc.series[i].first_minute > 0 and 12 * 60 <= inc.start - sc.series[i].first_minute <= 48 * 60
               for i in inc.series)
    ]  # fmt: skip
    assert len(young) >= 10
    durations = [inc.end - inc.start for inc in incidents if inc.kind not in gen.PERMANENT]
    assert min(durations) >= 5 and max(durations) <= 120
    for sc in scenarios:
        assert all(sc.judged_from <= inc.start and inc.end <= gen.MINUTES for inc in sc.incidents)


def test_rate_incidents_raise_their_rate_to_the_labelled_share(drawn: dict) -> None:
    checked = 0
    for sc, cols in drawn.values():
        for inc in sc.incidents:
            if inc.kind not in gen.RATE_KINDS or inc.factor < 0.15:
                continue
            for i in inc.series:
                c = _of(cols, i, inc.start, inc.end)
                first = c["attempt"] == 0
                ok = first & (c["status"] == gen.OK)
                share = {
                    "errors_429": (c["status"][first] == gen.RATE_LIMITED).mean() if first.sum() else 0,
                    "errors_5xx": (c["status"][first] == gen.SERVER_ERROR).mean() if first.sum() else 0,
                    "truncation": c["cut"][ok].mean() if ok.sum() else 0,
                    "empty_output": (c["out_tok"][ok] == 0).mean() if ok.sum() else 0,
                }[inc.kind]
                n = first.sum() if inc.kind.startswith("errors") else ok.sum()
                if n >= 40:
                    sd = np.sqrt(inc.factor * (1 - inc.factor) / n)
                    assert share > inc.factor - 4 * sd - 0.02, (inc, share, n)
                    checked += 1
    assert checked >= 5


def test_volume_incidents_scale_the_calls_they_label(drawn: dict) -> None:
    checked = 0
    for sc, cols in drawn.values():
        for inc in sc.incidents:
            if inc.kind not in gen.VOLUME_KINDS:
                continue
            for i in inc.series:
                expected = gen.expected_per_minute(sc, i)[inc.start : inc.end].sum()
                if expected < 100:
                    continue
                got = (_of(cols, i, inc.start, inc.end)["attempt"] == 0).sum()
                ratio = got / expected
                assert (ratio < (inc.factor + 1) / 2) if inc.kind == "volume_drop" else (ratio > (inc.factor + 1) / 2)
                checked += 1
    assert checked >= 3


def test_latency_ttft_token_and_cost_incidents_move_their_metric(drawn: dict) -> None:
    checked = 0
    for sc, cols in drawn.values():
        for inc in sc.incidents:
            if inc.kind not in ("latency", "ttft", "tokens_shift", "cost") or inc.factor < 1.5:
                continue
            i = inc.series[0]
            during, before = (
                _of(cols, i, inc.start, min(inc.end, inc.start + 120)),
                _of(cols, i, inc.start - 1440, inc.start),
            )
            metric = {"latency": "dur_ms", "ttft": "ttft_ms", "tokens_shift": "out_tok", "cost": "cost"}[inc.kind]
            a = during[metric][(during["status"] == gen.OK) & ~np.isnan(during[metric].astype(float))]
            b = before[metric][(before["status"] == gen.OK) & ~np.isnan(before[metric].astype(float))]
            if (
                len(a) < 30
                or len(b) < 30
                or any(
                    o is not inc and i in o.series and o.start < inc.end and inc.start - 1440 < o.end
                    for o in sc.incidents
                )
            ):
                continue
            assert np.median(a) > 1.2 * np.median(b), (inc, np.median(a), np.median(b))
            checked += 1
    assert checked >= 3


def test_series_live_only_between_their_first_and_last_minute(drawn: dict) -> None:
    for sc, cols in drawn.values():
        migrated = [s for s in sc.series if s.last_minute < gen.MINUTES]
        assert len(migrated) == 1
        for i, s in enumerate(sc.series):
            t = cols["t"][(cols["series"] == i) & (cols["attempt"] == 0)]
            assert t.min() >= s.first_minute and t.max() < s.last_minute
        assert any(b.kind == "migration" for b in sc.benign)


def test_rates_span_the_documented_range_and_cron_bursts_fire_at_00_and_30(drawn: dict) -> None:
    for sc, cols in drawn.values():
        for i, s in enumerate(sc.series):
            assert 0.3 <= s.rate <= 50
            if s.service.shape == "batch":
                t = cols["t"][(cols["series"] == i) & (cols["attempt"] == 0)]
                in_burst = (np.floor(t) % 30) < s.service.burst_len
                assert in_burst.mean() > 0.7
        tzs = {s.service.tz for s in sc.series}
        assert len(tzs) >= 2


def test_the_labelled_holiday_is_a_quiet_day_in_its_region(drawn: dict) -> None:
    for sc, cols in drawn.values():
        (day,) = [b for b in sc.benign if b.kind == "holiday"]
        calls = sum((_of(cols, i, day.start, day.end)["attempt"] == 0).sum() for i in day.series)
        week_before = sum(
            (_of(cols, i, day.start - 7 * 1440, day.end - 7 * 1440)["attempt"] == 0).sum() for i in day.series
        )
        day_before = sum((_of(cols, i, day.start - 1440, day.start)["attempt"] == 0).sum() for i in day.series)
        assert calls < 0.45 * max(week_before, day_before), (calls, week_before, day_before)


def test_every_429_retry_follows_a_429_of_the_same_request(drawn: dict) -> None:
    for _, cols in drawn.values():
        key = cols["series"] * 10_000_000 + cols["request"]
        retries = cols["attempt"] > 0
        assert retries.any()
        prior = {
            (k, a) for k, a, st in zip(key, cols["attempt"], cols["status"], strict=True) if st == gen.RATE_LIMITED
        }
        assert all((k, a - 1) in prior for k, a in zip(key[retries], cols["attempt"][retries], strict=True))
        assert cols["attempt"].max() <= gen.RETRIES


def test_prompt_releases_change_tokens_by_their_factor_and_plain_releases_do_not(drawn: dict) -> None:
    checked = 0
    for sc, cols in drawn.values():
        for i, s in enumerate(sc.series):
            for at, factor in s.releases:
                before, after = _of(cols, i, at - 1440, at), _of(cols, i, at, at + 1440)
                a = after["out_tok"][(after["status"] == gen.OK) & ~after["cut"] & (after["out_tok"] > 0)]
                b = before["out_tok"][(before["status"] == gen.OK) & ~before["cut"] & (before["out_tok"] > 0)]
                noisy = any(
                    i in o.series
                    and o.kind in ("tokens_shift", "truncation", "empty_output")
                    and o.start < at + 1440
                    and at - 1440 < o.end
                    for o in sc.incidents
                )
                if len(a) < 200 or len(b) < 200 or noisy or len(s.releases) > 1:
                    continue
                assert after["release"].min() > before["release"].max()
                assert np.median(a) / np.median(b) == pytest.approx(factor, rel=0.15)
                checked += 1
    assert checked >= 2


def test_spans_written_to_otel_traces_become_the_drawn_calls(empty_store: ChdbClient) -> None:
    apply_migrations(client_runner(empty_store), ttl_days=3650)  # the generator's dates are fixed
    sc = gen.build(403)
    cols = gen.generate(sc)
    keep = cols["t"] < 6 * 60  # six hours: every series alive then, a few thousand calls
    part = {k: v[keep] for k, v in cols.items()}
    assert gen.insert(empty_store, sc, part) == int(keep.sum())
    rows = empty_store.query(
        "SELECT ServiceName, RequestModel, Provider, count(), sum(IsError), sum(IsStream), "
        "countIf(TtftUs IS NOT NULL), sum(OutputTokens), "
        "countIf(FinishReason IN ('length', 'max_tokens', 'MAX_TOKENS')), "
        "arraySort(groupArrayIf(ErrorType, IsError = 1)) FROM llm_calls GROUP BY ALL"
    ).result_rows
    got = {(r[0], r[1]): tuple(r[2:]) for r in rows}
    for i, s in enumerate(sc.series):
        c = {k: v[part["series"] == i] for k, v in part.items()}
        if not len(c["t"]):
            continue
        ok = c["status"] == gen.OK
        errors = sorted(gen.VOCAB[s.provider][1 + int(st)] for st in c["status"][~ok])
        want = (
            s.provider,
            len(c["t"]),
            int((~ok).sum()),
            int(c["stream"].sum()),
            int((c["stream"] & ok).sum()),
            int(c["out_tok"].sum()),
            int(c["cut"].sum()),
            errors,
        )
        assert got[(s.service.name, s.model)] == want

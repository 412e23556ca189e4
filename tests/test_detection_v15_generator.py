"""The blind judge v15's traffic generator (benchmarks/detection_scenarios_v15.py): a seed and an end
always give the same week, every eligible incident moves its series its way inside its window, the
benign changes are in the week, and the spans say what the call arrays say."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection_scenarios_v15 as gen

END = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)  # a Monday morning, as the judged run's
SEED = 1500
Calls = dict[str, dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def week() -> tuple[gen.Week, Calls, list[gen.Extra]]:
    w = gen.Week(SEED, END, scale=0.3)
    calls, extras = gen.generate(w)
    return w, calls, extras


def test_a_seed_and_an_end_give_the_same_week(week: tuple[gen.Week, Calls, list[gen.Extra]]) -> None:
    w, calls, extras = week
    again = gen.Week(SEED, END, scale=0.3)
    calls_again, extras_again = gen.generate(again)
    assert [i.label() for i in again.incidents] == [i.label() for i in w.incidents]
    assert [vars(b) for b in again.benign] == [vars(b) for b in w.benign]
    assert calls_again.keys() == calls.keys() and len(extras_again) == len(extras)
    for key, c in calls.items():
        for f in ("t", "dur", "err", "out", "inp", "ttft", "finish", "trace"):
            assert np.array_equal(c[f], calls_again[key][f], equal_nan=True), (key, f)
    other = gen.Week(SEED + 1, END, scale=0.3)
    assert [i.label() for i in other.incidents] != [i.label() for i in w.incidents]


def test_every_eligible_incident_moves_its_series_its_way(week: tuple[gen.Week, Calls, list[gen.Extra]]) -> None:
    w, calls, _ = week
    kinds = {i.kind for i in w.incidents}
    assert len(kinds) >= 12, kinds
    eligible = 0
    for inc in w.incidents:
        assert 0 <= inc.start < inc.end <= gen.WEEK and all(s in calls for s in inc.series), inc.label()
        assert inc.end - inc.start >= 10 and (inc.permanent or inc.end - inc.start <= 150), inc.label()
        e = gen.eligibility(w, inc, calls)
        if not e["eligible"]:
            continue
        eligible += 1
        assert e["z"] >= 3, (inc.label(), e)
        if inc.kind in gen.RATE_KINDS | gen.VOLUME_KINDS:
            assert e["extra"] >= 10, (inc.label(), e)
        effect = e["effect"] if e["effect"] is not None else float("inf")
        assert (effect > 1) if inc.direction > 0 else (effect < 1), (inc.label(), e)
    assert eligible >= 15, eligible
    young = [i for i in w.incidents if i.series == [gen.SU]]
    assert young and all(i.start - w.by_key[gen.SU].first >= 12 * 60 for i in young)


def test_a_regional_outage_fails_only_its_region(week: tuple[gen.Week, Calls, list[gen.Extra]]) -> None:
    w, calls, _ = week
    outages = [i for i in w.incidents if i.kind == "region_outage"]
    assert outages
    regions = w.by_key[gen.SDA].regions
    for inc in outages:
        c = gen.union(calls, inc.series)
        win = (c["t"] >= inc.start) & (c["t"] < inc.end)
        mine = c["region"] == regions.index(inc.region)
        hit = c["err"][win & mine].mean() if (win & mine).any() else 1.0
        other = c["err"][win & ~mine].mean() if (win & ~mine).any() else 0.0
        assert hit > other, (inc.label(), hit, other)


def test_the_benign_changes_are_in_the_week(week: tuple[gen.Week, Calls, list[gen.Extra]]) -> None:
    w, calls, extras = week
    kinds = {b.kind for b in w.benign}
    assert {"release", "migration", "marketing_email", "batch_schedule", "young_start", "weekend"} <= kinds, kinds
    # the migration: the old model is gone an hour after it starts, the new one was not there before
    assert not (calls[gen.SDA]["t"] >= w.migration + 61).any()
    assert not (calls[gen.SDB]["t"] < w.migration).any()
    # the planned changes fall inside the week whatever its end (a Friday-evening release once fell after it)
    for day in range(7):
        other = gen.Week(SEED, END.replace(day=END.day - day, hour=(7 * day) % 24), scale=0.1)
        assert 1440 <= other.release <= gen.WEEK - 12 * 60 and 0 < other.migration < gen.WEEK - 1440
        assert 0 <= other.email < gen.WEEK - 90
    # the marketing email doubles the growth app's calls for 90 minutes (against the day before)
    t = calls[gen.GR]["t"]
    during = np.sum((t >= w.email) & (t < w.email + 90))
    before = np.sum((t >= w.email - 1440) & (t < w.email - 1440 + 90))
    assert during > 1.5 * before, (during, before)
    # the release lengthens answers (same clock hours the day before and the day after)
    out, ok = calls[gen.GR]["out"], ~calls[gen.GR]["err"]
    pre = ok & (t >= w.release - 1440) & (t < w.release - 1440 + 360)
    post = ok & (t >= w.release + 1440) & (t < w.release + 1440 + 360)
    if post.sum() > 20:
        assert out[post].mean() > 1.1 * out[pre].mean()
    # the nightly batch only runs 40 minutes a night
    assert calls[gen.BA]["t"].size and np.ptp(np.mod(calls[gen.BA]["t"] - calls[gen.BA]["t"][0] + 60, 1440)) < 120
    # the agent's traces hold 3-12 calls over two models, with a tool call between them
    per_trace = np.bincount(np.concatenate([calls[gen.AP]["trace"], calls[gen.AW]["trace"]]))
    sizes = per_trace[per_trace > 0]
    assert sizes.min() >= 1 and np.percentile(sizes, 50) >= 3 and sizes.max() <= 12 + 6
    assert any(e.name.startswith("execute_tool") for e in extras)


def test_the_spans_say_what_the_calls_say(week: tuple[gen.Week, Calls, list[gen.Extra]]) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    w, calls, extras = week
    body, n = next(gen.requests(w, calls, extras))
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    spans = [(rs, sp) for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    assert len(spans) == n == gen.BATCH_SPANS
    seen = set()
    for rs, sp in spans:
        res = {a.key: a.value.string_value for a in rs.resource.attributes}
        assert res["service.name"] in gen.RESOURCE_OF and res["cloud.region"] in gen.RESOURCE_OF[res["service.name"]]
        attrs = {a.key: a.value for a in sp.attributes}
        op = attrs["gen_ai.operation.name"].string_value if "gen_ai.operation.name" in attrs else sp.name
        seen.add(op)
        if op in ("chat", "generate_content", "embeddings"):
            assert attrs["gen_ai.request.model"].string_value and attrs["gen_ai.provider.name"].string_value
            if sp.status.code == 2:
                assert attrs["error.type"].string_value and "gen_ai.usage.input_tokens" not in attrs
            else:
                assert attrs["gen_ai.usage.input_tokens"].int_value > 0
                if "gen_ai.response.time_to_first_chunk" in attrs:
                    assert attrs["gen_ai.request.stream"].bool_value
                    ttft_ns = attrs["gen_ai.response.time_to_first_chunk"].double_value * 1e9
                    assert ttft_ns <= sp.end_time_unix_nano - sp.start_time_unix_nano + 1e5
    assert {"chat", "embeddings", "invoke_agent", "execute_tool"} <= seen, seen

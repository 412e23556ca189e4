"""``llmtrace compare`` on canary traffic played through the real SDKs, end to end.

A real ``llmtrace server`` receives the canary's releases as apps would send them: one process per
release (:mod:`llmtrace.demo.canary_live`), each ``llmtrace.instrument(release=...)``-ed, streaming
through the openai SDK from the fake LLM (its chunk-delay knob makes v2.1.0's generation twice as
slow, its first-byte latency keeps time to first token the same; v2.2.0 is served by the cheaper
gpt-4.1-nano) and scoring each answer with ``llmtrace.score``. Latencies are measured by llmtrace
on each player's simulated clock (:mod:`llmtrace.demo.canary_clock`): exactly the fake's delays,
however busy the machine, so every verdict below is the same on every run. (Measured in wall
time, a busy machine's scheduling noise swamped the ~50 ms slowdown at p95 and half of it
mid-stream: those checks had been relaxed to "worse or no evidence".)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llmtrace import cli
from llmtrace.analytics import compare
from llmtrace.analytics.filters import Filter
from llmtrace.demo import canary
from llmtrace.demo.canary_live import start_arms
from tests.server_process import ServerProcess

REQUESTS = 500  # per release: enough for p95's always-valid interval to close (n >= ~450 at 13 metrics)
WORSENING_REQUESTS = 500
DEMO, WORSENING = canary.DEMO, canary.WORSENING


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding every release of both canaries, each played by its own process."""
    server = ServerProcess(tmp_path_factory.mktemp("canary") / "data").wait_ready()
    try:
        releases = [a.release for a in DEMO.arms]
        processes = start_arms(server.otlp_url, "demo", releases, REQUESTS, simulated=True)
        releases = [a.release for a in WORSENING.arms]
        processes += start_arms(server.otlp_url, "worsening", releases, WORSENING_REQUESTS, simulated=True)
        assert [p.wait(600) for p in processes] == [0] * len(processes)
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


def _window(client: Any, service: str) -> Filter:
    """From the service's first call to just after its last (the traffic's own time span)."""
    sql = "SELECT min(Timestamp), max(Timestamp) FROM llm_calls WHERE ServiceName = {s:String}"
    first, last = client.query(sql, parameters={"s": service}).result_rows[0]
    utc = timezone.utc
    return Filter(start=first.replace(tzinfo=utc), end=last.replace(tzinfo=utc) + timedelta(seconds=1),
                  services=(service,))  # fmt: skip


def _flagged(report: compare.CompareReport) -> dict[str, str]:
    return {r.metric: r.verdict for r in report.results if r.verdict not in ("no_evidence", "insufficient_data")}


def _assert_slower_and_worse_scored(report: compare.CompareReport) -> None:
    """Worse on latency p50 and p95 and on the quality score, and on nothing else."""
    assert _flagged(report) == {"latency_p50_ms": "worse", "latency_p95_ms": "worse", "score:quality": "worse"}, (
        report.to_frame().to_string()
    )


def test_every_release_arrives_tagged_by_llmtraces_release_setting_with_its_model_and_scores(client: Any) -> None:
    rows = client.query(
        "SELECT toString(Release), ResourceAttributes['service.version'], toString(RequestModel), count(), "
        "countIf(IsError = 1) FROM llm_calls AS c INNER JOIN otel_traces AS t ON t.SpanId = c.SpanId "
        "WHERE c.ServiceName = {s:String} GROUP BY 1, 2, 3 ORDER BY 1",
        parameters={"s": DEMO.service},
    ).result_rows
    assert [r[:4] for r in rows] == [
        ("v2.0.0", "v2.0.0", "gpt-4o-mini", REQUESTS),
        ("v2.1.0", "v2.1.0", "gpt-4o-mini", REQUESTS),
        ("v2.2.0", "v2.2.0", "gpt-4.1-nano", REQUESTS),
    ]
    scores = client.query(
        "SELECT count() FROM llm_scores WHERE Name = 'quality' AND TraceId IN "
        "(SELECT TraceId FROM llm_calls WHERE ServiceName = {s:String} AND IsError = 0)",
        parameters={"s": DEMO.service},
    ).result_rows[0][0]
    assert scores == 3 * REQUESTS - sum(r[4] for r in rows) > 0  # every answered request was scored
    prompts = client.query(
        "SELECT uniqExact(PromptName, PromptSystemHash, PromptTemplateHash), any(PromptName) FROM llm_calls "
        "WHERE ServiceName = {s:String}",
        parameters={"s": DEMO.service},
    ).result_rows
    assert prompts == [(1, "checkout-answer")]  # the questions are declared variables: one prompt version


def test_the_slower_release_is_worse_on_exactly_latency_and_the_quality_score(client: Any) -> None:
    report = compare.compare(client, "release=v2.0.0", "release=v2.1.0", _window(client, DEMO.service))
    _assert_slower_and_worse_scored(report)
    assert report.get("ttft_p50_ms").verdict == "no_evidence"  # generation was slowed, not the first token


def test_the_cheaper_model_release_is_better_on_exactly_cost_per_call(client: Any) -> None:
    report = compare.compare(client, "release=v2.0.0", "release=v2.2.0", _window(client, DEMO.service))
    assert _flagged(report) == {"cost_per_call_usd": "better"}, report.to_frame().to_string()
    assert report.get("cost_per_call_usd").relative == pytest.approx(-1 / 3, abs=0.05)  # nano: 2/3 the price


def test_the_deploy_gate_fails_the_slower_release_and_passes_the_cheaper_one(server: ServerProcess) -> None:
    def gate(candidate: str) -> int:
        sides = ["--baseline", "release=v2.0.0", "--candidate", f"release={candidate}"]
        return cli.main(["compare", "--url", server.http_url, *sides, "--service", DEMO.service, "--fail-on", "worse"])

    assert gate("v2.1.0") == 3
    assert gate("v2.2.0") == 0


def test_a_candidate_getting_worse_mid_stream_is_judged_worse_only_once_it_does(client: Any) -> None:
    """v3.1.0 is v3.0.0 for its first half, then slower and worse-scored: the sequential looks
    (growing windows) say no evidence while it is the same — always-valid intervals, so looking
    often raises no false alarm — and worse by the end, on the score and on latency, never 'better'."""
    f = _window(client, WORSENING.service)
    sql = "SELECT Timestamp FROM llm_calls WHERE Release = 'v3.1.0' ORDER BY Timestamp LIMIT 1 OFFSET {n:UInt32}"
    changed_at = client.query(sql, parameters={"n": WORSENING_REQUESTS // 2}).result_rows[0][0]
    changed_at = changed_at.replace(tzinfo=timezone.utc)
    for metric in ("score:quality", "latency_p50_ms"):
        looks = compare.looks(client, "release=v3.0.0", "release=v3.1.0", f, metric, count=8)
        before = looks[looks["end"] <= changed_at]
        assert len(before) >= 2 and set(before["verdict"]) == {"no_evidence"}, (metric, looks.to_string())
        assert set(looks["verdict"]) <= {"no_evidence", "worse"}, (metric, looks.to_string())
        assert looks["verdict"].iloc[-1] == "worse", (metric, looks.to_string())
    _assert_slower_and_worse_scored(compare.compare(client, "release=v3.0.0", "release=v3.1.0", f))


def test_each_latency_is_exactly_the_fakes_delays_on_the_simulated_clock(client: Any) -> None:
    """Every answered call of a release lasts its latency knob plus one chunk delay per streamed
    word, to the microsecond: no scheduling noise reaches the spans."""
    from llmtrace.demo.canary_live import call_of

    for arm in DEMO.arms:
        calls = [call_of(DEMO, arm, i, True) for i in range(REQUESTS)]
        want = sorted(c.latency_ms * 1000 + c.chunk_ms * 1000 * c.words for c in calls if not c.status)
        sql = "SELECT DurationUs FROM llm_calls WHERE Release = {r:String} AND IsError = 0 ORDER BY DurationUs"
        got = [int(r[0]) for r in client.query(sql, parameters={"r": arm.release}).result_rows]
        assert got == want, arm.release


def test_the_played_calls_are_timed_now(client: Any) -> None:
    newest = client.query("SELECT max(Timestamp) FROM llm_calls").result_rows[0][0].replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - newest) < timedelta(minutes=15)


def test_an_unknown_release_is_refused_by_the_player(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "llmtrace.demo.canary", "--live", "--release", "v9"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "--release must be one of v2.0.0, v2.1.0, v2.2.0" in out.stderr


def test_up_demo_loads_the_canarys_last_day_and_links_the_compare_page_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmtrace.demo.canary_live import UP_CALLS, load_for_up

    fresh = ServerProcess(tmp_path / "data").wait_ready()
    try:
        assert load_for_up(fresh.http_url, fresh.otlp_url, "http://dash:8501", {}, live=False)
        link = "http://dash:8501/compare?by=release&baseline=v2.0.0&candidate=v2.1.0&service=checkout-assistant"
        assert f"Compare them: {link}" in capsys.readouterr().out
        store = fresh.client()
        count = "SELECT count() FROM llm_calls WHERE ServiceName = {s:String}"
        assert store.query(count, parameters={"s": DEMO.service}).result_rows == [(UP_CALLS,)]
        day = Filter.last(timedelta(days=1))
        assert _flagged(compare.compare(store, "release=v2.0.0", "release=v2.1.0", day)) == {
            "latency_p50_ms": "worse", "latency_p95_ms": "worse", "score:quality": "worse"
        }  # fmt: skip
        assert _flagged(compare.compare(store, "release=v2.0.0", "release=v2.2.0", day)) == {
            "cost_per_call_usd": "better"
        }  # fmt: skip
    finally:
        assert fresh.stop() == 0


def test_a_live_release_stops_on_sigterm_after_delivering_what_it_played(tmp_path: Path) -> None:
    """``llmtrace up`` stops its canary processes with SIGTERM: each flushes and exits 0."""
    import signal
    import time

    fresh = ServerProcess(tmp_path / "data").wait_ready()
    try:
        (arm,) = start_arms(fresh.otlp_url, "demo", ["v2.2.0"], None, rate=20)
        store, deadline, stored = fresh.client(), time.monotonic() + 120, 0
        while stored < 3 and time.monotonic() < deadline and arm.poll() is None:
            stored = store.query("SELECT count() FROM llm_calls").result_rows[0][0]
            time.sleep(0.2)  # polling the store for the first calls, with a deadline
        assert stored >= 3
        arm.send_signal(signal.SIGTERM)
        assert arm.wait(60) == 0
    finally:
        assert fresh.stop() == 0


def test_a_user_and_their_sessions_stay_on_one_release() -> None:
    """A canary routes users, not requests: no user (so no session) is served by two releases."""
    from llmtrace.demo.canary_live import call_of

    users = [{call_of(DEMO, arm, i, True).user for i in range(300)} for arm in DEMO.arms]
    assert all(len(u) > 100 for u in users)
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])

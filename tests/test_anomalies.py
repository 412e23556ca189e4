"""Anomaly episodes (count tests at several scales, levels) and call-level anomalies on synthetic
traffic with known injected events."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace import cli, semconv
from llmtrace.analytics import anomalies, synthetic
from llmtrace.analytics.anomalies import Anomaly, AnomalyReport
from llmtrace.analytics.filters import Filter
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.conftest_store import otel_row

END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
H = timedelta(hours=1)
LAST_3_DAYS = Filter(start=END - 72 * H, end=END)
SCENARIO = synthetic.reference_scenario(END)
SLOW_TRACE = "0" * 31 + "1"
M = timedelta(minutes=1)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('anomalies')}"


@pytest.fixture(scope="module")
def store(store_url: str) -> Iterator[Any]:
    client = synthetic.seed_store(store_url, SCENARIO)
    # one call forty times slower than chat-ui's usual, at 13:20 the day before the end
    slow = {
        semconv.OPERATION_NAME: "chat",
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: "gpt-4o-mini",
        semconv.USAGE_INPUT_TOKENS: "600",
        semconv.USAGE_OUTPUT_TOKENS: "150",
        semconv.RESPONSE_FINISH_REASONS: '["stop"]',
    }
    start_ns = int((END - 11 * H + timedelta(minutes=20)).timestamp() * 1e9)
    row = otel_row(slow, service_name="chat-ui", start_ns=start_ns, duration_ns=40_000_000_000, trace_id=SLOW_TRACE)
    client.insert("otel_traces", [row], column_names=OTEL_TRACES_COLUMNS)
    yield client
    client.close()


@pytest.fixture(scope="module")
def report(store: Any) -> AnomalyReport:
    return anomalies.detect(store, LAST_3_DAYS)


def _episodes(report: AnomalyReport, metric: str, service: str, model: str) -> list[Anomaly]:
    return report.find(metric, kind="episode", service=service, model=model)


def _near(value: datetime, expected: datetime, slack: timedelta = 10 * M) -> bool:
    return abs(value - expected) <= slack


def test_error_burst_is_one_episode_with_its_true_start_and_end(report: AnomalyReport) -> None:
    burst, storm = sorted(_episodes(report, "error_rate", "support-bot", "gpt-4o"), key=lambda a: a.start)
    assert _near(burst.start, END - 60 * H) and _near(burst.end, END - 58 * H, 25 * M)
    assert burst.observed > 0.2 and burst.expected < 0.05 and burst.events > 100
    assert (burst.severity, burst.direction, burst.level) == ("critical", "up", "service,model")
    assert _near(storm.start, END - 30 * H)  # the retry storm's failed attempts


def test_an_episode_score_is_minus_log10_of_a_tail_probability(report: AnomalyReport) -> None:
    [burst, _] = sorted(_episodes(report, "error_rate", "support-bot", "gpt-4o"), key=lambda a: a.start)
    assert 10 < burst.score < 300  # overwhelming evidence, but a probability (capped at 1e-300)
    assert burst.detected_at is not None and burst.start < burst.detected_at <= burst.start + H


def test_cost_jump_is_one_cost_episode_covering_its_four_hours(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "cost_per_call_usd", "support-bot", "gpt-4o-mini")
    assert _near(episode.start, END - 50 * H) and _near(episode.end, END - 46 * H)
    assert episode.observed / episode.expected > 3  # share of calls above the usual p90, against ~10%


def test_latency_spike_is_a_latency_episode_covering_its_three_hours(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "latency_p95_ms", "search-api", "gpt-4o-mini")
    assert _near(episode.start, END - 40 * H) and _near(episode.end, END - 37 * H)
    assert episode.observed > 0.8 and episode.expected < 0.2


def test_an_episode_says_which_share_its_observed_and_expected_are(report: AnomalyReport) -> None:
    """Found by the share above twice the usual p90, an episode's expected share is ~0.0001, not
    the ~0.1 above the p90 itself: ``measure`` (on the page and in the summary) says which."""
    [episode] = _episodes(report, "latency_p95_ms", "search-api", "gpt-4o-mini")
    assert episode.measure in (f"share of calls slower than {bar}the usual p90" for bar in ("", "twice "))
    twice = "twice" in episode.measure
    assert episode.expected is not None and (episode.expected < 0.05 if twice else 0.05 <= episode.expected < 0.2)
    assert f"[{episode.measure}]" in episode.summary
    calls = [a for a in report.anomalies if a.kind == "episode" and a.metric == "calls"]
    assert all(a.measure == "calls in the window against its baseline" for a in calls)


def test_latency_episode_examples_are_the_slowest_calls_of_that_series_and_window(
    store: Any, report: AnomalyReport
) -> None:
    [episode] = _episodes(report, "latency_p95_ms", "search-api", "gpt-4o-mini")
    slowest = store.query(
        "SELECT TraceId FROM llm_calls WHERE ServiceName = 'search-api' AND RequestModel = 'gpt-4o-mini'"
        " AND Timestamp >= {s:DateTime64(6, 'UTC')} AND Timestamp < {e:DateTime64(6, 'UTC')}"
        " ORDER BY DurationUs DESC LIMIT 3",
        parameters={"s": episode.start.strftime("%F %T"), "e": episode.end.strftime("%F %T")},
    ).result_rows
    assert episode.trace_ids == [r[0] for r in slowest]


def test_truncation_burst_is_a_truncation_rate_episode(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "truncation_rate", "search-api", "gpt-4o-mini")
    assert _near(episode.start, END - 10 * H) and _near(episode.end, END - 8 * H)
    assert len(episode.trace_ids) == 3


def test_model_switch_shows_as_the_old_series_going_silent(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "calls", "agent", "claude-sonnet-4-5")
    assert episode.direction == "down" and _near(episode.start, END - 18 * H)
    assert episode.observed < 0.2 * episode.expected


def test_a_series_that_appears_is_not_an_anomaly_of_volume(report: AnomalyReport) -> None:
    assert _episodes(report, "calls", "agent", "gpt-4o") == []


def test_a_young_series_is_listed_as_warming_up(report: AnomalyReport) -> None:
    [young] = report.warming_up
    assert young["series"] == {"service": "agent", "model": "gpt-4o"}
    assert young["status"] == "warming_up" and _near(young["first_seen"], END - 18 * H)


def test_daily_peaks_of_an_untouched_series_are_not_anomalies(report: AnomalyReport) -> None:
    assert report.find(kind="episode", service="chat-ui") == []


def test_every_episode_overlaps_an_event_injected_into_its_series(report: AnomalyReport) -> None:
    spans = []
    for e in SCENARIO.events:
        s = SCENARIO.series[e.series]
        # a model switch also makes the new model's series: match it by service
        series = {"service": s.service} if e.kind == "model_switch" else {"service": s.service, "model": s.model}
        spans.append((series, e.start, e.end or END))
    for episode in report.episodes():
        assert any(
            all(episode.series.get(k) == v for k, v in series.items())
            and episode.start < stop + H
            and episode.end > start
            for series, start, stop in spans
        ), episode.summary


def test_retry_storm_is_found_with_its_storm_traces(report: AnomalyReport) -> None:
    [storm] = report.find(kind="retry_storm", service="support-bot", model="gpt-4o")
    assert storm.points == 12
    assert END - 30 * H <= storm.start < storm.end <= END - 29 * H + 10 * timedelta(seconds=1.5)
    assert len(storm.trace_ids) == 3


def test_a_call_forty_times_slower_than_usual_is_a_slow_call(report: AnomalyReport) -> None:
    [slow] = report.find(kind="slow_call", service="chat-ui")
    assert slow.trace_ids == [SLOW_TRACE]
    assert slow.observed == pytest.approx(40_000, rel=1e-3)


def test_complete_five_minute_buckets_are_judged_and_the_one_in_progress_is_not() -> None:
    now = END + 92 * M
    p = anomalies.plan(Filter(start=END - 24 * H, end=now + H), now=now)
    assert p.judge_end == END + 90 * M and p.step == 300 and p.history.start == END - 72 * H


def test_points_flag_exactly_the_buckets_of_the_episode(store: Any, report: AnomalyReport) -> None:
    [episode] = _episodes(report, "latency_p95_ms", "search-api", "gpt-4o-mini")
    f = Filter(start=END - 72 * H, end=END, services=("search-api",))
    pts = anomalies.points(store, f, metrics=["latency_p95_ms"], now=END)
    mine = pts[(pts["level"] == "service,model") & (pts["model"] == "gpt-4o-mini")]
    flagged = [t.to_pydatetime() for t in mine[mine["flagged"]]["bucket"]]
    assert flagged[0] == episode.start and flagged[-1] == episode.end - 5 * M and len(flagged) == episode.points


def test_report_json_has_the_documented_shape(report: AnomalyReport) -> None:
    doc = json.loads(report.to_json())
    assert set(doc) == {"start", "end", "bucket_seconds", "by", "levels", "anomalies", "warming_up"}
    assert doc["bucket_seconds"] == 300 and doc["by"] == ["service", "model", "provider"]
    assert doc["levels"] == ["service,model", "service", "provider", "all"]
    first = doc["anomalies"][0]
    assert set(first) == {
        "kind", "metric", "series", "start", "end", "observed", "expected", "score", "severity", "direction",
        "points", "trace_ids", "key", "level", "detected_at", "events", "trials", "measure", "change", "user",
    }  # fmt: skip
    assert first["severity"] == "critical"


def test_keys_are_stable_across_runs(store: Any, report: AnomalyReport) -> None:
    again = anomalies.detect(store, LAST_3_DAYS)
    assert [a.key for a in again.anomalies] == [a.key for a in report.anomalies]


def test_detection_pauses_the_garbage_collector_and_restores_it(store: Any) -> None:
    seen: list[bool] = []

    class Watching:  # the store, noting whether the collector runs while detect queries
        def __getattr__(self, name: str) -> Any:
            seen.append(gc.isenabled())
            return getattr(store, name)

    assert gc.isenabled()
    anomalies.detect(Watching(), LAST_3_DAYS, include_calls=False)
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()  # an application that runs without it keeps it off
    try:
        anomalies.detect(store, LAST_3_DAYS, include_calls=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_unknown_metric_and_odd_bucket_widths_are_refused(store: Any) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        anomalies.detect(store, LAST_3_DAYS, metrics=["mood"])
    with pytest.raises(ValueError, match="divisor of an hour"):
        anomalies.detect(store, LAST_3_DAYS, step=7 * 60)


def test_anomalies_command_prints_the_episodes_as_json(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["anomalies", "--url", store_url, "--since", "72h", "--until", END.isoformat(), "--format", "json"]
    assert cli.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    spike = [
        a for a in doc["anomalies"] if a["metric"] == "latency_p95_ms" and a["series"].get("service") == "search-api"
    ]
    assert spike[0]["start"] == (END - 40 * H).isoformat()


def test_anomalies_command_table_names_window_series_and_warming_up(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["anomalies", "--url", store_url, "--since", "24h", "--until", END.isoformat(), "--by", "service,model"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("window: ")
    assert "service=search-api model=gpt-4o-mini" in out and "truncation_rate" in out
    assert "warming up: service=agent model=gpt-4o" in out


# --------------------------------------------------------------------------- levels
TOGETHER = replace(
    SCENARIO,
    events=(
        synthetic.Event("latency", 0, END - 20 * H, END - 18 * H, factor=4.0),  # support-bot / gpt-4o
        synthetic.Event("latency", 1, END - 20 * H, END - 18 * H, factor=4.0),  # support-bot / gpt-4o-mini
        synthetic.Event("errors", 2, END - 10 * H, END - 9 * H, factor=0.4, value="openai.APIError"),
    ),
)


@pytest.fixture(scope="module")
def levels_report(store_url: str, store: Any) -> AnomalyReport:
    store.command("CREATE DATABASE IF NOT EXISTS levels")  # one chDB directory per process
    client = synthetic.seed_store(f"{store_url}?database=levels", TOGETHER)
    try:
        return anomalies.detect(client, Filter(start=END - 24 * H, end=END), include_calls=False, now=END)
    finally:
        client.close()


def test_an_incident_of_every_model_of_a_service_is_reported_once_for_the_service(
    levels_report: AnomalyReport,
) -> None:
    latency = levels_report.find("latency_p95_ms", kind="episode")
    assert [(a.level, a.series) for a in latency] == [("service", {"service": "support-bot"})]
    assert _near(latency[0].start, END - 20 * H)


def test_an_incident_of_one_series_is_reported_for_that_series_only(levels_report: AnomalyReport) -> None:
    errors = levels_report.find("error_rate", kind="episode")
    assert [(a.level, a.series) for a in errors] == [
        ("service,model", {"service": "search-api", "model": "gpt-4o-mini"})
    ]


def test_a_shift_that_starts_with_a_new_release_and_prompt_version_names_them(report: AnomalyReport) -> None:
    shifted = report.find("tokens_per_call", kind="episode", service="summarizer")
    assert shifted, "the summarizer's output tokens grew 80% with prompt version 4 and release v1.1.0"
    first = END - 20 * H
    assert f"release v1.1.0 first seen {first:%Y-%m-%d %H:%M} UTC" in shifted[0].change
    assert "prompt " in shifted[0].change and " 4 first seen" in shifted[0].change
    assert f"; with release v1.1.0 first seen {first:%Y-%m-%d %H:%M}" in shifted[0].summary
    untouched = [a for a in report.episodes() if a.series.get("service") == "search-api"]
    assert untouched and not any(a.change for a in untouched)  # its latency spike and truncation: no deployment

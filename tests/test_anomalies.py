"""Anomaly episodes and call-level anomalies on synthetic traffic with known injected events."""

from __future__ import annotations

import json
from collections.abc import Iterator
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


def test_error_burst_is_one_episode_covering_exactly_its_two_hours(report: AnomalyReport) -> None:
    burst, storm = sorted(_episodes(report, "error_rate", "support-bot", "gpt-4o"), key=lambda a: a.start)
    assert (burst.start, burst.end) == (END - 60 * H, END - 58 * H)
    assert burst.observed > 0.3 and burst.expected < 0.05
    assert (burst.severity, burst.direction) == ("critical", "up")
    assert storm.start == END - 30 * H  # the retry storm's failed attempts


def test_cost_jump_is_one_cost_episode_covering_its_four_hours(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "cost_per_call_usd", "support-bot", "gpt-4o-mini")
    assert (episode.start, episode.end) == (END - 50 * H, END - 46 * H)
    assert episode.observed / episode.expected > 2


def test_latency_spike_is_a_p95_latency_episode_covering_its_three_hours(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "latency_p95_ms", "search-api", "gpt-4o-mini")
    assert (episode.start, episode.end) == (END - 40 * H, END - 37 * H)
    assert episode.observed / episode.expected > 3


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
    assert (episode.start, episode.end) == (END - 10 * H, END - 8 * H)
    assert len(episode.trace_ids) == 3


def test_model_switch_shows_as_the_old_series_losing_its_calls(report: AnomalyReport) -> None:
    [episode] = _episodes(report, "calls", "agent", "claude-sonnet-4-5")
    assert episode.direction == "down"
    assert episode.start == END - 18 * H and episode.end == END
    assert episode.observed == 0


def test_a_series_that_appears_is_not_an_anomaly_of_volume(report: AnomalyReport) -> None:
    assert _episodes(report, "calls", "agent", "gpt-4o") == []


def test_daily_peaks_of_an_untouched_series_are_not_anomalies(report: AnomalyReport) -> None:
    assert report.find(kind="episode", service="chat-ui") == []


def test_every_episode_overlaps_an_event_injected_into_its_series(report: AnomalyReport) -> None:
    windows: dict[str, list[tuple[datetime, datetime]]] = {}
    for e in SCENARIO.events:
        s = SCENARIO.series[e.series]
        windows.setdefault(f"{s.service}/{s.model}", []).append((e.start, e.end or END))
    for episode in report.episodes():
        key = f"{episode.series['service']}/{episode.series['model']}"
        spans = windows.get(key, [])
        assert any(episode.start < stop + H and episode.end > start for start, stop in spans), episode.summary


def test_retry_storm_is_found_with_its_storm_traces(report: AnomalyReport) -> None:
    [storm] = report.find(kind="retry_storm", service="support-bot", model="gpt-4o")
    assert storm.points == 12
    assert END - 30 * H <= storm.start < storm.end <= END - 29 * H + 10 * timedelta(seconds=1.5)
    assert len(storm.trace_ids) == 3


def test_a_call_forty_times_slower_than_usual_is_a_slow_call(report: AnomalyReport) -> None:
    [slow] = report.find(kind="slow_call", service="chat-ui")
    assert slow.trace_ids == [SLOW_TRACE]
    assert slow.observed == pytest.approx(40_000, rel=1e-3)


def test_bucket_in_progress_is_not_judged() -> None:
    now = END + 90 * timedelta(minutes=1)  # 01:30
    p = anomalies.plan(Filter(start=END - 24 * H, end=now + H), now=now)
    assert p.judge_end == END + H and p.step == 3600


def test_short_windows_use_five_minute_buckets_on_raw_calls(store: Any) -> None:
    report = anomalies.detect(store, Filter(start=END - 12 * H, end=END - 6 * H), include_calls=False)
    assert report.step == 300
    truncation = report.find("truncation_rate", service="search-api")
    assert truncation and truncation[0].start >= END - 10 * H and truncation[-1].end <= END - 7 * H


def test_points_flag_exactly_the_buckets_of_the_episodes(store: Any, report: AnomalyReport) -> None:
    f = Filter(start=END - 72 * H, end=END, services=("search-api",))
    pts = anomalies.points(store, f, metrics=["latency_p95_ms"])
    flagged = pts[pts["flagged"] & (pts["model"] == "gpt-4o-mini")]["bucket"].tolist()
    assert [t.to_pydatetime() for t in flagged] == [END - 40 * H, END - 39 * H, END - 38 * H]


def test_report_json_has_the_documented_shape(report: AnomalyReport) -> None:
    doc = json.loads(report.to_json())
    assert set(doc) == {"start", "end", "bucket_seconds", "by", "anomalies"}
    assert doc["bucket_seconds"] == 3600 and doc["by"] == ["service", "model"]
    first = doc["anomalies"][0]
    assert set(first) == {
        "kind",
        "metric",
        "series",
        "start",
        "end",
        "observed",
        "expected",
        "score",
        "severity",
        "direction",
        "points",
        "trace_ids",
        "key",
    }
    assert first["severity"] == "critical"


def test_keys_are_stable_across_runs(store: Any, report: AnomalyReport) -> None:
    again = anomalies.detect(store, LAST_3_DAYS)
    assert [a.key for a in again.anomalies] == [a.key for a in report.anomalies]


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
    spike = [a for a in doc["anomalies"] if a["metric"] == "latency_p95_ms" and a["series"]["service"] == "search-api"]
    assert spike[0]["start"] == (END - 40 * H).isoformat()


def test_anomalies_command_table_names_window_and_series(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["anomalies", "--url", store_url, "--since", "24h", "--until", END.isoformat(), "--by", "service"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("window: ")
    assert "service=search-api" in out and "truncation_rate" in out

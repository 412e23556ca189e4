"""Every scripted demo incident is found by ``llmtrace anomalies --since 7d`` with its defaults.

The demo's own plan (:func:`llmtrace.demo.scenarios.plan`, 6000 calls over 7 days, what
``llmtrace up --demo`` plays through the SDKs) is written straight into ``llm_calls`` here,
call by call with its times, models, failures and durations, so the test needs no SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace import cli
from llmtrace.analytics import anomalies
from llmtrace.analytics.anomalies import AnomalyReport
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios

END = datetime.now(timezone.utc).replace(hour=6, minute=0, second=0, microsecond=0)  # fixed time of day: deterministic
END_NS = int(END.timestamp() * 1e9)
COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ServiceName", "Provider", "RequestModel", "Release", "PromptVersion",
    "InputTokens", "OutputTokens", "CostUsd", "DurationUs", "TtftUs", "IsStream", "FinishReason", "IsError",
]  # fmt: skip


def _rows() -> list[tuple[Any, ...]]:
    rows = []
    for r, request in enumerate(scenarios.plan(6000, 7, END_NS)):
        t = request.start_ns
        for c, call in enumerate(request.calls):
            t += int(call.gap_ms * 1e6)
            model = scenarios.MODELS[call.model]
            prompt = 900 if request.prompt_version == "4" else 300  # v4's longer prompt
            tokens_out = 0 if call.status else int(call.output_words * 1.3)
            cost = (
                None
                if model.price_in is None or call.status
                else (prompt * model.price_in + tokens_out * model.price_out) / 1e6
            )  # type: ignore[operator]
            rows.append((
                datetime.fromtimestamp(t / 1e9, timezone.utc), f"{r:032x}", f"{r:012x}{c:04x}", request.service,
                model.provider, call.model, request.release, request.prompt_version, prompt, tokens_out, cost,
                int(call.duration_ms * 1000), int(call.ttft_ms * 1000) if call.stream and not call.status else None,
                int(call.stream), "length" if call.max_tokens else ("" if call.status else "stop"),
                int(bool(call.status)),
            ))  # fmt: skip
            t += int(call.duration_ms * 1e6)
    return rows


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('anomalies-demo')}"


@pytest.fixture(scope="module")
def store(store_url: str) -> Iterator[Any]:
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(store_url)
    apply_migrations(client_runner(client), ttl_days=30)
    client.insert("llm_calls", _rows(), column_names=COLUMNS)
    yield client
    client.close()


@pytest.fixture(scope="module")
def report(store: Any) -> AnomalyReport:
    return anomalies.detect(store, Filter(start=END - timedelta(days=7), end=END), now=END)


def _window(kind: str) -> tuple[datetime, datetime]:
    episode = next(e for e in scenarios.EPISODES if e.kind == kind)
    start, stop = scenarios.episode_window(episode, END_NS, 7)
    return datetime.fromtimestamp(start / 1e9, timezone.utc), datetime.fromtimestamp(
        min(stop, END_NS) / 1e9, timezone.utc
    )


def _found(report: AnomalyReport, kind: str, metric: str, direction: str, **series: str) -> list[Any]:
    start, stop = _window(kind)
    late = timedelta(hours=3)
    return [
        a
        for a in report.find(metric, kind="episode", **series)
        if a.direction == direction and a.end > start and a.start < min(stop, start + late) + timedelta(minutes=30)
    ]


def test_the_error_burst_is_an_error_rate_episode_of_support_bot(report: AnomalyReport) -> None:
    [burst] = _found(report, "error_burst", "error_rate", "up", service="support-bot")
    start, stop = _window("error_burst")
    assert burst.start >= start - timedelta(minutes=15) and burst.end <= stop + timedelta(minutes=15)


def test_the_latency_spike_is_a_latency_episode_of_search_api(report: AnomalyReport) -> None:
    assert _found(report, "latency_spike", "latency_p95_ms", "up", service="search-api")


def test_the_prompt_change_is_a_cost_episode_of_the_summarizer(report: AnomalyReport) -> None:
    assert _found(report, "prompt_change", "cost_per_call_usd", "up", service="summarizer")


def test_the_model_switch_is_the_old_model_losing_its_calls(report: AnomalyReport) -> None:
    assert _found(report, "model_switch", "calls", "down", service="support-bot", model="gpt-4o")


def test_no_episode_is_reported_twice_at_two_levels(report: AnomalyReport) -> None:
    episodes = report.episodes()
    for a in episodes:
        twins = [
            b for b in episodes if b is not a and b.metric == a.metric and b.direction == a.direction
            and b.start < a.end and a.start < b.end and all(b.series.get(k) == v for k, v in a.series.items())
        ]  # fmt: skip
        assert not twins, (a.summary, [b.summary for b in twins])


def test_the_command_with_its_defaults_lists_every_incident(
    store: Any, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["anomalies", "--url", store_url, "--since", "7d", "--until", END.isoformat(), "--format", "json"]
    assert cli.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    found = {(a["metric"], a["series"].get("service")) for a in doc["anomalies"] if a["kind"] == "episode"}
    assert {
        ("error_rate", "support-bot"),
        ("latency_p95_ms", "search-api"),
        ("cost_per_call_usd", "summarizer"),
    } <= found
    assert ("calls", "support-bot") in found

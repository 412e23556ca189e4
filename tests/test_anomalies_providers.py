"""A model served by several providers behind a router: each provider's share is a series.

An outage of the OpenAI half of a routed series is a fall of ~90% there, but only ~60% of the
service x model it belongs to and half of OpenAI's traffic as a whole; a router moving most of
the calls to Azure for a day is no incident at all, though each provider's share moves more than
the outage's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import anomalies, synthetic
from llmtrace.analytics.filters import Filter

H = timedelta(hours=1)
END = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)  # fixed: never the time of the run
ROUTED = {"service": "chat", "model": "gpt-4o"}
SERIES = (
    synthetic.Series("chat", "gpt-4o", provider="openai", calls_per_hour=420.0),
    synthetic.Series("chat", "gpt-4o", provider="azure.ai.openai", calls_per_hour=180.0),
    synthetic.Series("wiki", "gpt-4o-mini", provider="openai", calls_per_hour=300.0),
    synthetic.Series("mail", "claude-haiku-4-5", provider="anthropic", calls_per_hour=120.0),
)
# the router sends 77% of chat's calls to Azure for 8 hours (OpenAI keeps 35% of its share)
SHIFT = (
    synthetic.Event("volume", 0, END - 40 * H, END - 32 * H, factor=0.35),
    synthetic.Event("volume", 1, END - 40 * H, END - 32 * H, factor=1 + 0.65 * 420 / 180),
)
# OpenAI's half of chat loses 90% of its calls for an hour at the daily peak; Azure's half goes on
OUTAGE = synthetic.Event("volume", 0, END - 10 * H, END - 9 * H, factor=0.1)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    scenario = synthetic.Scenario(end=END, days=5, series=SERIES, events=(*SHIFT, OUTAGE), seed=11)
    client = synthetic.seed_store(f"chdb://{tmp_path_factory.mktemp('providers')}", scenario)
    try:
        yield anomalies.detect(client, Filter(start=END - 48 * H, end=END), include_calls=False, now=END)
    finally:
        client.close()


def _calls(report: Any, start: datetime, end: datetime) -> list[Any]:
    return [
        a
        for a in report.episodes()
        if a.metric == "calls" and a.start < end and a.end > start and a.series.get("service", "chat") == "chat"
    ]


def test_an_outage_of_one_provider_of_a_routed_series_is_reported_on_that_provider(report: Any) -> None:
    assert "service,model,provider" in report.levels and "provider" in report.by
    found = _calls(report, OUTAGE.start, OUTAGE.end)
    assert [(a.direction, a.series) for a in found] == [("down", {**ROUTED, "provider": "openai"})], [
        a.summary for a in found
    ]


def test_a_router_moving_calls_between_providers_is_no_volume_incident(report: Any) -> None:
    found = _calls(report, SHIFT[0].start, SHIFT[0].end + 3 * H)
    assert not found, [a.summary for a in found]


def test_series_on_one_provider_carry_no_provider_key(report: Any) -> None:
    assert all("provider" not in a.series or set(a.series) == {"provider"} or a.series.get("service") == "chat"
               for a in report.episodes())  # fmt: skip

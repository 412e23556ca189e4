"""The environment level: staging next to production is judged on its own series, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import anomalies, synthetic
from llmtrace.analytics.filters import Filter

H = timedelta(hours=1)
# the latest 01:00 UTC: the burst (10 h earlier) falls in the synthetic traffic's daily peak (15:00 UTC);
# ending at the run's own hour put it at night for runs at 13:00 UTC, where 30% of staging's ~16 calls
# is too little evidence
END = (datetime.now(timezone.utc) - H).replace(hour=1, minute=0, second=0, microsecond=0)
SERIES = (
    synthetic.Series("shop", "gpt-4o", calls_per_hour=240.0, error_rate=0.02),
    synthetic.Series("shop", "gpt-4o", calls_per_hour=40.0, error_rate=0.02, environment="staging"),
    synthetic.Series("wiki", "gpt-4o-mini", calls_per_hour=60.0),
)
# staging fails 30% of its calls for an hour: 12 failures among production's ~240 calls an hour
BURST = synthetic.Event("errors", 1, END - 10 * H, END - 9 * H, factor=0.3, value="openai.InternalServerError")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    scenario = synthetic.Scenario(end=END, days=3, series=SERIES, events=(BURST,), seed=4)
    client = synthetic.seed_store(f"chdb://{tmp_path_factory.mktemp('environments')}", scenario)
    yield client
    client.close()


def test_a_staging_incident_is_reported_once_on_its_environment(store: Any) -> None:
    report = anomalies.detect(store, Filter(start=END - 24 * H, end=END), include_calls=False)
    assert "environment" in report.by and "service,model,environment" in report.levels
    errors = [a for a in report.episodes() if a.metric == "error_rate" and a.start < BURST.end and a.end > BURST.start]
    assert len(errors) == 1, [a.summary for a in errors]
    assert errors[0].series == {"service": "shop", "model": "gpt-4o", "environment": "staging"}
    # wiki runs in one environment: no series of it carries one
    assert all("environment" not in a.series for a in report.episodes() if a.series.get("service") == "wiki")


def test_a_service_in_one_environment_adds_no_level(store: Any) -> None:
    report = anomalies.detect(store, Filter(start=END - 24 * H, end=END, services=("wiki",)), include_calls=False)
    assert "environment" not in report.by and all("environment" not in lv for lv in report.levels)

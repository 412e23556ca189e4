"""The Drift and Anomalies dashboard pages under Streamlit's AppTest, on seeded chDB data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.analytics import synthetic
from llmtrace.analytics.filters import Filter

PAGES = Path(__file__).resolve().parents[1] / "dashboard" / "app_pages"
END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
LAST_DAY = Filter(start=END - timedelta(days=1), end=END)
LAST_3_DAYS = Filter(start=END - timedelta(days=3), end=END)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"chdb://{tmp_path_factory.mktemp('pages')}"
    client = synthetic.seed_store(url, synthetic.reference_scenario(END))
    yield url
    common._client(url).close()  # the page's cached client holds a session too
    common._client.clear()
    common._cached.clear()
    client.close()


def page(store_url: str, name: str, f: Filter, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.session_state[common.FILTER_KEY] = f
    return at.run()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> Any:
    return next(m.value for m in at.metric if m.label == label)


def test_drift_page_opens_on_the_last_day_against_the_week_before_by_service(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(store_url, "drift.py", LAST_3_DAYS, monkeypatch)  # whatever the sidebar says
    clean(at)
    caption = at.caption[0].value
    assert (
        f"{END - timedelta(days=8):%Y-%m-%d %H:%M}" in caption
        and f"{END - timedelta(days=1):%Y-%m-%d %H:%M}" in caption
    )
    table = at.dataframe[0].value
    rows = table[(table["series"] == "service=summarizer")]
    assert rows.loc[rows["metric"] == "output_tokens", "verdict"].tolist() == ["major"]
    assert rows.loc[rows["metric"] == "output_tokens", "direction"].tolist() == ["changed"]
    assert set(table["verdict"]) <= {"major", "moderate"}
    assert int(metric(at, "Major drift")) >= 1


def test_drift_page_overlays_baseline_and_current_histograms(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = page(store_url, "drift.py", LAST_DAY, monkeypatch)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {trace["name"] for trace in spec["data"]} == {"baseline", "current"}
    assert spec["layout"]["barmode"] == "overlay"


def test_drift_page_compares_two_releases_older_to_newer_by_default(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(store_url, "drift.py", LAST_3_DAYS, monkeypatch)
    at.radio(key="drift_mode").set_value("release").run()
    assert (at.selectbox(key="drift_baseline").value, at.selectbox(key="drift_current").value) == ("v1.0.0", "v1.1.0")
    at.selectbox(key="drift_baseline").set_value("v1.0.0").run()
    at.selectbox(key="drift_current").set_value("v1.1.0").run()
    clean(at)
    assert "release=v1.0.0" in at.caption[0].value and "release=v1.1.0" in at.caption[0].value
    table = at.dataframe[0].value
    summarizer = table[table["series"] == "service=summarizer"]
    assert "major" in summarizer.loc[summarizer["metric"] == "output_tokens", "verdict"].tolist()


def test_drift_page_compares_prompt_versions(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = page(store_url, "drift.py", LAST_3_DAYS, monkeypatch)
    at.radio(key="drift_mode").set_value("prompt_version").run()
    assert {"3", "4"} <= set(at.selectbox(key="drift_baseline").options)
    at.selectbox(key="drift_baseline").set_value("3").run()
    at.selectbox(key="drift_current").set_value("4").run()
    clean(at)
    table = at.dataframe[0].value
    assert table.loc[table["metric"] == "output_tokens", "series"].tolist() == ["service=summarizer"]


def test_anomalies_page_opens_on_seven_days_and_lists_the_injected_episodes_with_trace_links(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(store_url, "anomalies.py", LAST_DAY, monkeypatch)  # the page's own 7-day window, not the sidebar's
    clean(at)
    assert at.selectbox(key="anomaly_window").value == "7d"
    table = at.dataframe[0].value
    latency = table[(table["metric"] == "latency_p95_ms") & (table["series"] == "service=search-api model=gpt-4o-mini")]
    assert len(latency) == 1  # 40 hours ago: outside the sidebar's last day
    assert latency["trace"].iloc[0].startswith("traces?trace=")
    assert int(metric(at, "Episodes")) == len(table[table["kind"] == "episode"])
    assert any("tested against its own recent past" in c.value for c in at.caption)


def test_anomalies_page_says_which_series_are_warming_up(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = page(store_url, "anomalies.py", LAST_DAY, monkeypatch)
    assert any("warming up: service=agent model=gpt-4o" in i.value for i in at.info)
    assert int(metric(at, "Warming up")) == 1


def test_anomalies_page_charts_the_chosen_episode_with_its_expected_line(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(store_url, "anomalies.py", LAST_DAY, monkeypatch)
    options = at.selectbox(key="anomaly_episode").options
    cost = next(i for i, text in enumerate(options) if "cost_per_call_usd" in text and "gpt-4o-mini" in text)
    at.selectbox(key="anomaly_episode").set_value(cost).run()
    clean(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in spec["data"]] == ["observed", "expected", "flagged"]
    assert 40 <= len(spec["data"][2]["x"]) <= 52  # the four hours of the cost jump, in 5-minute buckets
    assert spec["layout"]["shapes"]  # the episode is shaded


def test_anomalies_page_on_a_quiet_window_says_so(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = Filter(start=END - timedelta(days=5), end=END - timedelta(days=4))
    at = page(store_url, "anomalies.py", quiet, monkeypatch)
    at.selectbox(key="anomaly_window").set_value("sidebar").run()
    clean(at)
    assert any("No anomalies" in s.value for s in at.success)

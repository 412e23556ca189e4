"""Runaway users: one user id looping on a series is found and named; a nightly sync user, a new
customer adding 30 % for an hour and one long chat are not (tests/runaway_users.py, real chDB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace import cli
from llmtrace.analytics import anomalies
from llmtrace.analytics.anomalies_users import poisson_score, share_score
from llmtrace.analytics.filters import Filter
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner
from tests import runaway_users as gen

WINDOW = Filter(start=gen.END - timedelta(days=2), end=gen.END)
LOOP_END = gen.LOOP_START + timedelta(minutes=gen.LOOP_MINUTES)
PAGES = Path(__file__).resolve().parents[1] / "dashboard" / "app_pages"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"chdb://{tmp_path_factory.mktemp('runaway')}"
    client = connect(url)
    apply_migrations(client_runner(client), ttl_days=3650)  # fixed dates in the past: past any TTL
    gen.insert(client)
    yield url
    common._client(url).close()
    common._client.clear()
    common._cached.clear()
    client.close()


@pytest.fixture(scope="module")
def store(store_url: str) -> Any:
    return connect(store_url)


@pytest.fixture(scope="module")
def report(store: Any) -> anomalies.AnomalyReport:
    return anomalies.detect(store, WINDOW, now=gen.END)


def test_the_loop_is_one_calls_episode_of_its_series_naming_the_user(store: Any, report: Any) -> None:
    named = [a for a in report.episodes() if a.user]
    assert len(named) == 1
    a = named[0]
    assert (a.user, a.series, a.metric, a.direction) == (
        gen.LOOP_USER, {"service": gen.SERVICE, "model": gen.MODEL}, "calls", "up"
    )  # fmt: skip
    assert a.level == "service,model,user" and a.severity == "critical"
    assert gen.LOOP_START - timedelta(minutes=5) <= a.start <= gen.LOOP_START + timedelta(minutes=10)
    assert LOOP_END - timedelta(minutes=10) <= a.end <= LOOP_END + timedelta(minutes=10)
    assert a.observed is not None and a.expected is not None and a.observed >= 3 * a.expected
    assert f"from user {gen.LOOP_USER}" in a.summary and gen.LOOP_USER in a.measure
    assert f"user={gen.LOOP_USER}" in a.key
    users = store.query(
        "SELECT DISTINCT UserId FROM llm_calls WHERE TraceId IN {t:Array(String)}", parameters={"t": a.trace_ids}
    ).result_rows
    assert a.trace_ids and users == [(gen.LOOP_USER,)]  # example traces: the looping user's calls


def test_the_series_volume_alone_does_not_show_it(report: Any) -> None:
    """Why the per-user test exists: the series' own calls stay inside its noise."""
    assert not [a for a in report.episodes() if a.metric == "calls" and not a.user]


def test_sync_user_new_customer_and_a_long_chat_are_not_runaways(report: Any) -> None:
    assert {a.user for a in report.anomalies if a.user} == {gen.LOOP_USER}
    new_hour = (gen.NEW_START, gen.NEW_START + timedelta(hours=1))
    assert not [a for a in report.episodes() if a.start < new_hour[1] and new_hour[0] < a.end]


def test_on_the_stores_first_days_nobody_is_new(store: Any) -> None:
    """A week's window over the whole store: on its first two nights every user is new, so the sync
    user's first runs (96% of the series at 02:00) were runaways; a series that young has no record
    to hold a new user to (seen in the dashboard's 7-day view)."""
    week = anomalies.detect(store, Filter(start=gen.END - timedelta(days=7), end=gen.END), now=gen.END)
    named = {a.user for a in week.anomalies if a.user}
    assert gen.LOOP_USER in named and gen.SYNC_USER not in named


def test_without_calls_among_the_metrics_no_user_is_judged(store: Any) -> None:
    assert not [a for a in anomalies.detect(store, WINDOW, metrics=["error_rate"], now=gen.END).anomalies if a.user]


def test_the_scores_tails() -> None:
    assert poisson_score(10, 1.0) == pytest.approx(6.953, abs=1e-3)  # P(Poisson(1) >= 10) = 1.114e-7
    assert poisson_score(3, 5.0) == 0.0
    # the Chernoff bound is below the exact score: P(Binomial(100, 0.5) >= 70) = 3.93e-5 (score 4.41)
    assert 3.5 < share_score(70, 100, 0.5) < 4.41
    assert share_score(40, 100, 0.5) == 0.0


def test_anomalies_command_names_the_user_in_table_and_json(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["anomalies", "--url", store_url, "--since", "48h", "--until", gen.END.isoformat()]
    assert cli.main(base) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "user=" in x)
    assert f"service={gen.SERVICE} model={gen.MODEL} user={gen.LOOP_USER}" in line and "calls" in line
    assert cli.main([*base, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [a["user"] for a in doc["anomalies"] if a["user"]] == [gen.LOOP_USER]


def test_anomalies_page_lists_the_user_and_charts_its_series(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.URL_ENV, store_url)
    at = AppTest.from_file(str(PAGES / "anomalies.py"), default_timeout=60)
    at.session_state[common.FILTER_KEY] = WINDOW
    at.run()
    at.selectbox(key="anomaly_window").set_value("sidebar").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.loc[table["user"] != "", "user"]) == [gen.LOOP_USER]
    options = at.selectbox(key="anomaly_episode").options
    at.selectbox(key="anomaly_episode").set_value(next(i for i, o in enumerate(options) if gen.LOOP_USER in o)).run()
    assert not at.exception and not at.error
    assert any(f"Runaway user: {gen.LOOP_USER}:" in m.value for m in at.text)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    x = spec["data"][0]["x"]  # the series' calls per 5 minutes, 12 h either side (to the window's end)
    assert len(x) >= 12 * 12 and f"{gen.LOOP_START:%Y-%m-%dT%H:%M}:00" in x

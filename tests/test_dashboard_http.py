"""Pages against a real ``llmtrace server`` over HTTP, where a query without rows returns a frame
without columns (chDB in-process keeps them), so "nothing matches" must still render."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.demo import scenarios
from tests.server_process import ServerProcess

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "streamlit_app.py")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("http-pages")).wait_ready()
    client = server.client()
    sql, params = scenarios.history_sql(400, 1, time.time_ns() - 120_000_000_000, seed=7)
    client.command(sql, parameters=params)
    client.close()
    yield server
    server.stop()


@pytest.fixture
def app(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv(common.URL_ENV, server.http_url)
    yield AppTest.from_file(APP, default_timeout=60).run()
    common._cached.clear()


def test_the_cost_page_renders_a_selection_where_every_call_has_a_price(server: ServerProcess, app: AppTest) -> None:
    client = server.client()
    clean = client.query(
        "SELECT RequestModel FROM llm_calls GROUP BY RequestModel HAVING countIf(CostUsd IS NULL) = 0 "
        "ORDER BY count() LIMIT 1"
    ).result_rows
    client.close()
    assert clean, "the seeded history should have a model without failed or unpriced calls"
    app.multiselect(key="filter_models").set_value([clean[0][0]]).run()
    app.switch_page("app_pages/cost.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("has a price" in c.value for c in app.caption)


def test_the_traces_page_renders_a_search_that_finds_nothing(app: AppTest) -> None:
    app.switch_page("app_pages/traces.py").run()
    app.text_input(key="trace_text").set_value("no trace says this").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("No traces match" in i.value for i in app.info)

"""Every dashboard page under Streamlit's AppTest, against seeded and empty chDB stores.

The store is seeded through ``otel_traces`` (the materialized views fill llm_calls and the
rollups), and the numbers the pages show are checked against direct SQL on ``llm_calls``
over the filter the app actually used. The clock is fixed (:data:`NOW`, a UTC midnight) and the
seed too, so every run sees the same rows in the same windows: the newest trace, and whether
one of its spans failed, never depend on when the tests run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.analytics import cost, filters
from llmtrace.analytics.filters import Filter
from llmtrace.dashboard_check import SPAN_ERROR_ICON
from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner
from tests.server_process import free_port

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "streamlit_app.py")
PAGES = ["app_pages/overview.py", "app_pages/traces.py", "app_pages/cost.py", "app_pages/latency.py"]
ROWS = 5000
NOW = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
SEEDED_UNTIL_NS = int((NOW - timedelta(minutes=2)).timestamp()) * 10**9


class Stores:
    def __init__(self, root: Path) -> None:
        self.seeded_url = f"chdb://{root}"
        self.empty_url = f"chdb://{root}?database=empty"
        self.client = connect(self.seeded_url)
        apply_migrations(client_runner(self.client))
        self.client.command("CREATE DATABASE IF NOT EXISTS empty")
        self.empty = connect(self.empty_url)
        apply_migrations(client_runner(self.empty))
        sql, params = scenarios.history_sql(ROWS, 10, SEEDED_UNTIL_NS, seed=7)
        self.client.command(sql, parameters=params)

    def scalar(self, sql: str, f: Filter) -> Any:
        return self.client.query(f"{sql} FROM llm_calls WHERE {f.where()}", parameters=f.params()).result_rows[0][0]

    def close(self) -> None:
        for url in (self.seeded_url, self.empty_url):  # the dashboard's cached clients hold sessions too
            common._client(url).close()
        common._client.clear()
        common._cached.clear()
        self.empty.close()
        self.client.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    s = Stores(tmp_path_factory.mktemp("dashboard"))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every "now" the pages use is :data:`NOW`."""
    for module in (filters, cost):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)


@pytest.fixture
def app(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(common.URL_ENV, stores.seeded_url)
    return AppTest.from_file(APP, default_timeout=60).run()


@pytest.fixture
def empty_app(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(common.URL_ENV, stores.empty_url)
    return AppTest.from_file(APP, default_timeout=60).run()


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def used_filter(at: AppTest) -> Filter:
    return at.session_state[common.FILTER_KEY]  # type: ignore[no-any-return]


def page_errors(at: AppTest) -> list[str]:
    """Exceptions and error boxes of the page itself; a failed span's box on the Traces page is data."""
    return [e.value for e in at.exception] + [e.value for e in at.error if e.icon != SPAN_ERROR_ICON]


def assert_clean(at: AppTest) -> None:
    assert not page_errors(at)


def test_overview_calls_metric_equals_a_direct_count(stores: Stores, app: AppTest) -> None:
    assert_clean(app)
    assert metric(app, "Calls") == common.fmt_int(stores.scalar("SELECT count()", used_filter(app)))


def test_overview_figures_over_seven_days_come_from_the_rollup_and_equal_direct_sql(
    stores: Stores, app: AppTest
) -> None:
    app.radio(key="time_range").set_value("7d").run()
    f = used_filter(app)
    assert f.uses_rollup
    assert metric(app, "Calls") == common.fmt_int(stores.scalar("SELECT count()", f))
    assert metric(app, "Spend") == common.fmt_usd(stores.scalar("SELECT sum(CostUsd)", f))
    assert metric(app, "Unpriced calls") == common.fmt_int(stores.scalar("SELECT countIf(CostStatus = 'unpriced')", f))
    tokens = stores.scalar("SELECT sum(InputTokens + OutputTokens)", f)
    assert metric(app, "Tokens") == common.fmt_tokens(tokens)


def test_overview_shows_latency_and_ttft_percentiles_with_their_change(app: AppTest) -> None:
    shown = {m.label: m for m in app.metric}
    for label in ("Latency p50", "Latency p95", "Latency p99", "TTFT p50", "TTFT p95"):
        assert shown[label].value.endswith(("ms", " s"))
        assert shown[label].delta.endswith(("%", "×"))


def test_choosing_a_service_filters_every_number(stores: Stores, app: AppTest) -> None:
    app.multiselect(key="filter_services").set_value(["summarizer"]).run()
    f = used_filter(app)
    assert f.services == ("summarizer",)
    assert metric(app, "Calls") == common.fmt_int(stores.scalar("SELECT count()", f))
    assert metric(app, "Calls") != common.fmt_int(stores.scalar("SELECT count()", Filter(f.start, f.end)))


def test_a_custom_date_range_sets_whole_utc_days(stores: Stores, app: AppTest) -> None:
    app.radio(key="time_range").set_value("Custom").run()
    today = date.today()
    app.date_input(key="custom_dates").set_value((today - timedelta(days=2), today)).run()
    f = used_filter(app)
    assert f.duration == timedelta(days=3)
    assert metric(app, "Calls") == common.fmt_int(stores.scalar("SELECT count()", f))


def test_a_link_with_range_opens_that_window_and_the_url_follows_the_choice(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.URL_ENV, stores.seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["range"] = "7d"
    at.run()
    assert_clean(at)
    assert at.radio(key="time_range").value == "7d"
    assert used_filter(at).duration == timedelta(days=7)
    at.radio(key="time_range").set_value("1h").run()
    assert at.query_params["range"] == "1h"


def test_a_link_with_an_unknown_range_says_so_and_shows_a_day(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.URL_ENV, stores.seeded_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["range"] = "fortnight"
    at.run()
    assert not at.exception
    assert any("fortnight" in w.value for w in at.warning)
    assert used_filter(at).duration == timedelta(days=1)


@pytest.mark.parametrize("page", [*PAGES, "app_pages/sql.py"])
def test_every_page_renders_without_errors(app: AppTest, page: str) -> None:
    app.switch_page(page).run()
    assert_clean(app)


def test_cost_page_spend_and_unpriced_calls_equal_direct_sql(stores: Stores, app: AppTest) -> None:
    app.radio(key="time_range").set_value("7d").run()
    app.switch_page("app_pages/cost.py").run()
    f = used_filter(app)
    assert metric(app, "Spend") == common.fmt_usd(stores.scalar("SELECT sum(CostUsd)", f))
    assert metric(app, "Priced calls") == common.fmt_int(stores.scalar("SELECT countIf(CostUsd IS NOT NULL)", f))
    assert metric(app, "Unpriced calls") == common.fmt_int(stores.scalar("SELECT countIf(CostStatus = 'unpriced')", f))


def test_cost_page_projects_the_window_spend_to_a_month(stores: Stores, app: AppTest) -> None:
    app.radio(key="time_range").set_value("7d").run()
    app.switch_page("app_pages/cost.py").run()
    spend = stores.scalar("SELECT sum(CostUsd)", used_filter(app))
    assert metric(app, "Projected per month") == common.fmt_usd(spend * 30 / 7)


def test_cost_page_lists_spend_per_user(stores: Stores, app: AppTest) -> None:
    app.switch_page("app_pages/cost.py").run()
    app.radio(key="cost_dimension").set_value("user").run()
    table = app.dataframe[0].value  # spend by dimension comes first
    f = used_filter(app)
    top_user, top_spend = stores.client.query(
        f"SELECT UserId, sum(CostUsd) AS s FROM llm_calls WHERE {f.where()} GROUP BY UserId ORDER BY s DESC LIMIT 1",
        parameters=f.params(),
    ).result_rows[0]
    assert (table["user"].iloc[0], table["cost_usd"].iloc[0]) == (top_user, pytest.approx(top_spend))


def test_traces_page_opens_the_trace_typed_into_the_id_box(stores: Stores, app: AppTest) -> None:
    trace_id, spans = stores.client.query(
        "SELECT TraceId, count() FROM otel_traces GROUP BY TraceId HAVING count() = 2 LIMIT 1"
    ).result_rows[0]
    app.switch_page("app_pages/traces.py").run()
    app.text_input(key="trace_id_input").set_value(trace_id).run()
    assert_clean(app)
    assert metric(app, "Spans") == f"{spans} ({spans} LLM)"
    assert any(trace_id in h.value for h in app.subheader)


def test_a_trace_link_from_another_page_opens_that_trace(stores: Stores, app: AppTest) -> None:
    app.switch_page("app_pages/cost.py").run()
    link = app.dataframe[1].value["trace_id"].iloc[0]  # most expensive calls, as "traces?trace=<id>"
    trace_id = link.split("trace=")[1]
    app.query_params["trace"] = trace_id
    app.switch_page("app_pages/traces.py").run()
    assert any(trace_id in h.value for h in app.subheader)


def test_traces_page_text_search_keeps_matching_traces_only(stores: Stores, app: AppTest) -> None:
    app.radio(key="time_range").set_value("30d").run()
    app.switch_page("app_pages/traces.py").run()
    app.text_input(key="trace_text").set_value('request 42"').run()
    table = app.dataframe[0].value
    assert len(table) == 1
    assert table["calls"].iloc[0] == 2


def test_sql_page_runs_a_query_and_offers_a_csv_download(app: AppTest) -> None:
    app.switch_page("app_pages/sql.py").run()
    app.text_area(key="sql_text").set_value("SELECT count() AS n FROM llm_calls").run()
    app.button(key="sql_run").click().run()
    assert_clean(app)
    assert app.dataframe[0].value["n"].iloc[0] == ROWS
    assert app.get("download_button")


def test_sql_page_shows_the_servers_refusal_of_a_write(app: AppTest) -> None:
    app.switch_page("app_pages/sql.py").run()
    app.text_area(key="sql_text").set_value("DROP TABLE llm_calls").run()
    app.button(key="sql_run").click().run()
    assert "readonly" in app.error[0].value.lower()


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_store_shows_how_to_send_data(empty_app: AppTest, page: str) -> None:
    empty_app.switch_page(page).run()
    assert_clean(empty_app)
    assert any("llmtrace.instrument" in c.value for c in empty_app.code)


def test_the_sql_console_works_on_an_empty_store(empty_app: AppTest) -> None:
    empty_app.switch_page("app_pages/sql.py").run()
    empty_app.button(key="sql_run").click().run()
    assert_clean(empty_app)


def test_an_unreachable_store_names_the_url_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(common.URL_ENV, url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    message = at.error[0].value
    assert url in message and "llmtrace server" in message and common.URL_ENV in message


def test_a_trace_with_a_failed_span_shows_the_failure_and_is_not_a_page_error(stores: Stores, app: AppTest) -> None:
    trace_id, error_type = stores.client.query(
        "SELECT TraceId, SpanAttributes['error.type'] FROM otel_traces WHERE StatusCode = 'Error' "
        "ORDER BY Timestamp DESC LIMIT 1"
    ).result_rows[0]
    app.switch_page("app_pages/traces.py").run()
    app.text_input(key="trace_id_input").set_value(trace_id).run()
    assert_clean(app)
    assert next(e.value for e in app.error if e.icon == SPAN_ERROR_ICON).startswith(error_type)


def test_a_failed_page_is_told_from_a_failed_span(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.URL_ENV, f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert page_errors(at)  # the unreachable store's error box counts


def test_cost_page_unpriced_card_equals_the_unpriced_table_and_failed_calls_are_apart(
    stores: Stores, app: AppTest
) -> None:
    app.radio(key="time_range").set_value("7d").run()
    app.switch_page("app_pages/cost.py").run()
    f = used_filter(app)
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["provider", "model", "unpriced_calls"])
    assert "reason" not in table
    assert metric(app, "Unpriced calls") == common.fmt_int(table["unpriced_calls"].sum())
    failed = stores.scalar("SELECT countIf(CostStatus = 'no_usage')", f)
    assert any(f"{common.fmt_int(failed)} failed calls" in c.value for c in app.caption)
    assert not any("README" in c.value for c in app.caption)


def test_calls_arriving_after_the_empty_store_message_show_at_once(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`llmtrace up --demo` opens a page before the demo lands: a cached "empty" must not hide the data."""
    url = f"{stores.seeded_url}?database=later"
    stores.client.command("CREATE DATABASE IF NOT EXISTS later")
    later = connect(url)
    try:
        apply_migrations(client_runner(later))
        monkeypatch.setenv(common.URL_ENV, url)
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert any("llmtrace.instrument" in c.value for c in at.code)
        sql, params = scenarios.history_sql(200, 1, SEEDED_UNTIL_NS, seed=7)
        later.command(sql, parameters=params)
        at.run()
        assert_clean(at)
        assert not any("llmtrace.instrument" in c.value for c in at.code)
        assert metric(at, "Calls") != "0"
    finally:
        common._client(url).close()
        later.close()


def test_a_window_still_empty_while_the_store_fills_is_not_cached(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`llmtrace up --demo` renders the Overview while its week of history is still landing: a store
    holding only older days answered "no calls in the last day", and that answer was cached for 30 s,
    so a page opened as the demo said "loaded" showed it (the browser test failed so in CI once)."""
    url = f"{stores.seeded_url}?database=filling"
    stores.client.command("CREATE DATABASE IF NOT EXISTS filling")
    filling = connect(url)
    try:
        apply_migrations(client_runner(filling))
        three_days_ago = SEEDED_UNTIL_NS - 3 * 86400 * 10**9
        sql, params = scenarios.history_sql(200, 2, three_days_ago, seed=7)  # the older days only
        filling.command(sql, parameters=params)
        monkeypatch.setenv(common.URL_ENV, url)
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert any("No LLM calls in the last 1 day" in i.value for i in at.info), [i.value for i in at.info]
        sql, params = scenarios.history_sql(200, 1, SEEDED_UNTIL_NS, seed=8)  # the last day lands
        filling.command(sql, parameters=params)
        at.run()  # within the cache's 30 s
        assert_clean(at)
        assert metric(at, "Calls") != "0"
        assert not any("No LLM calls" in i.value for i in at.info)
    finally:
        common._client(url).close()
        filling.close()

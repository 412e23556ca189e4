"""The Prompts and Sessions & users pages, the user/session sidebar filters and scores on the Traces page,
under Streamlit's AppTest against a seeded chDB store (the demo history plus score spans written into
``otel_traces``, so ``llm_scores`` fills through its materialized view). Figures are checked against
direct SQL over the filter the app used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.analytics import cost, filters
from tests.test_dashboard_app import APP, NOW, Stores, assert_clean, metric, used_filter

# One "helpful" score span per trace for every third trace, value = (trace hash % 100) / 100.
SCORE_SPANS = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, SpanAttributes)
SELECT t + toIntervalMillisecond(10), TraceId, lower(hex(cityHash64(TraceId, 'score'))), '', 'llmtrace.score helpful',
       'Internal', 'scorer',
       map('llmtrace.score.name', 'helpful', 'llmtrace.score.value', toString((cityHash64(TraceId) % 100) / 100),
           'llmtrace.score.data_type', 'numeric')
FROM (SELECT TraceId, max(Timestamp) AS t FROM llm_calls GROUP BY TraceId)
WHERE cityHash64(TraceId) % 3 = 0
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    s = Stores(tmp_path_factory.mktemp("people"))
    s.client.command(SCORE_SPANS)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (filters, cost):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)


@pytest.fixture
def app(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(common.URL_ENV, stores.seeded_url)
    return AppTest.from_file(APP, default_timeout=60).run()


def frame_with(at: AppTest, column: str) -> object:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_the_scores_reach_llm_scores(stores: Stores) -> None:
    assert stores.client.query("SELECT count() > 100 FROM llm_scores").result_rows == [(1,)]


def test_prompts_page_lists_every_prompt_version_with_direct_sql_figures(stores: Stores, app: AppTest) -> None:
    app.radio(key="time_range").set_value("7d").run()
    app.switch_page("app_pages/prompts.py").run()
    assert_clean(app)
    f = used_filter(app)
    table = frame_with(app, "version")
    versions = stores.client.query(
        f"SELECT PromptName, PromptSystemHash, count() FROM llm_calls WHERE {f.where()} "
        "GROUP BY PromptName, PromptSystemHash, PromptTemplateHash ORDER BY PromptName, PromptSystemHash",
        parameters=f.params(),
    ).result_rows
    got = sorted(zip(table["prompt"], table["system_hash"], table["calls"], strict=True))
    assert got == [tuple(v) for v in versions]
    assert sorted(table.loc[table["prompt"] == "summarize", "tagged"]) == ["3", "4"]
    assert metric(app, "Prompt versions") == str(len(versions))
    assert metric(app, "Tags with several versions") == "0"  # the history has one text per tag
    assert "score: helpful" in table.columns and table["score: helpful"].between(0, 1).all()


def test_prompts_page_shows_score_means_per_release_and_model(stores: Stores, app: AppTest) -> None:
    app.switch_page("app_pages/prompts.py").run()
    means = frame_with(app, "mean")
    assert "release" in means.columns and set(means["score"]) == {"helpful"}
    app.radio(key="score_group").set_value("model").run()
    assert "model" in frame_with(app, "mean").columns


def test_sessions_page_lists_sessions_and_a_selected_sessions_traces_in_order(stores: Stores, app: AppTest) -> None:
    app.switch_page("app_pages/sessions.py").run()
    assert_clean(app)
    f = used_filter(app)
    listing = frame_with(app, "session")
    sessions = stores.scalar("SELECT uniqExactIf(SessionId, SessionId != '')", f)
    assert len(listing) == min(500, sessions) and metric(app, "Sessions") == common.fmt_int(sessions)
    assert metric(app, "Users") == common.fmt_int(stores.scalar("SELECT uniqExactIf(UserId, UserId != '')", f))
    newest = listing["session"].iloc[int(listing["traces"].head(20).to_numpy().argmax())]  # shown until a click
    assert any(newest in h.value for h in app.subheader)
    traces = frame_with(app, "step")
    expected = stores.client.query(
        f"SELECT TraceId FROM llm_calls WHERE {f.where()} AND SessionId = {{s:String}} "
        "GROUP BY TraceId ORDER BY min(Timestamp), TraceId",
        parameters=f.params(s=newest),
    ).result_rows
    assert len(expected) >= 2, "a session of several traces, so their order is checked"
    assert [link.split("trace=")[1] for link in traces["trace_id"]] == [r[0] for r in expected]
    assert traces["step"].tolist() == list(range(1, len(expected) + 1))


def test_users_view_counts_each_users_sessions(stores: Stores, app: AppTest) -> None:
    app.switch_page("app_pages/sessions.py").run()
    app.radio(key="people_kind").set_value("Users").run()
    assert_clean(app)
    f = used_filter(app)
    users = frame_with(app, "user").set_index("user")
    top = users.index[0]
    direct = stores.client.query(
        f"SELECT uniqExact(SessionId), count() FROM llm_calls WHERE {f.where()} AND UserId = {{u:String}}",
        parameters=f.params(u=top),
    ).result_rows[0]
    assert (users.loc[top, "sessions"], users.loc[top, "calls"]) == tuple(direct)


def test_choosing_a_user_in_the_sidebar_filters_the_overview(stores: Stores, app: AppTest) -> None:
    user = app.multiselect(key="filter_users").options[0]
    app.multiselect(key="filter_users").set_value([user]).run()
    assert_clean(app)
    f = used_filter(app)
    assert f.users == (user,)
    assert metric(app, "Calls") == common.fmt_int(stores.scalar("SELECT count()", f))
    assert stores.scalar("SELECT uniqExact(UserId)", f) == 1


def test_choosing_a_session_keeps_only_its_traces(stores: Stores, app: AppTest) -> None:
    session = app.multiselect(key="filter_sessions").options[0]
    app.multiselect(key="filter_sessions").set_value([session]).run()
    app.switch_page("app_pages/traces.py").run()
    assert_clean(app)
    f = used_filter(app)
    assert len(frame_with(app, "trace_id")) == stores.scalar("SELECT uniqExact(TraceId)", f)


def test_traces_page_shows_each_traces_scores(stores: Stores, app: AppTest) -> None:
    trace_id, value = stores.client.query(
        "SELECT TraceId, Value FROM llm_scores ORDER BY Timestamp DESC LIMIT 1"
    ).result_rows[0]
    app.switch_page("app_pages/traces.py").run()
    app.text_input(key="trace_id_input").set_value(trace_id).run()
    assert_clean(app)
    scores = frame_with(app, "on")
    assert scores[["name", "value", "on"]].values.tolist() == [["helpful", value, "whole trace"]]
    system_hash = stores.client.query(
        "SELECT any(PromptSystemHash) FROM llm_calls WHERE TraceId = {t:String}", parameters={"t": trace_id}
    ).result_rows[0][0]
    assert any(f"version `sys {system_hash[:6]} · tpl " in m.value for m in app.markdown)
    listed = frame_with(app, "scores")
    assert listed["scores"].notna().any()

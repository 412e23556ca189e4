"""Sessions, users, prompt versions and per-trace scores, read back from chDB.

The data is real: the openai SDK against the fake LLM service inside ``llmtrace.trace`` blocks,
``llmtrace.prompt(..., variables=)`` and ``llmtrace.score``, exported into a chDB store.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

import llmtrace
from llmtrace.analytics import prompts, scores, sessions
from llmtrace.analytics.filters import Filter
from llmtrace.store.chdb_client import ChdbClient
from tests.chdb_spans import instrumented_into
from tests.server_process import ServerProcess

SYSTEM_V1 = "You are a weather assistant."
SYSTEM_V2 = "You are a weather assistant. Answer in one sentence."
ASK = "What is the weather in {city}?"


@dataclass
class Traffic:
    store: ChdbClient
    traces: dict[str, str]  # label -> trace id
    window: Filter


def _turn(client: openai.OpenAI, user: str, session: str, system: str, city: str, *, fail: bool = False) -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": ASK.format(city=city)}]
    headers = {"x-fake-status": "500"} if fail else {}
    variables = {"city": city}
    with llmtrace.trace("turn", user_id=user, session_id=session) as span:
        with llmtrace.prompt("weather", version="1", variables=variables), suppress(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_headers=headers)  # type: ignore[arg-type]
        return format(span.get_span_context().trace_id, "032x")


@pytest.fixture(scope="module")
def traffic(module_store: ChdbClient, fake_llm: Any) -> Traffic:
    """ann: session s1 (two turns, prompt v1, scored 1.0 and 0.5); bob: session s2 (prompt v2, one
    failed call, scored 0.0); a call outside any session or user. Made once: every test only reads it."""
    with instrumented_into(module_store):
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
        traces = {
            "ann-1": _turn(client, "ann", "s1", SYSTEM_V1, "Paris"),
            "ann-2": _turn(client, "ann", "s1", SYSTEM_V1, "Oslo"),
            "bob-1": _turn(client, "bob", "s2", SYSTEM_V2, "Rome", fail=True),
        }
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        llmtrace.score("helpful", 1.0, trace_id=traces["ann-1"])
        llmtrace.score("helpful", 0.5, trace_id=traces["ann-2"])
        llmtrace.score("helpful", False, trace_id=traces["bob-1"])
        llmtrace.score("topic", "weather", trace_id=traces["bob-1"])
        assert llmtrace.flush(10)
    return Traffic(module_store, traces, Filter.last(timedelta(hours=1)))


def test_sessions_list_their_users_traces_calls_errors_cost_and_score_means(traffic: Traffic) -> None:
    rows = sessions.listing(traffic.store, traffic.window, "session").set_index("session")
    assert sorted(rows.index) == ["s1", "s2"]
    assert rows.loc["s1", ["users", "traces", "calls", "errors"]].tolist() == ["ann", 2, 2, 0]
    assert rows.loc["s2", ["users", "traces", "calls", "errors"]].tolist() == ["bob", 1, 1, 1]
    assert rows.loc["s1", "score: helpful"] == pytest.approx(0.75)
    assert rows.loc["s2", "score: helpful"] == 0.0
    assert rows.loc["s1", "cost_usd"] > 0
    assert rows.index[0] == "s2", "most recently active first"


def test_totals_count_calls_with_a_session_or_user_only(traffic: Traffic) -> None:
    got = sessions.totals(traffic.store, traffic.window)
    assert {k: got[k] for k in ("sessions", "users", "traces", "calls", "errors")} == {
        "sessions": 2, "users": 2, "traces": 3, "calls": 3, "errors": 1,
    }  # fmt: skip
    assert got["cost_usd"] > 0


def test_users_list_their_session_count(traffic: Traffic) -> None:
    rows = sessions.listing(traffic.store, traffic.window, "user").set_index("user")
    assert rows.loc[["ann", "bob"], ["sessions", "traces", "calls"]].values.tolist() == [[1, 2, 2], [1, 1, 1]]


def test_a_sessions_traces_come_in_the_order_they_happened(traffic: Traffic) -> None:
    rows = sessions.traces_of(traffic.store, traffic.window, "session", "s1")
    assert rows["trace_id"].tolist() == [traffic.traces["ann-1"], traffic.traces["ann-2"]]
    assert rows["user"].tolist() == ["ann", "ann"] and rows["prompts"].tolist() == ["weather", "weather"]
    assert sessions.traces_of(traffic.store, traffic.window, "user", "bob")["trace_id"].tolist() == [
        traffic.traces["bob-1"]
    ]


def test_the_user_and_session_filters_narrow_every_llm_calls_query(traffic: Traffic) -> None:
    only_bob = replace(traffic.window, users=("bob",))
    assert sessions.listing(traffic.store, only_bob, "session")["session"].tolist() == ["s2"]
    only_s1 = replace(traffic.window, sessions=("s1",))
    assert sessions.listing(traffic.store, only_s1, "user")["user"].tolist() == ["ann"]
    week = Filter.last(timedelta(days=7), users=("ann",))
    assert not week.uses_rollup, "user ids are not in the rollups: a user filter reads llm_calls"
    assert sessions.ids(traffic.store, only_bob) == {"sessions": ["s2", "s1"], "users": ["bob", "ann"]}


def test_listing_refuses_an_unknown_kind(traffic: Traffic) -> None:
    with pytest.raises(ValueError, match="choose one of session, user"):
        sessions.listing(traffic.store, traffic.window, "tenant; DROP TABLE x")


def test_an_edited_system_prompt_is_a_new_prompt_version_with_its_own_figures(traffic: Traffic) -> None:
    rows = prompts.prompt_versions(traffic.store, traffic.window)
    rows = rows[rows["prompt"] == "weather"].sort_values("first_seen")
    assert len(rows) == 2, "other cities (a declared variable) are not new versions"
    v1, v2 = rows.iloc[0], rows.iloc[1]
    assert v1["system_hash"] != v2["system_hash"] and v1["template_hash"] == v2["template_hash"]
    assert (v1["calls"], v1["errors"], v1["tagged"]) == (2, 0, "1")
    assert (v2["calls"], v2["errors"], v2["error_rate"]) == (1, 1, 1.0)
    assert v1["score: helpful"] == pytest.approx(0.75) and v2["score: helpful"] == 0.0
    assert v1["p95_ms"] >= v1["p50_ms"] > 0


def test_calls_per_version_add_up_to_each_versions_calls(traffic: Traffic) -> None:
    versions = prompts.prompt_versions(traffic.store, traffic.window)
    per_bucket = prompts.calls_per_version(traffic.store, traffic.window, list(versions["key"]))
    assert per_bucket.groupby("key")["calls"].sum().to_dict() == dict(
        zip(versions["key"], versions["calls"], strict=True)
    )
    assert prompts.calls_per_version(traffic.store, traffic.window, ["no/such/version"]).empty


def test_untagged_calls_get_a_version_from_their_hashes(traffic: Traffic) -> None:
    rows = prompts.prompt_versions(traffic.store, traffic.window)
    untagged = rows[rows["prompt"] == ""]
    assert len(untagged) == 1 and untagged["calls"].tolist() == [1] and untagged["system_hash"].tolist() == [""]


def test_per_trace_scores_summarise_means_and_labels(traffic: Traffic) -> None:
    rows = scores.per_trace(traffic.store, list(traffic.traces.values())).set_index("trace_id")
    assert rows.loc[traffic.traces["ann-2"], "scores"] == "helpful 0.5"
    assert rows.loc[traffic.traces["bob-1"], "scores"] == "helpful 0 · topic weather"
    assert scores.per_trace(traffic.store, []).empty


def test_score_means_per_prompt_version_tag_and_model(traffic: Traffic) -> None:
    by_model = scores.score_means(traffic.store, traffic.window, by="model")
    assert by_model[["model", "score", "scores", "mean"]].values.tolist() == [
        ["gpt-4o-mini", "helpful", 3, pytest.approx(0.5)]
    ]
    by_version = scores.score_means(traffic.store, traffic.window, by="prompt_version")
    assert by_version[["prompt_version", "mean"]].values.tolist() == [["1", pytest.approx(0.5)]]


def test_every_reader_answers_an_empty_store_over_http(tmp_path: Path) -> None:
    """Over HTTP an empty result has no columns at all (chDB's has them): nothing may index into it."""
    server = ServerProcess(tmp_path / "data").wait_ready()
    try:
        client, window = server.client(), Filter.last(timedelta(hours=1))
        assert sessions.ids(client, window) == {"sessions": [], "users": []}
        assert sessions.totals(client, window)["sessions"] == 0
        assert sessions.listing(client, window, "user").empty
        assert sessions.traces_of(client, window, "session", "s1").empty
        assert prompts.prompt_versions(client, window).empty
        assert prompts.calls_per_version(client, window, []).empty
        assert scores.per_trace(client, ["0" * 32]).empty
        assert scores.means_by(client, window, "Release").columns.tolist() == ["grp"]
    finally:
        server.stop()

"""Trace search and the span tree of one trace, on hand-written spans in real chDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from llmtrace import semconv as sc
from llmtrace.analytics import traces
from llmtrace.analytics.filters import Filter
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

NOW_NS = time.time_ns() - 3_600_000_000_000
WINDOW = Filter(
    start=datetime.fromtimestamp(NOW_NS / 1e9, timezone.utc) - timedelta(minutes=10),
    end=datetime.fromtimestamp(NOW_NS / 1e9, timezone.utc) + timedelta(minutes=10),
)
AGENT_TRACE = "a" * 32
PLAIN_TRACE = "b" * 32


def text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


def span(
    trace_id: str, span_id: str, parent: str, start_ms: float, duration_ms: float, name: str, **attrs: Any
) -> tuple[Any, ...]:
    status = attrs.pop("status", "Unset")
    llm = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai"} if attrs else {}
    values = {**llm, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in attrs.items()}}
    return (
        NOW_NS + int(start_ms * 1e6), trace_id, span_id, parent, "", name, "Client" if attrs else "Internal",
        "support-bot", {"service.name": "support-bot"}, "test", "", values, int(duration_ms * 1e6), status, "",
        [], [], [], [], [], [], [],
    )  # fmt: skip


AGENT_SPANS = [
    span(AGENT_TRACE, "1" * 16, "", 0, 900, "handle ticket"),
    span(
        AGENT_TRACE, "2" * 16, "1" * 16, 10, 300, "chat gpt-4o",
        **{sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_INPUT_TOKENS: "120", sc.USAGE_OUTPUT_TOKENS: "30",
           sc.COST_USD: "0.0006", sc.RESPONSE_FINISH_REASONS: ["tool_calls"],
           sc.INPUT_MESSAGES: [text("user", "Where is my parcel zebra-42?")],
           sc.OUTPUT_MESSAGES: [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
               {"type": "tool_call", "id": "call_1", "name": "track", "arguments": {"id": "zebra-42"}}]}]},
    ),
    span(
        AGENT_TRACE, "3" * 16, "1" * 16, 400, 450, "chat gpt-4o", status="Error",
        **{sc.REQUEST_MODEL: "gpt-4o", sc.ERROR_TYPE: "openai.RateLimitError"},
    ),
]  # fmt: skip
PLAIN_SPANS = [
    span(
        PLAIN_TRACE, "4" * 16, "", 60_000, 200, "chat gpt-4o-mini",
        **{sc.REQUEST_MODEL: "gpt-4o-mini", sc.USAGE_INPUT_TOKENS: "10", sc.USAGE_OUTPUT_TOKENS: "5",
           sc.INPUT_MESSAGES: [text("user", "hello")]},
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('traces')}")
    apply_migrations(client_runner(client))
    client.insert("otel_traces", AGENT_SPANS + PLAIN_SPANS, column_names=OTEL_TRACES_COLUMNS)
    yield client
    client.close()


def test_traces_are_listed_newest_first_with_their_calls_and_cost(store: Any) -> None:
    found = traces.list_traces(store, WINDOW)
    assert list(found["trace_id"]) == [PLAIN_TRACE, AGENT_TRACE]
    agent = found.set_index("trace_id").loc[AGENT_TRACE]
    assert (agent["calls"], agent["errors"], agent["tokens"]) == (2, 1, 150)
    assert agent["cost_usd"] == pytest.approx(0.0006)


def test_a_trace_without_any_priced_call_shows_no_cost_rather_than_zero(store: Any) -> None:
    plain = traces.list_traces(store, WINDOW).set_index("trace_id").loc[PLAIN_TRACE]
    assert plain["unpriced_calls"] == 1
    assert pd.isna(plain["cost_usd"])


def test_text_search_finds_the_trace_whose_prompt_contains_the_words(store: Any) -> None:
    found = traces.list_traces(store, WINDOW, text="ZEBRA-42")
    assert list(found["trace_id"]) == [AGENT_TRACE]


def test_text_search_looks_only_at_content_not_other_attributes(store: Any) -> None:
    """Both traces carry "gpt-4o" in their request model attribute, neither in a prompt or reply."""
    assert traces.list_traces(store, WINDOW, text="gpt-4o").empty
    assert list(traces.list_traces(store, WINDOW, text="hello")["trace_id"]) == [PLAIN_TRACE]


def test_text_search_with_quotes_is_bound_not_injected(store: Any) -> None:
    assert traces.list_traces(store, WINDOW, text="it's') OR 1=1 --").empty


def test_error_status_keeps_only_traces_with_a_failed_call(store: Any) -> None:
    assert list(traces.list_traces(store, WINDOW, status="error")["trace_id"]) == [AGENT_TRACE]
    assert list(traces.list_traces(store, WINDOW, status="ok")["trace_id"]) == [PLAIN_TRACE]


def test_unknown_status_is_refused_with_the_choices(store: Any) -> None:
    with pytest.raises(ValueError, match="all, ok, error"):
        traces.list_traces(store, WINDOW, status="broken")


def test_trace_spans_put_parents_before_children_with_depth(store: Any) -> None:
    spans = traces.trace_spans(store, AGENT_TRACE)
    assert list(spans["span_id"]) == ["1" * 16, "2" * 16, "3" * 16]
    assert list(spans["depth"]) == [0, 1, 1]
    assert list(spans["offset_ms"]) == pytest.approx([0, 10, 400])


def test_trace_spans_carry_llm_figures_only_on_llm_spans(store: Any) -> None:
    spans = traces.trace_spans(store, AGENT_TRACE).set_index("span_id")
    assert list(spans["is_llm"]) == [0, 1, 1]
    assert spans.loc["2" * 16, "input_tokens"] == 120
    assert spans.loc["2" * 16, "cost_usd"] == pytest.approx(0.0006)
    assert spans.loc["3" * 16, "error_type"] == "openai.RateLimitError"


def test_tool_calls_are_read_from_the_output_messages(store: Any) -> None:
    spans = traces.trace_spans(store, AGENT_TRACE).set_index("span_id")
    output = traces.messages(spans.loc["2" * 16, "attributes"], sc.OUTPUT_MESSAGES)
    assert [call["name"] for call in traces.tool_calls(output)] == ["track"]


def test_unknown_trace_has_no_spans(store: Any) -> None:
    assert traces.trace_spans(store, "f" * 32).empty


def test_spans_whose_parent_is_missing_are_treated_as_roots() -> None:
    spans = pd.DataFrame(
        {
            "span_id": ["c", "p", "o"],
            "parent_span_id": ["p", "", "gone"],
            "start": pd.to_datetime(["2026-01-01 00:00:01", "2026-01-01 00:00:00", "2026-01-01 00:00:02"]),
        }
    )
    tree = traces.as_tree(spans)
    assert list(tree["span_id"]) == ["p", "c", "o"]
    assert dict(zip(tree["span_id"], tree["depth"], strict=True)) == {"p": 0, "c": 1, "o": 0}


def test_messages_tolerate_missing_and_invalid_json() -> None:
    assert traces.messages({}, sc.INPUT_MESSAGES) == []
    assert traces.messages({sc.INPUT_MESSAGES: "not json"}, sc.INPUT_MESSAGES)[0]["role"] == "unparsed"


HISTORY_END = datetime.fromtimestamp(NOW_NS / 1e9, timezone.utc) - timedelta(hours=2)  # before WINDOW


@pytest.fixture(scope="module")
def history(store: Any) -> Any:
    """Two days of demo history (content "request N") ending before WINDOW, for the staged text
    search (one chDB directory per process: the same store)."""
    from llmtrace.demo import scenarios

    sql, params = scenarios.history_sql(20_000, 2, int(HISTORY_END.timestamp() * 1e9), seed=3)
    store.command(sql, parameters=params)
    return store


@pytest.mark.parametrize(("text", "limit"), [("request", 20), ("REQUEST 77", 20), ("request 1234", 200), ("zzz", 50)])
def test_text_search_newest_first_finds_what_one_search_of_the_window_finds(
    history: Any, text: str, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search stops at the first stage (newest hour, 4 hours, day) holding ``limit`` traces;
    its list is the whole window's, trace for trace. A common text stops in the first hour, an
    absent one reads every stage and the window."""
    window = Filter(start=HISTORY_END - timedelta(days=2), end=HISTORY_END)
    whole = traces._list(history, window, "all", text, limit)
    stages: list[Filter] = []
    staged = traces._list
    monkeypatch.setattr(traces, "_list", lambda c, f, *a: stages.append(f) or staged(c, f, *a))
    found = traces.list_traces(history, window, text=text, limit=limit)
    pd.testing.assert_frame_equal(found, whole)
    if text == "request":  # every demo request: 123-518 traces in any last hour of the day, measured
        assert len(found) == limit and [f.duration for f in stages] == [timedelta(hours=1)]
    if text == "zzz":
        assert found.empty and [f.duration for f in stages] == [timedelta(hours=h) for h in (1, 4, 24, 48)]

"""llmtrace.score(): score spans in memory, then over OTLP into a real `llmtrace server` and its llm_scores."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

import llmtrace
from llmtrace import semconv as sc
from tests.conftest import SpanRecorder
from tests.server_process import ServerProcess

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_HEX = "00f067aa0ba902b7"


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_score_defaults_to_the_current_span_and_is_its_child(spans: SpanRecorder) -> None:
    with llmtrace.trace("answer") as root:
        llmtrace.score("helpful", 0.8, comment="good")
    score, _root = sorted(spans.finished, key=lambda s: s.name == "answer")
    ctx = root.get_span_context()
    assert score.name == "llmtrace.score helpful" and score.kind == SpanKind.INTERNAL
    assert score.context.trace_id == ctx.trace_id and score.parent is not None
    assert score.parent.span_id == ctx.span_id
    assert attrs(score) == {
        sc.SCORE_NAME: "helpful",
        sc.SCORE_VALUE: 0.8,
        sc.SCORE_DATA_TYPE: "numeric",
        sc.SCORE_SOURCE: "api",
        sc.SCORE_COMMENT: "good",
        sc.SCORE_TRACE_ID: format(ctx.trace_id, "032x"),
        sc.SCORE_SPAN_ID: format(ctx.span_id, "016x"),
    }
    assert not any(key.startswith("gen_ai.") for key in attrs(score))


def test_booleans_are_one_or_zero_and_labels_are_categorical(spans: SpanRecorder) -> None:
    llmtrace.score("thumbs_up", False, trace_id=TRACE_HEX)
    llmtrace.score("verdict", "correct", trace_id=TRACE_HEX.upper(), span_id=SPAN_HEX)
    thumbs, verdict = spans.finished
    assert (attrs(thumbs)[sc.SCORE_VALUE], attrs(thumbs)[sc.SCORE_DATA_TYPE]) == (0.0, "boolean")
    assert (attrs(verdict)[sc.SCORE_LABEL], attrs(verdict)[sc.SCORE_DATA_TYPE]) == ("correct", "categorical")
    assert sc.SCORE_VALUE not in attrs(verdict)


def test_a_trace_id_alone_scores_the_whole_trace_from_inside_it(spans: SpanRecorder) -> None:
    with llmtrace.trace("elsewhere"):  # a web handler's own span is not the target
        llmtrace.score("feedback", 1, trace_id=TRACE_HEX)
    span = next(s for s in spans.finished if s.name == "llmtrace.score feedback")
    assert format(span.context.trace_id, "032x") == TRACE_HEX
    assert span.parent is not None and span.parent.is_remote and span.parent.span_id != 0
    assert attrs(span)[sc.SCORE_TRACE_ID] == TRACE_HEX and sc.SCORE_SPAN_ID not in attrs(span)


def test_a_span_id_from_elsewhere_makes_the_score_its_remote_child(spans: SpanRecorder) -> None:
    llmtrace.score("latency_ok", True, trace_id=TRACE_HEX, span_id=SPAN_HEX)
    span = spans.one()
    assert format(span.context.trace_id, "032x") == TRACE_HEX
    assert span.parent is not None and format(span.parent.span_id, "016x") == SPAN_HEX


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "x", "value": 1}, ValueError, "no current span"),
        ({"name": "", "value": 1, "trace_id": TRACE_HEX}, ValueError, "non-empty"),
        ({"name": "x", "value": float("nan"), "trace_id": TRACE_HEX}, ValueError, "finite"),
        ({"name": "x", "value": [1], "trace_id": TRACE_HEX}, TypeError, "number, a bool or a str"),
        ({"name": "x", "value": 1, "trace_id": "abc"}, ValueError, "32 hex digits"),
        ({"name": "x", "value": 1, "trace_id": TRACE_HEX, "span_id": "0" * 16}, ValueError, "16 hex digits"),
    ],
)
def test_bad_arguments_raise_a_clear_error(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        llmtrace.score(**kwargs)


APP = """
import json, sys
import llmtrace
llmtrace.instrument(service_name="scores-app", endpoint=sys.argv[1], release="r1")
import openai
from llmtrace.demo.fake_llm import FakeLLM

with FakeLLM() as fake:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    with llmtrace.trace("chat-turn", user_id="u1", session_id="s1") as root:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        llmtrace.score("relevance", 0.75, comment="judge said so")
ctx = root.get_span_context()
trace_hex = format(ctx.trace_id, "032x")
# later, in a web handler that only got the trace id from the page:
llmtrace.score("thumbs_up", True, trace_id=trace_hex, comment="user clicked")
llmtrace.score("category", "billing", trace_id=trace_hex)
print(json.dumps([trace_hex, format(ctx.span_id, "016x")]))
print("flushed", llmtrace.flush(10))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("scores") / "data").wait_ready()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def app_ids(server: ServerProcess) -> list[str]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(APP), f"{server.otlp_url}/v1/traces"],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "flushed True"
    return json.loads(result.stdout.splitlines()[0])  # type: ignore[no-any-return]


def test_scores_land_in_llm_scores_including_one_given_only_a_trace_id(
    server: ServerProcess, app_ids: list[str]
) -> None:
    trace_hex, root_span = app_ids
    rows = (
        server.client()
        .query(
            "SELECT Name, TraceId, SpanId, Value, StringValue, Source, Comment FROM llm_scores "
            "WHERE TraceId = {t:String} ORDER BY Name",
            parameters={"t": trace_hex},
        )
        .result_rows
    )
    assert rows == [
        ("category", trace_hex, "", 0.0, "billing", "api", ""),
        ("relevance", trace_hex, root_span, 0.75, "", "api", "judge said so"),
        ("thumbs_up", trace_hex, "", 1.0, "", "api", "user clicked"),
    ]


def test_scores_are_not_llm_calls_and_the_call_is_in_the_trace(server: ServerProcess, app_ids: list[str]) -> None:
    trace_hex, root_span = app_ids
    rows = (
        server.client()
        .query(
            "SELECT SpanName, TraceId, ParentSpanId, UserId, SessionId FROM llm_calls WHERE ServiceName = 'scores-app'"
        )
        .result_rows
    )
    assert rows == [("chat gpt-4o-mini", trace_hex, root_span, "u1", "s1")]


def test_every_score_span_sits_in_its_target_trace_in_otel_traces(server: ServerProcess, app_ids: list[str]) -> None:
    trace_hex, root_span = app_ids
    rows = (
        server.client()
        .query(
            "SELECT SpanName, ParentSpanId = {root:String}, ParentSpanId = '', SpanKind FROM otel_traces "
            "WHERE TraceId = {t:String} ORDER BY SpanName",
            parameters={"t": trace_hex, "root": root_span},
        )
        .result_rows
    )
    assert rows == [
        ("chat gpt-4o-mini", True, False, "Client"),
        ("chat-turn", False, True, "Internal"),
        ("llmtrace.score category", False, False, "Internal"),  # trace id only: a made-up remote parent
        ("llmtrace.score relevance", True, False, "Internal"),
        ("llmtrace.score thumbs_up", False, False, "Internal"),
    ]


def test_score_means_and_labels_per_release_count_trace_level_scores_for_the_traces_calls(
    server: ServerProcess, app_ids: list[str]
) -> None:
    from datetime import timedelta

    from llmtrace.analytics.filters import Filter
    from llmtrace.analytics.scores import label_counts, score_means, trace_scores

    window = Filter.last(timedelta(hours=1), services=("scores-app",))
    means = score_means(server.client(), window, by="release")
    assert means[["release", "score", "scores", "mean"]].values.tolist() == [
        ["r1", "relevance", 1, 0.75],
        ["r1", "thumbs_up", 1, 1.0],
    ]
    labels = label_counts(server.client(), window, by="release")
    assert labels.values.tolist() == [["r1", "category", "billing", 1]]
    assert trace_scores(server.client(), app_ids[0])["name"].tolist() == ["relevance", "thumbs_up", "category"]


def test_scores_cannot_be_grouped_by_an_unknown_column(server: ServerProcess) -> None:
    from datetime import timedelta

    from llmtrace.analytics.filters import Filter
    from llmtrace.analytics.scores import score_means

    with pytest.raises(ValueError, match="choose one of service"):
        score_means(server.client(), Filter.last(timedelta(hours=1)), by="TraceId; DROP")

"""``llmtrace.score()``: evaluations and user feedback, sent over the same OTLP pipe as the spans.

Transport: each score is one zero-length INTERNAL span named ``llmtrace.score {name}`` whose
``llmtrace.score.*`` attributes carry the name, value, comment and the target trace/span ids.
It has no ``gen_ai.*`` attribute, so ``llm_calls`` never counts it; the materialized view in
``schemas/011_llm_scores_mv.sql`` turns it into an ``llm_scores`` row. So a score needs nothing
the app does not already have (exporter, Collector, batching, retries), and works unchanged on a
cluster. The score span always joins the target trace: as a child of the target span when it is
known, else (only a trace id, e.g. feedback from a web handler) under a made-up remote parent id,
which trace views show as one more root. So trace-id routing, tail sampling and ``llm_scores``'s
sharding by TraceId keep a score with its trace, and a ParentBased sampler keeps it (the remote
parent is marked sampled: the app chose to score that trace).
"""

from __future__ import annotations

import math
import random
import re

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from llmtrace import grouping
from llmtrace import semconv as sc
from llmtrace.instrumentation._guard import internal_error

ScoreValue = float | int | bool | str

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def score(
    name: str,
    value: ScoreValue,
    *,
    trace_id: str | int | None = None,
    span_id: str | int | None = None,
    comment: str | None = None,
) -> None:
    """Attach a score to a trace or span: a number, a bool (stored as 1/0) or a label (str).

    Without ids it scores the current span. ``trace_id`` alone (32 hex digits, e.g. what the app
    sent its web page) scores the whole trace. Raises ``ValueError``/``TypeError`` for a bad name,
    value or id, or when there is no current span and no id; llmtrace's own failures after that
    are logged, never raised into the app.
    """
    attributes = _value_attributes(name, value, comment)
    target_trace, target_span = _target(trace_id, span_id)
    attributes[sc.SCORE_TRACE_ID] = format(target_trace, "032x")
    if target_span:
        attributes[sc.SCORE_SPAN_ID] = format(target_span, "016x")
    _emit(name, attributes, target_trace, target_span)


def _value_attributes(name: str, value: ScoreValue, comment: str | None) -> dict[str, AttributeValue]:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("score name must be a non-empty string, e.g. llmtrace.score('helpful', 1).")
    attributes: dict[str, AttributeValue] = {sc.SCORE_NAME: name, sc.SCORE_SOURCE: "api"}
    if isinstance(value, bool):
        attributes.update({sc.SCORE_VALUE: float(value), sc.SCORE_DATA_TYPE: "boolean"})
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"score {name!r}: value must be a finite number, got {value!r}.")
        attributes.update({sc.SCORE_VALUE: float(value), sc.SCORE_DATA_TYPE: "numeric"})
    elif isinstance(value, str):
        attributes.update({sc.SCORE_LABEL: value, sc.SCORE_DATA_TYPE: "categorical"})
    else:
        raise TypeError(f"score {name!r}: value must be a number, a bool or a str label, not {type(value).__name__}.")
    if comment:
        attributes[sc.SCORE_COMMENT] = comment
    return attributes


def _target(trace_id: str | int | None, span_id: str | int | None) -> tuple[int, int]:
    """(trace id, span id or 0) to score: the ids given, else the current span."""
    current = otel_trace.get_current_span().get_span_context()
    if trace_id is None:
        if not current.is_valid:
            raise ValueError(
                "llmtrace.score() found no current span: call it inside llmtrace.trace()/@observe, "
                "or pass trace_id= (and span_id=) of the trace to score."
            )
        return current.trace_id, current.span_id if span_id is None else _parse(span_id, _SPAN_ID, "span_id")
    return _parse(trace_id, _TRACE_ID, "trace_id"), 0 if span_id is None else _parse(span_id, _SPAN_ID, "span_id")


def _parse(value: str | int, pattern: re.Pattern[str], what: str) -> int:
    """A W3C id as hex (any case, ``0x``/dashes tolerated, so a UUID-shaped trace id works) or an int."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value).strip().lower().removeprefix("0x").replace("-", "")
    if not pattern.match(text) or int(text, 16) == 0:
        digits = 32 if what == "trace_id" else 16
        raise ValueError(f"{what}={value!r} is not a valid id: expected {digits} hex digits, not all zero.")
    return int(text, 16)


def _emit(name: str, attributes: dict[str, AttributeValue], trace_id: int, span_id: int) -> None:
    try:
        target = otel_trace.get_current_span().get_span_context()
        if not span_id or (target.trace_id, target.span_id) != (trace_id, span_id):  # not our current span
            parent_id = span_id or random.getrandbits(64) or 1
            target = SpanContext(trace_id, parent_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        parent = otel_trace.set_span_in_context(NonRecordingSpan(target), otel_context.Context())
        span = grouping.tracer().start_span(
            f"llmtrace.score {name}", context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        )
        span.end()
    except Exception as exc:
        internal_error("sending a score", exc)

"""Tables a view derives from a batch without a row per span are completed after a half-applied INSERT.

``otel_traces_trace_id_ts`` (a trace's time range, which the trace view reads to find its spans),
the root rows of ``llm_traces`` (the trace list's name and time range) and ``llm_scores`` are
not keyed by the batch's span ids, so the sink checks them by coverage (llmtrace.server.coverage).
The fault: a CHECK constraint on the target makes its view's write fail; ``otel_traces`` keeps its
part, the INSERT raises (or, through the server, is retried) and the views after the failing one
in the chain write nothing either. Once the constraint is dropped, the read-back fills in exactly
the rows missing, and a second check writes nothing.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from llmtrace.server.chunks import span_keys
from llmtrace.server.decode import prepare
from llmtrace.server.engine import Engine
from llmtrace.server.sink import SpanSink
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations
from tests.server_process import post_spans, start_server
from tests.test_sink_content_repair import wait_for

TRACE = "c0ffee00000000000000000000000abc"
ROOT, CHAT, SCORE = "c0ffee0000000001", "c0ffee0000000002", "c0ffee0000000003"
# Rejects every row the view (or a repair) would write while it exists.
REFUSE = {
    "otel_traces_trace_id_ts": "TraceId = ''",
    "llm_traces": "RootName = ''",
    "llm_scores": "Name = ''",
}


def otlp_json(start_ns: int, trace: str = TRACE) -> bytes:
    """A root span, a chat call under it, and a score of that call (a span in the same trace)."""

    def span(span_id: str, name: str, offset_ms: int, attributes: dict[str, str], parent: str = "") -> dict[str, Any]:
        start = start_ns + offset_ms * 10**6
        return {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
                "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 2500 * 10**6),
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]}  # fmt: skip

    spans = [
        span(ROOT, "answer question", 0, {}),
        span(CHAT, "chat gpt-4o", 300, {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                         "gen_ai.request.model": "gpt-4o"}, parent=ROOT),
        span(SCORE, "llmtrace.score", 4000, {"llmtrace.score.name": "helpfulness", "llmtrace.score.value": "0.75",
                                              "llmtrace.score.span_id": CHAT}, parent=ROOT),
    ]  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                               "scopeSpans": [{"spans": spans}]}]}  # fmt: skip
    return json.dumps(body).encode()


def derived(run: Any, trace: str = TRACE) -> dict[str, list[tuple[Any, ...]]]:
    """What readers get from each covered table for the trace (and its raw row counts)."""
    rows = {
        "otel_traces_trace_id_ts": f"SELECT min(Start), max(End), count() FROM otel_traces_trace_id_ts"
        f" WHERE TraceId = '{trace}'",
        "llm_traces": f"SELECT max(RootName), min(Start), max(End), sum(Calls), countIf(RootName != '') FROM llm_traces"
        f" WHERE TraceId = '{trace}'",
        "llm_scores": f"SELECT SpanId, Name, Value FROM llm_scores WHERE TraceId = '{trace}' ORDER BY SpanId",
    }
    return {table: [tuple(r) for r in run(sql)] for table, sql in rows.items()}


def expected(start_ns: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the views write for :func:`otlp_json` (times as the engine prints them, UTC)."""

    def at(offset_ms: int, digits: int) -> str:
        t = time.gmtime((start_ns + offset_ms * 10**6) // 10**9)
        fraction = f"{(start_ns + offset_ms * 10**6) % 10**9:09d}"[:digits]
        return time.strftime("%Y-%m-%d %H:%M:%S", t) + (f".{fraction}" if digits else "")

    return {
        "otel_traces_trace_id_ts": [(at(0, 0), at(4000, 0), 1)],
        "llm_traces": [("answer question", at(0, 6), at(2800, 6), 1, 1)],  # the call ends last
        "llm_scores": [(CHAT, "helpfulness", 0.75)],
    }


@pytest.mark.parametrize("table", sorted(REFUSE))
def test_rows_a_failing_view_left_out_are_filled_in_once(tmp_path: Path, table: str) -> None:
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        engine.run("SET session_timezone = 'UTC'")
        sink = SpanSink(engine)
        try:
            start = (time.time_ns() // 10**9 - 3600) * 10**9 + 123_456_789  # a fixed fraction: no rounding luck
            payload = prepare(otlp_json(start), None, "application/json")[0]
            engine.run(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK {REFUSE[table]}")
            with pytest.raises(Exception, match="refuse"):
                sink(payload, "first")
            assert engine.run(f"SELECT count() FROM otel_traces WHERE TraceId = '{TRACE}'") == [(3,)]
            assert derived(engine.run)[table] != expected(start)[table]  # the fault: the view's rows are lost
            engine.run(f"ALTER TABLE {table} DROP CONSTRAINT refuse")
            sink.complete_derived(payload)  # what the writer's retry does once nothing is absent
            assert derived(engine.run) == expected(start)
            sink.complete_derived(payload)  # nothing short: nothing written twice
            assert derived(engine.run) == expected(start)
        finally:
            sink.close()
    finally:
        engine.close()


@pytest.mark.parametrize("table", sorted(REFUSE))
def test_rows_lost_by_an_insert_that_returned_are_found_by_the_sampled_lookup(tmp_path: Path, table: str) -> None:
    """After an INSERT that returned, the sink looks up a sample of the batch's trace ids (and every
    score span's row): a lost part (its rows deleted here, between the INSERT and the read-back, as
    a full disk loses it) shows there, and the whole batch is then checked and completed."""
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        engine.run("SET session_timezone = 'UTC'")
        sink = SpanSink(engine)
        try:
            start = (time.time_ns() // 10**9 - 3600) * 10**9 + 123_456_789
            payload = prepare(otlp_json(start), None, "application/json")[0]
            sink(payload, "first")
            assert derived(engine.run) == expected(start)
            lost = " AND RootName != ''" if table == "llm_traces" else ""  # the root view's row, not the calls'
            engine.run(f"DELETE FROM {table} WHERE TraceId = '{TRACE}'{lost}")
            keys = span_keys(payload)
            assert keys is not None
            bounds = sink._load(keys)  # what SpanSink.__call__ does once the INSERT has returned
            assert not sink._missing(payload, keys, bounds)
            sink._complete_derived(keys, bounds, sink._batch_profile)
            assert derived(engine.run) == expected(start)
        finally:
            sink.close()
    finally:
        engine.close()


def test_a_time_range_another_batch_already_covers_is_not_written_again(tmp_path: Path) -> None:
    """A later span inside a trace's stored range: the trace's range is right without its own row,
    so its row missing is no loss and the check writes nothing."""
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        sink = SpanSink(engine)
        try:
            start = time.time_ns()
            sink(prepare(otlp_json(start), None, "application/json")[0], "first")
            inner = json.loads(otlp_json(start + 2 * 10**9))
            inner["resourceSpans"][0]["scopeSpans"][0]["spans"] = [
                {**inner["resourceSpans"][0]["scopeSpans"][0]["spans"][1], "spanId": "c0ffee0000000004"}
            ]
            payload = prepare(json.dumps(inner).encode(), None, "application/json")[0]
            sink(payload, "second")
            ranges = f"SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId = '{TRACE}'"
            assert engine.run(ranges) == [(2,)]
            engine.run(f"DELETE FROM otel_traces_trace_id_ts WHERE TraceId = '{TRACE}' AND Start = End")  # the second's
            sink.complete_derived(payload)
            assert engine.run(ranges) == [(1,)]
        finally:
            sink.close()
    finally:
        engine.close()


def test_rows_the_views_write_lost_are_filled_in_through_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    client = connect(server.http_url)
    try:
        for table, check in REFUSE.items():
            client.command(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK {check}")
        start = (time.time_ns() // 10**9 - 600) * 10**9 + 123_456_789
        code, _, _ = post_spans(server, otlp_json(start), "application/json")
        assert code == 200

        def run(sql: str) -> list[tuple[Any, ...]]:
            rows = client.query(sql, settings={"session_timezone": "UTC"}).result_rows
            return [tuple(str(v.replace(tzinfo=None)) if isinstance(v, datetime) else v for v in r) for r in rows]

        assert wait_for(lambda: run(f"SELECT count() FROM otel_traces WHERE TraceId = '{TRACE}'") == [(3,)])
        assert wait_for(lambda: "refuse" in server.output)  # the views' writes fail and are retried
        assert all(derived(run)[table] != expected(start)[table] for table in REFUSE)
        for table in REFUSE:
            client.command(f"ALTER TABLE {table} DROP CONSTRAINT refuse")  # the fault passes
        assert wait_for(lambda: derived(run) == expected(start), 30), derived(run)
        assert wait_for(lambda: all(f"filled in 1 {table} row(s)" in server.output for table in REFUSE), 10)
    finally:
        client.close()
        server.stop()

"""A span a half-applied INSERT left out of ``otel_traces_content`` is filled in and found by the text search.

The Traces text search (llmtrace.analytics.traces) reads only ``otel_traces_content``, filled by
``otel_traces_content_mv``. When the view's write is lost while ``otel_traces`` keeps its part
(a full disk did that to ``llm_calls``), the span is stored and counted but never found. The
sink's read-back fills in the missing rows with the view's own SELECT (schema 026 gave the table
the SpanId to find them by). The fault is made two ways: the derived rows deleted between the
INSERT and the check (as tests/test_sink_view_change.py does), and, through a real server, a
constraint on the content table that makes the view's write fail: chDB's INSERT then still
returns without an error, with ``otel_traces`` written and the views' targets not.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from llmtrace import semconv as sc
from llmtrace.analytics import traces
from llmtrace.analytics.filters import Filter
from llmtrace.server.decode import prepare
from llmtrace.server.engine import Engine
from llmtrace.server.sink import SpanSink
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, render, schema_files, split_statements
from tests.server_process import post_spans, start_server

TRACE = "7a1c0ffee0000000000000000000beef"
WORD = "zanzibarparcel"
# Rejects every row the view or a repair would write while it exists: the view's write fails.
REFUSE = "ALTER TABLE otel_traces_content ADD CONSTRAINT refuse CHECK length(Content) = 0"


def otlp_json(start_ns: int, trace: str = TRACE, empty_key: bool = False) -> bytes:
    """Three spans of one trace: a chat call with a prompt, one without content, and a tool span
    with a reply (content but no LLM call): two content rows, two llm_calls rows. ``empty_key``:
    the second has an empty system instructions attribute (a content row without content)."""

    def span(i: int, name: str, attributes: dict[str, str], parent: str = "") -> dict[str, Any]:
        return {"traceId": trace, "spanId": f"{trace[:15]}{i}", "parentSpanId": parent, "name": name, "kind": 3,
                "startTimeUnixNano": str(start_ns + i), "endTimeUnixNano": str(start_ns + i + 10**6),
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]}  # fmt: skip

    chat = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: "gpt-4o"}
    spans = [
        span(1, "chat gpt-4o", {**chat, sc.INPUT_MESSAGES: f'[{{"role":"user","content":"where is my {WORD}?"}}]'}),
        span(2, "chat gpt-4o", {**chat, **({sc.SYSTEM_INSTRUCTIONS: ""} if empty_key else {})},
             parent=f"{trace[:15]}1"),
        span(3, "execute_tool track", {sc.OPERATION_NAME: "execute_tool", sc.OUTPUT_MESSAGES: "in transit"},
             parent=f"{trace[:15]}1"),
    ]  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                               "scopeSpans": [{"spans": spans}]}]}  # fmt: skip
    return json.dumps(body).encode()


def content_rows(run: Any, trace: str = TRACE) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in run(f"SELECT SpanId, Content FROM otel_traces_content WHERE TraceId = '{trace}'"))


def test_a_span_left_out_of_the_content_table_is_filled_in_once_by_the_views_select(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        sink = SpanSink(engine)
        try:
            payload = prepare(otlp_json(time.time_ns(), empty_key=True), None, "application/json")[0]
            sink(payload, "first")
            stored = content_rows(engine.run)
            assert [r[0] for r in stored] == [f"{TRACE[:15]}{i}" for i in (1, 2, 3)]  # the view writes SpanId
            assert stored[1][1] == []  # a content key, but empty: selected by the view and counted as such
            engine.run(f"DELETE FROM otel_traces_content WHERE TraceId = '{TRACE}'")  # the half-applied write
            sink.complete_derived(payload)
            assert content_rows(engine.run) == stored
            sink.complete_derived(payload)  # nothing missing: nothing written twice
            assert content_rows(engine.run) == stored
        finally:
            sink.close()
    finally:
        engine.close()


def test_a_span_the_views_write_lost_is_found_by_the_text_search_through_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    client = connect(server.http_url)
    try:
        client.command(REFUSE)
        now = datetime.now(timezone.utc)
        code, _, _ = post_spans(server, otlp_json(time.time_ns() - 600 * 10**9), "application/json")
        assert code == 200

        def counts() -> tuple[int, ...]:
            query = f"SELECT (SELECT count() FROM {{}} WHERE TraceId = '{TRACE}')"
            return tuple(int(client.query(query.format(t)).result_rows[0][0]) for t in ("otel_traces", "llm_calls"))

        assert wait_for(lambda: counts() == (3, 2))  # stored, and llm_calls filled in; content refused
        assert content_rows(lambda sql: client.query(sql).result_rows) == []
        client.command("ALTER TABLE otel_traces_content DROP CONSTRAINT refuse")  # the fault passes
        window = Filter(start=now - timedelta(days=1), end=now + timedelta(hours=1))
        assert wait_for(lambda: list(traces.list_traces(client, window, text=WORD)["trace_id"]) == [TRACE], 30)
        assert list(traces.list_traces(client, window, text="IN TRANSIT")["trace_id"]) == [TRACE]
        assert len(content_rows(lambda sql: client.query(sql).result_rows)) == 2
        assert "filled in 2 otel_traces_content row(s)" in server.output
    finally:
        client.close()
        server.stop()


def wait_for(predicate: Any, deadline: float = 60.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def _statements(prefix: str, cluster: str | None = None) -> list[str]:
    path = next(p for p in schema_files() if p.name.startswith(prefix))
    return split_statements(render(path.read_text(), cluster=cluster))


def test_026_keeps_the_rows_before_it_and_the_view_writes_span_ids_after_it(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run, files=[p for p in schema_files() if p.name < "026_"])
        sink = SpanSink(engine)  # before 026: content is not checked (no SpanId), llm_calls is
        before, after = "1" * 32, "2" * 32
        sink(prepare(otlp_json(time.time_ns(), before), None, "application/json")[0], "before")
        sink.close()
        upto_026 = [p for p in schema_files() if p.name < "027_"]
        assert apply_migrations(engine.run, files=upto_026) == ["026_otel_traces_content_span_id.sql"]
        sink = SpanSink(engine)
        try:
            sink(prepare(otlp_json(time.time_ns(), after), None, "application/json")[0], "after")
        finally:
            sink.close()
        assert [r[0] for r in content_rows(engine.run, before)] == ["", ""]  # old rows: no SpanId, still found
        assert [r[0] for r in content_rows(engine.run, after)] == [f"{after[:15]}1", f"{after[:15]}3"]
    finally:
        engine.close()


def test_026_on_a_cluster_changes_the_view_to_read_the_shard_table() -> None:
    add_local, add_distributed, modify, catch_up = _statements("026_", cluster="llmtrace")
    assert add_local.startswith("ALTER TABLE otel_traces_content_local ON CLUSTER `llmtrace` ADD COLUMN")
    assert add_distributed.startswith("ALTER TABLE otel_traces_content ON CLUSTER `llmtrace` ADD COLUMN")
    assert modify.startswith("ALTER TABLE otel_traces_content_mv ON CLUSTER `llmtrace`\nMODIFY QUERY SELECT")
    assert "FROM otel_traces_local AS t" in modify and "FROM otel_traces AS t" not in modify
    assert catch_up.startswith("INSERT INTO otel_traces_content (") and "_local" not in catch_up  # once, Distributed


def test_026_adds_the_spans_024_missed_while_it_ran_against_a_live_store(tmp_path: Path) -> None:
    """024 backfills, then creates its view: a span inserted between the two reaches neither."""
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run, files=[p for p in schema_files() if p.name < "024_"])
        table, backfill, view = _statements("024_")
        sink = SpanSink(engine)
        try:
            early, racing, late = "3" * 32, "4" * 32, "5" * 32
            sink(prepare(otlp_json(time.time_ns(), early), None, "application/json")[0], "early")
            engine.run(table)
            engine.run(backfill)
            sink(prepare(otlp_json(time.time_ns(), racing), None, "application/json")[0], "racing")  # the Collector
            engine.run(view)
            sink(prepare(otlp_json(time.time_ns(), late), None, "application/json")[0], "late")
        finally:
            sink.close()
        assert (
            apply_migrations(engine.run, files=[p for p in schema_files() if p.name < "026_"])[0]
            == "024_otel_traces_content.sql"
        )
        rows = "SELECT count() FROM otel_traces_content WHERE TraceId = '{}'"
        assert [engine.run(rows.format(trace))[0][0] for trace in (early, racing, late)] == [2, 0, 2]
        apply_migrations(engine.run)
        assert [r[0] for r in content_rows(engine.run, racing)] == [f"{racing[:15]}1", f"{racing[:15]}3"]
        assert [len(content_rows(engine.run, trace)) for trace in (early, late)] == [2, 2]  # none twice
    finally:
        engine.close()


def test_026s_view_copies_exactly_the_content_keys_the_search_is_defined_on() -> None:
    view = next(p for p in schema_files() if p.name.startswith("026_")).read_text()
    assert sorted(set(re.findall(r"'(gen_ai\.[a-z_.]+)'", view))) == sorted(traces.CONTENT_KEYS)

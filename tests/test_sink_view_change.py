"""A running server's ingest repair follows ``llmtrace migrate`` changing ``llm_calls_mv``.

The sink fills in ``llm_calls`` rows a half-applied INSERT left out by running the view's own
SELECT. When ``migrate`` replaces the view while the server runs (013 did: only model calls
become llm_calls rows), the repair must use the new SELECT, not the text read at start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmtrace.server.decode import prepare
from llmtrace.server.engine import Engine
from llmtrace.server.sink import SpanSink
from llmtrace.store.migrations import apply_migrations, render, schema_files, split_statements

TRACE = "5b8efff798038103d269b633813fc60d"


def _statements(prefix: str) -> list[str]:
    path = next(p for p in schema_files() if p.name.startswith(prefix))
    return split_statements(render(path.read_text()))


def _payload() -> bytes:
    """A chat call and a tool span (gen_ai.* attributes, but not a model call) in one trace."""
    now = time.time_ns()

    def span(i: int, name: str, attributes: dict[str, str]) -> dict[str, object]:
        return {"traceId": TRACE, "spanId": f"eee19b7ec3c1b17{i}", "name": name, "kind": 3,
                "startTimeUnixNano": str(now + i), "endTimeUnixNano": str(now + i + 1000),
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]}  # fmt: skip

    spans = [
        span(1, "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                "gen_ai.request.model": "gpt-4o"}),
        span(2, "execute_tool lookup", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}),
    ]  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                               "scopeSpans": [{"spans": spans}]}]}  # fmt: skip
    return prepare(json.dumps(body).encode(), None, "application/json")[0]


def test_the_repair_runs_the_view_migrate_installed_after_the_server_started(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        for statement in ["DROP VIEW llm_calls_mv", *_statements("005_")]:  # the view as before 013
            engine.run(statement)
        sink = SpanSink(engine)  # the server starts: it reads 005's view
        try:
            for statement in _statements("013_"):  # `llmtrace migrate` applies 013 meanwhile
                engine.run(statement)
            payload = _payload()
            sink(payload, "first")
            engine.run("DELETE FROM llm_calls WHERE TraceId = '5b8efff798038103d269b633813fc60d'")  # half-applied
            sink.complete_derived(payload)
            rows = engine.run(f"SELECT SpanName FROM llm_calls WHERE TraceId = '{TRACE}'")
            assert rows is not None and [r[0] for r in rows] == ["chat gpt-4o"]  # 005's SELECT took the tool span too
        finally:
            sink.close()
    finally:
        engine.close()

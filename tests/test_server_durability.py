"""Acknowledged means stored: the real server process, real OTLP requests, read back over HTTP.

Each test reproduces a loss reported in issue #10 (a 2xx for spans that were never stored).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess, http, otlp_request, post_spans

DAY_NS = 86_400 * 10**9


def spans_of(request: Any) -> list[Any]:
    return list(request.resource_spans[0].scope_spans[0].spans)


def starting_at(request: Any, starts: list[int]) -> Any:
    for span, start in zip(spans_of(request), starts, strict=True):
        span.start_time_unix_nano, span.end_time_unix_nano = start, start + 1_000_000
    return request


def rows(server: ServerProcess, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in server.client().query(sql).result_rows]


def status(server: ServerProcess) -> dict[str, Any]:
    code, _, body = http("GET", f"{server.otlp_url}/status")
    assert code == 200, body
    return dict(json.loads(body))


def wait_stored(server: ServerProcess, expected: int, where: str = "1", deadline: float = 60.0) -> int:
    """Poll (no sleeps as synchronisation) until otel_traces holds ``expected`` rows."""
    end = time.monotonic() + deadline
    count = -1
    while time.monotonic() < end:
        count = rows(server, f"SELECT count() FROM otel_traces WHERE {where}")[0][0]
        if count >= expected:
            return int(count)
        time.sleep(0.1)
    return int(count)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # 20500 days of retention: spans from late 1970 on are inside it, so only the engine decides.
    proc = ServerProcess(tmp_path_factory.mktemp("durable") / "data", args=("--ttl-days", "20500")).wait_ready()
    yield proc
    proc.stop()


def test_a_request_over_101_days_and_the_requests_batched_with_it_are_all_stored(server: ServerProcess) -> None:
    now = time.time_ns()
    wide = starting_at(otlp_request(101, service="wide", seed=1), [now - i * DAY_NS for i in range(101)])
    innocent = [otlp_request(5, service="innocent", seed=10 + i) for i in range(8)]
    bodies = [r.SerializeToString() for r in [*innocent[:4], wide, *innocent[4:]]]
    with ThreadPoolExecutor(9) as pool:  # concurrently, so they share the writer's batches
        codes = [code for code, _, _ in pool.map(lambda body: post_spans(server, body), bodies)]
    assert codes == [200] * 9
    assert wait_stored(server, 141, "ServiceName IN ('wide', 'innocent')") == 141
    assert rows(server, "SELECT uniqExact(toDate(Timestamp)) FROM otel_traces WHERE ServiceName = 'wide'") == [(101,)]
    assert rows(server, "SELECT count() FROM llm_calls WHERE ServiceName IN ('wide', 'innocent')") == [(141,)]
    assert rows(server, "SELECT sum(Calls) FROM llm_calls_1h WHERE ServiceName IN ('wide', 'innocent')") == [(141,)]
    assert rows(server, "SELECT count() = uniqExact(SpanId) FROM otel_traces") == [(1,)]  # nothing twice


def test_a_span_starting_at_0_is_refused_with_400_and_the_reason(server: ServerProcess) -> None:
    request = starting_at(otlp_request(1, service="epoch-zero", seed=3), [0])
    code, _, body = post_spans(server, request.SerializeToString())
    assert code == 400
    assert b"start_time_unix_nano is 0" in body
    assert status(server)["refused_requests"] >= 1


def test_a_span_from_1972_inside_the_retention_is_stored_exactly(server: ServerProcess) -> None:
    start = 70_000_000 * 10**9 + 123_456_789  # 1972-03-21: fewer than 9 digits of seconds
    code, _, _ = post_spans(server, starting_at(otlp_request(1, service="y1972", seed=4), [start]).SerializeToString())
    assert code == 200
    assert wait_stored(server, 1, "ServiceName = 'y1972'") == 1
    assert rows(server, "SELECT toUnixTimestamp64Nano(Timestamp) FROM otel_traces WHERE ServiceName = 'y1972'") == [
        (start,)
    ]


def test_unstorable_spans_are_reported_as_partial_success_and_the_rest_stored(server: ServerProcess) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    now = time.time_ns()
    request = starting_at(otlp_request(4, service="mixed", seed=5), [now, now, 0, 2**32 * 10**9])
    code, _, body = post_spans(server, request.SerializeToString())
    assert code == 200
    reply = ExportTraceServiceResponse.FromString(body)
    assert reply.partial_success.rejected_spans == 2
    assert "is 0 (unset)" in reply.partial_success.error_message
    assert "after 2106" in reply.partial_success.error_message
    assert wait_stored(server, 2, "ServiceName = 'mixed'") == 2
    assert status(server)["rejected_by_kind"]["unstorable_span"] >= 2


def test_status_counts_what_was_accepted_and_stored(server: ServerProcess) -> None:
    assert post_spans(server, otlp_request(3, service="counted", seed=6).SerializeToString())[0] == 200
    assert wait_stored(server, 3, "ServiceName = 'counted'") == 3
    end = time.monotonic() + 30
    while (now := status(server))["stored_spans"] < now["accepted_spans"] and time.monotonic() < end:
        time.sleep(0.05)
    assert now["stored_spans"] == now["accepted_spans"] > 0
    assert now["backlog_spans"] == 0 and now["failing_since"] is None
    assert http("GET", f"{server.http_url}/ping")[2] == b"Ok.\n"


def test_partition_splitting_is_deterministic_so_replay_reuses_the_tokens(tmp_path: Path) -> None:
    from llmtrace.server.chunks import split_by_days
    from llmtrace.server.decode import prepare

    now = time.time_ns()
    request = starting_at(otlp_request(120, seed=7), [now - i * DAY_NS for i in range(120)])
    payload, _ = prepare(request.SerializeToString(), None, "application/x-protobuf")
    first, again = split_by_days([payload, payload[:0]]), split_by_days([payload, payload[:0]])
    assert first == again and len(first) == 3
    assert sum(part.lines.count(b"\n") for group in first for part in group) == 120


def test_a_json_request_with_an_unset_start_gets_partial_success_in_json(server: ServerProcess) -> None:
    now = time.time_ns()
    spans = [{"traceId": "5b8efff798038103d269b633813fc60d", "spanId": f"eee19b7ec3c1b17{i}", "name": "j",
              "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1000)}
             for i, start in enumerate([now, 0])]  # fmt: skip
    payload = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-partial"}}]},
        "scopeSpans": [{"spans": spans}]}]}  # fmt: skip
    code, _, body = post_spans(server, json.dumps(payload).encode(), "application/json")
    assert code == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "is 0 (unset)" in partial["errorMessage"]
    assert wait_stored(server, 1, "ServiceName = 'json-partial'") == 1


def test_replaying_after_a_killed_insert_that_stored_some_rows_stores_each_span_once(tmp_path: Path) -> None:
    """A killed INSERT can leave rows behind without recording its deduplication token; the
    replay must not add them again, in otel_traces nor in the tables its views feed."""
    from llmtrace.server.batcher import SpanWriter
    from llmtrace.server.decode import prepare
    from llmtrace.server.engine import Engine
    from llmtrace.server.sink import SpanSink
    from llmtrace.server.wal import Record, WriteAheadLog
    from llmtrace.store.migrations import apply_migrations

    engine = Engine(tmp_path / "data")
    try:
        apply_migrations(engine.run)
        sink = SpanSink(engine)
        payload, spans = prepare(otlp_request(40, service="half").SerializeToString(), None, "application/x-protobuf")
        lines = payload.splitlines(keepends=True)
        sink(b"".join(lines[:15]), "some-other-attempt")  # what the killed INSERT left behind
        log = WriteAheadLog(tmp_path / "wal")
        segment = log.new_segment()
        segment.append(Record(payload, spans))
        segment.close()
        copy = segment.path.read_bytes()

        def counts() -> list[Any]:
            sql = ("SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM llm_calls),"
                   " (SELECT sum(Calls) FROM llm_calls_1m), (SELECT sum(Calls) FROM llm_calls_1h)")  # fmt: skip
            result = engine.run(sql)
            assert result is not None
            return list(result[0])

        assert SpanWriter(sink, log).replay() == 40
        assert counts() == [40, 40, 40, 40]
        segment.path.write_bytes(copy)  # died again after inserting, before deleting the segment
        SpanWriter(sink, log).replay()
        assert counts() == [40, 40, 40, 40]
        sink.close()
    finally:
        engine.close()

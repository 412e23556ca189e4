"""The writer's first INSERT sends ``Native`` blocks: the stored rows equal what the JSON lines store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmtrace.server.batcher import SpanWriter
from llmtrace.server.decode import Prepared, prepare_request
from llmtrace.server.engine import Engine
from llmtrace.server.sink import SpanSink
from llmtrace.server.wal import Record, WriteAheadLog
from llmtrace.store.migrations import apply_migrations
from llmtrace.store.native_block import OTEL_TRACES_TYPES, native_block
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

PROTOBUF = "application/x-protobuf"
VALUES = {
    "empty": AnyValue(),
    "string": AnyValue(string_value='naïve 日本語 🙂 "quoted" \\ back\nslash\ttab'),
    "int.max": AnyValue(int_value=2**63 - 1),
    "int.min": AnyValue(int_value=-(2**63)),
    "double": AnyValue(double_value=1e-7),
    "nan": AnyValue(double_value=float("nan")),
    "bool": AnyValue(bool_value=False),
    "bytes": AnyValue(bytes_value=b"\x00\xff"),
    "array": AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="<a>"), AnyValue(int_value=3)])),
    "kvlist": AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="b", value=AnyValue(int_value=9))])),
    "huge": AnyValue(string_value="z" * 1_000_000),
    "ключ 🙂": AnyValue(string_value=""),
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = Engine(tmp_path_factory.mktemp("native") / "data")
    apply_migrations(engine.run)
    for table in ("by_native", "by_lines"):
        engine.run(f"CREATE TABLE {table} AS otel_traces")
    yield engine
    engine.close()


def _span(i: int, now: int, attributes: list[KeyValue]) -> Span:
    start = now - i * 1_000_000
    return Span(
        trace_id=bytes([i + 1]) * 16,
        span_id=bytes([i + 1]) * 8,
        parent_span_id=b"\x07" * 8 if i else b"",
        trace_state="k=v" if i else "",
        name=f"chat model-{i} ✓",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 5 if i else start,  # a zero duration too
        attributes=attributes,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom ✗") if i else Status(),
        events=[Span.Event(time_unix_nano=start + 1, name="ev 🙂", attributes=attributes[:3])] if i else [],
        links=[Span.Link(trace_id=b"\x09" * 16, span_id=b"\x08" * 8, attributes=attributes[1:2])] if i else [],
    )


def _request() -> bytes:
    """Spans with every value type, unicode keys and values, a 1 MB attribute, and one span with
    empty maps, no events, no links and no parent."""
    now = time.time_ns()
    attributes = [KeyValue(key=key, value=value) for key, value in VALUES.items()]
    spans = [_span(0, now, []), _span(1, now, attributes), _span(2, now, attributes[:4])]
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="native ✓"))])
    scope = ScopeSpans(scope=InstrumentationScope(name="tests", version="1"), spans=spans)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])])
    return request.SerializeToString()


def _table(engine: Engine, table: str) -> list[Any]:
    rows = engine.run(f"SELECT * FROM {table} ORDER BY SpanId")
    assert rows is not None
    return rows


def test_every_value_type_stores_the_same_rows_from_native_blocks_as_from_json_lines(engine: Engine) -> None:
    prepared = prepare_request(_request(), None, PROTOBUF)
    assert prepared.native  # the writer's first INSERT will send it
    for table, native in (("by_native", prepared.native), ("by_lines", b"")):
        sink = SpanSink(engine, table=table)
        try:
            sink(prepared.payload, f"native-test-{table}", prepared.keys, native=native)
        finally:
            sink.close()
    by_native, by_lines = _table(engine, "by_native"), _table(engine, "by_lines")
    assert len(by_native) == 3
    assert by_native == by_lines
    attributes = json.loads(json.dumps(by_native[1][OTEL_TRACES_COLUMNS.index("SpanAttributes")]))
    assert attributes["huge"] == "z" * 1_000_000
    assert attributes["ключ 🙂"] == "" and attributes["int.min"] == str(-(2**63))
    assert by_native[0][OTEL_TRACES_COLUMNS.index("SpanAttributes")] == {}


def test_a_block_that_cannot_be_made_leaves_the_lines_which_the_writer_stores(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(rows: Any) -> bytes:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr("llmtrace.store.native_block.native_block", refuse)
    prepared = prepare_request(_request(), None, PROTOBUF)
    assert prepared.native == b"" and prepared.spans == 3
    engine.run("TRUNCATE TABLE otel_traces")
    writer = SpanWriter(SpanSink(engine), WriteAheadLog(tmp_path / "wal"))
    writer.start()
    writer.accept(Record(prepared.payload, prepared.spans, keys=prepared.keys, native=prepared.native))
    assert writer.wait_visible(30)
    writer.close()
    assert engine.run("SELECT count() FROM otel_traces") == [(3,)]


class _Recording:
    """A sink that records which format each INSERT sent."""

    def __init__(self, sink: SpanSink) -> None:
        self.sink = sink
        self.sent: list[str] = []

    def __call__(self, payload: bytes, token: str, keys: Any = None, native: bytes = b"") -> None:
        self.sent.append("native" if native else "lines")
        self.sink(payload, token, keys, native=native)

    def absent(self, payload: bytes) -> bytes:
        return self.sink.absent(payload)


def _record(prepared: Prepared, native: bool = True) -> Record:
    return Record(prepared.payload, prepared.spans, keys=prepared.keys, native=prepared.native if native else b"")


def test_the_writer_sends_native_only_when_every_record_of_the_batch_has_it(engine: Engine, tmp_path: Path) -> None:
    sink = _Recording(SpanSink(engine))
    log = WriteAheadLog(tmp_path / "wal")
    with_native = prepare_request(_request(), None, PROTOBUF)
    SpanWriter(sink, log)._store([_record(with_native)], "native-one")
    SpanWriter(sink, log)._store([_record(with_native), _record(with_native, native=False)], "native-mixed")
    assert sink.sent == ["native", "lines"]
    sink.sink.close()


def test_the_block_types_are_the_tables_column_types(engine: Engine) -> None:
    rows = engine.run(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'"
        " ORDER BY position"
    )
    assert rows == list(zip(OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES, strict=True))


def test_a_value_the_block_cannot_hold_raises_and_no_rows_give_no_block() -> None:
    assert native_block([]) == b""
    row: list[Any] = [0, "", "", "", "", "", "", "", {}, "", "", {}, 0, "", "", [], [], [], [], [], [], []]
    row[OTEL_TRACES_COLUMNS.index("Duration")] = "not a number"
    with pytest.raises(Exception):  # noqa: B017 - whatever the serializer raises, decode falls back
        native_block([tuple(row)])

"""The span writer on a real embedded engine: batches, visibility, replay, and a poisoned request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrace.server.batcher import SpanWriter
from llmtrace.server.decode import prepare
from llmtrace.server.engine import Engine
from llmtrace.server.sink import SpanSink
from llmtrace.server.wal import Record, WriteAheadLog
from llmtrace.store.migrations import apply_migrations
from tests.server_process import otlp_request


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = Engine(tmp_path_factory.mktemp("writer") / "data")
    apply_migrations(engine.run)
    yield engine
    engine.close()  # one chDB engine per process: the next module may open another directory


@pytest.fixture
def sink(engine: Engine) -> Iterator[SpanSink]:
    sink = SpanSink(engine)
    yield sink
    sink.close()


def record(service: str, spans: int = 3) -> Record:
    payload, count = prepare(otlp_request(spans, service=service).SerializeToString(), None, "application/x-protobuf")
    return Record(payload, count)


def stored(engine: Engine, service: str, table: str = "otel_traces") -> int:
    rows = engine.run(f"SELECT count() FROM {table} WHERE ServiceName = '{service}'")
    assert rows is not None
    return int(rows[0][0])


def test_accepted_requests_are_queryable_once_wait_visible_returns(engine: Engine, sink: SpanSink, tmp_path: Path):
    writer = SpanWriter(sink, WriteAheadLog(tmp_path / "wal"))
    writer.start()
    for _ in range(4):
        writer.accept(record("visible-now"))
    assert writer.wait_visible(30)
    assert stored(engine, "visible-now") == 12
    writer.close()
    assert not list((tmp_path / "wal").glob("*.wal"))


def test_a_request_the_database_refuses_is_quarantined_and_the_rest_stored(
    engine: Engine, sink: SpanSink, tmp_path: Path
) -> None:
    writer = SpanWriter(sink, WriteAheadLog(tmp_path / "wal"))
    writer.start()
    writer.accept(record("good-before"))
    writer.accept(Record(b'["not", "a", "span"]\n', 1))
    writer.accept(record("good-after"))
    assert writer.wait_visible(60)
    writer.close()
    assert (stored(engine, "good-before"), stored(engine, "good-after")) == (3, 3)
    assert writer.rejected_requests == 1
    assert len(list((tmp_path / "wal" / "rejected").glob("*.wal"))) == 1


def test_replaying_a_segment_that_was_already_inserted_adds_nothing(engine: Engine, sink: SpanSink, tmp_path: Path):
    log = WriteAheadLog(tmp_path / "wal")
    segment = log.new_segment()
    segment.append(record("replayed-twice", spans=5))
    segment.close()
    copy = segment.path.read_bytes()
    assert SpanWriter(sink, log).replay() == 5
    segment.path.write_bytes(copy)  # as if the process died after the INSERT, before deleting the segment
    SpanWriter(sink, log).replay()
    assert stored(engine, "replayed-twice") == 5
    assert stored(engine, "replayed-twice", "llm_calls") == 5


def test_server_ttl_days_also_changes_existing_tables(engine: Engine) -> None:
    from llmtrace.server.app import _migrate

    def retention() -> str:
        rows = engine.run(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'llm_calls'"
        )
        assert rows
        return str(rows[0][0])

    assert _migrate(engine, None) == []  # nothing pending, nothing changed
    assert "toIntervalDay(30)" in retention()
    _migrate(engine, 9)
    assert "toIntervalDay(9)" in retention()
    _migrate(engine, None)
    assert "toIntervalDay(9)" in retention()
    _migrate(engine, 30)
    assert "toIntervalDay(30)" in retention()


def test_spans_reusing_another_spans_id_are_still_stored_on_replay(engine: Engine, sink: SpanSink, tmp_path: Path):
    """Span ids alone can repeat (fixed or seeded ids); a replay must not take them as stored."""
    first = WriteAheadLog(tmp_path / "wal-first")
    segment = first.new_segment()
    segment.append(record("reused-ids-a", spans=4))  # otlp_request's ids come from seed 0 both times
    segment.close()
    SpanWriter(sink, first).replay()
    second = WriteAheadLog(tmp_path / "wal-second")
    segment = second.new_segment()
    segment.append(record("reused-ids-b", spans=4))
    segment.close()
    SpanWriter(sink, second).replay()
    assert (stored(engine, "reused-ids-a"), stored(engine, "reused-ids-b")) == (4, 4)

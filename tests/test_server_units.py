"""The server's small parts on their own: SQL splitting, body limits, the write-ahead log."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import lz4.frame
import pytest

from llmtrace.server.bodies import BodyError, BodyTooLarge, UnsupportedEncoding, decompress
from llmtrace.server.chcompat import http_status, password_matches
from llmtrace.server.decode import OtlpDecodeFailed, encode_rows, prepare
from llmtrace.server.sqltext import SqlTextError, parse_statement
from llmtrace.server.wal import Record, WriteAheadLog, read_segment
from tests.server_process import otlp_request


def test_insert_data_after_the_format_clause_is_split_off_byte_exact() -> None:
    statement = parse_statement(b"INSERT INTO t (a, `FORMAT`) FORMAT Native\n\n\x00\x01")
    assert (statement.sql, statement.insert_format, statement.data) == (
        "INSERT INTO t (a, `FORMAT`)",
        "Native",
        b"\n\x00\x01",
    )


def test_insert_values_stay_one_statement() -> None:
    statement = parse_statement(b"INSERT INTO t VALUES ('FORMAT CSV')")
    assert statement.insert_format is None and statement.sql == "INSERT INTO t VALUES ('FORMAT CSV')"


def test_the_trailing_format_clause_names_the_output_format() -> None:
    statement = parse_statement(b"-- FORMAT X\nSELECT 'FORMAT Y', (SELECT 1 FORMAT Z) /* FORMAT W */ FORMAT JSON")
    assert (statement.kind, statement.output_format, statement.returns_rows) == ("SELECT", "JSON", True)


def test_ddl_returns_no_rows() -> None:
    assert not parse_statement(b"CREATE TABLE x (a UInt8) ENGINE = Memory").returns_rows


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"   ", 62),
        (b"SELECT 1 INTO /* */ OUTFILE 'x'", 48),
        (b"SELECT '\xff'", 62),
        (b"SELECT " + b"1" * 300_000, 229),
    ],
    ids=["empty", "into-outfile", "not-utf8", "too-large"],
)
def test_unusable_queries_are_refused_with_clickhouse_codes(text: bytes, code: int) -> None:
    with pytest.raises(SqlTextError) as caught:
        parse_statement(text)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gzip.compress(b"a" * 10) + gzip.compress(b"b" * 10)),
        ("lz4", lz4.frame.compress(b"a" * 10) + lz4.frame.compress(b"b" * 10)),
        ("deflate", zlib.compress(b"a" * 10 + b"b" * 10)),
    ],
    ids=["gzip", "lz4", "deflate"],  # gzip's header holds the time: bytes in the id differed between collections
)
def test_concatenated_compressed_frames_inflate_whole(encoding: str, packed: bytes) -> None:
    assert decompress(packed, encoding, 100) == b"a" * 10 + b"b" * 10


def test_inflating_past_the_limit_stops_early() -> None:
    with pytest.raises(BodyTooLarge):
        decompress(gzip.compress(b"\0" * 10_000_000), "gzip", 1_000_000)


def test_corrupt_and_unknown_encodings_are_distinct_errors() -> None:
    with pytest.raises(BodyError, match="not valid gzip"):
        decompress(b"nope", "gzip", 100)
    with pytest.raises(UnsupportedEncoding, match="br"):
        decompress(b"x", "br", 100)


def test_a_torn_last_record_ends_a_segment(tmp_path: Path) -> None:
    segment = WriteAheadLog(tmp_path).new_segment()
    segment.append(Record(b'["a"]\n', 1))
    segment.append(Record(b'["b"]\n["c"]\n', 2))
    segment.close()
    with segment.path.open("ab") as file:
        file.write(b"\x00\x00\x00\x09\x00")
    assert [(r.payload, r.spans) for r in read_segment(segment.path)] == [(b'["a"]\n', 1), (b'["b"]\n["c"]\n', 2)]


def test_segments_sort_oldest_first_and_never_reuse_names(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    made = [log.new_segment() for _ in range(3)]
    for segment in made:
        segment.close()
    assert log.leftovers() == [s.path for s in made] and len({s.path for s in made}) == 3


def test_a_request_becomes_one_json_line_per_span_with_nanosecond_text_timestamps() -> None:
    request = otlp_request(2)
    payload, spans = prepare(request.SerializeToString(), None, "application/x-protobuf")
    start = request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano
    assert spans == 2 and payload.count(b"\n") == 2
    assert payload.startswith(f'["{start // 10**9}.{start % 10**9:09d}",'.encode())


def test_encoding_keeps_non_ascii_text() -> None:
    row = (1_000_000_001, "t", "s", "", "", "n", "Client", "svc", {}, "", "", {"k": "é\n"}, 1, "Ok", "", [], [], [], [],
           [], [], [])  # fmt: skip
    assert '"k":"é\\n"'.encode() in encode_rows([row])


def test_garbage_protobuf_is_a_decode_failure() -> None:
    with pytest.raises(OtlpDecodeFailed, match="protobuf"):
        prepare(b"\x0a\xff\xff\xff\xff\x0f", None, "application/x-protobuf")


def test_clickhouse_error_codes_map_to_its_http_statuses() -> None:
    assert [http_status(c) for c in (62, 60, 164, 516, 229, 48)] == [400, 404, 500, 403, 413, 501]


def test_only_the_default_user_with_the_password_is_let_in() -> None:
    assert password_matches({}, "default", "pw", "pw")
    assert not password_matches({}, "admin", "pw", "pw")
    assert not password_matches({"authorization": "Basic !!!"}, "", "", "pw")

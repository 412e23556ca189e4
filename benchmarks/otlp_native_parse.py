"""Could ClickHouse decode OTLP itself? Its ``ProtobufSingle`` input against the server's Python decoder.

docs/performance.md named ClickHouse's own ``Protobuf`` input format as a way past the Python
decoding cost of ingest. This measures it on the ingest benchmark's spans (~30 attributes): the
same 512-span ``ExportTraceServiceRequest`` parsed by chDB (oneof presence read through
``Nullable`` columns) and flattened to one row per span with the ``otel_traces`` columns a span
fills (no events or links), against ``prepare_request`` (the server's decoder: OTLP -> insert-ready
JSON lines), CPU per span, in one process, interleaved round by round, a different request each round.

    python benchmarks/otlp_native_parse.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from chdb import session
from ingest import FreshBodies, genai_spans

from llmtrace.server.decode import prepare_request

# The OTLP trace messages the query reads (opentelemetry-proto v1 field numbers); attribute values
# are scalars or arrays of scalars (the spec's attribute types), so one level of arrays suffices.
OTLP_PROTO = """
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
  double double_value = 4; ArrayValue array_value = 5; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Scope { string name = 1; string version = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; Status status = 15; }
message ScopeSpans { Scope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
"""
_SCALAR = (
    "string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),"
    " double_value Nullable(Float64)"
)
_KV = f"Array(Tuple(key String, value Tuple({_SCALAR}, array_value Tuple(values Array(Tuple({_SCALAR}))))))"
_SPAN = (
    "Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, name String, kind Int32,"
    " start_time_unix_nano UInt64, end_time_unix_nano UInt64,"
    f" attributes {_KV}, status Tuple(message String, code Int32))"
)
STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_KV}),"
    f" scope_spans Array(Tuple(scope Tuple(name String, version String), spans Array({_SPAN})))))"
)
_TEXT = (
    "multiIf(v.string_value IS NOT NULL, v.string_value, v.int_value IS NOT NULL, toString(v.int_value),"
    " v.bool_value IS NOT NULL, if(v.bool_value, 'true', 'false'), v.double_value IS NOT NULL,"
    " toString(v.double_value), toJSONString(v.array_value.values))"
)


def _map(attributes: str) -> str:
    pairs = f"(arrayMap(a -> a.key, {attributes}), arrayMap(a -> (a.value AS v, {_TEXT}).2, {attributes}))"
    return f"CAST({pairs}, 'Map(LowCardinality(String), String)')"


ROWS = f"""
SELECT fromUnixTimestamp64Nano(toInt64(sp.start_time_unix_nano)) AS Timestamp,
  lower(hex(sp.trace_id)) AS TraceId, lower(hex(sp.span_id)) AS SpanId,
  lower(hex(sp.parent_span_id)) AS ParentSpanId, sp.trace_state AS TraceState, sp.name AS SpanName,
  ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][sp.kind + 1] AS SpanKind,
  {_map("res.attributes")} AS ResourceAttributes, ss.scope.name AS ScopeName,
  ss.scope.version AS ScopeVersion, {_map("sp.attributes")} AS SpanAttributes,
  toUInt64(sp.end_time_unix_nano - sp.start_time_unix_nano) AS Duration,
  ['Unset', 'Ok', 'Error'][sp.status.code + 1] AS StatusCode, sp.status.message AS StatusMessage
FROM (SELECT arrayJoin(rs.scope_spans) AS ss, rs.resource AS res FROM (SELECT arrayJoin(resource_spans) AS rs
      FROM file('{{path}}', 'ProtobufSingle', '{STRUCTURE}')))
ARRAY JOIN ss.spans AS sp
"""
SETTINGS = " SETTINGS max_threads = 1, format_schema = '{schema}:ExportTraceServiceRequest'"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llmtrace-otlp-native-"))
    schema = work / "otlp.proto"
    schema.write_text(OTLP_PROTO)
    # A different request each round: the decoder caches attribute values it has seen recently.
    bodies = FreshBodies(genai_spans(512 * args.rounds, 1), 512)
    requests = [bodies.body(n) for n in range(args.rounds)]
    for n, body in enumerate(requests):
        (work / f"request-{n}.bin").write_bytes(body)
    db = session.Session(str(work / "db"))
    db.query(
        "CREATE TABLE spans (Timestamp DateTime64(9), TraceId String, SpanId String, ParentSpanId String,"
        " TraceState String, SpanName LowCardinality(String), SpanKind LowCardinality(String),"
        " ResourceAttributes Map(LowCardinality(String), String), ScopeName String, ScopeVersion String,"
        " SpanAttributes Map(LowCardinality(String), String), Duration UInt64,"
        " StatusCode LowCardinality(String), StatusMessage String) ENGINE = Null"
    )
    settings = SETTINGS.format(schema=schema)
    first = ROWS.format(path=work / "request-0.bin")
    spans = int(str(db.query(f"SELECT count() FROM ({first}){settings}", "CSV")).strip())
    assert spans == 512, spans
    timings: dict[str, list[float]] = {"chDB ProtobufSingle -> otel_traces columns (into Null)": [],
                                       "llmtrace prepare_request (OTLP -> JSON lines)": []}  # fmt: skip
    for n, body in enumerate(requests):
        rows = ROWS.format(path=work / f"request-{n}.bin")
        started = time.process_time()
        db.query(f"INSERT INTO spans {rows}{settings}")
        parsed = time.process_time()
        prepare_request(body, None, "application/x-protobuf")
        decoded = time.process_time()
        names = list(timings)
        timings[names[0]].append(1e6 * (parsed - started) / spans)
        timings[names[1]].append(1e6 * (decoded - parsed) / spans)
    for name, values in timings.items():
        print(f"{name:<58} median {statistics.median(values):5.1f} µs CPU/span (best {min(values):.1f})")
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

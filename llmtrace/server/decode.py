"""OTLP request body -> an insert-ready ``otel_traces`` payload. Runs in worker processes.

Decoding a span costs ~30 µs of pure Python (protobuf access per attribute) and encoding it
for ClickHouse ~10 µs; in the server's own process that work would fight the event loop and
the writer for the GIL. Worker processes do it in parallel and hand back bytes: one
``JSONCompactEachRow`` line per span, ready to be logged and inserted as is (lines of many
requests concatenate into one INSERT). ``DateTime64(9)`` reads a JSON integer as seconds, so
nanosecond timestamps travel as ``"seconds.nanoseconds"`` strings.

This module imports no server machinery (no chDB, no starlette), so workers start fast.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace.server.bodies import decompress

__all__ = ["INSERT_FORMAT", "MAX_BODY_BYTES", "OtlpDecodeFailed", "decode_traces", "encode_rows", "prepare"]

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest accepted OTLP body, compressed or not (the Collector's default is 20 MiB)."""
INSERT_FORMAT = "JSONCompactEachRow"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "zstd"})
_MAX_TIMESTAMP_NS = 2**63  # DateTime64(9) ends in 2262
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

Row = tuple[Any, ...]


class OtlpDecodeFailed(ValueError):
    """The body is not an OTLP traces request (the server answers 400 with this message)."""


def decode_traces(body: bytes, content_type: str) -> list[Row]:
    """OTLP bytes -> otel_traces rows. Raises :class:`OtlpDecodeFailed` with the reason."""
    from llmtrace.store.otlp_rows import rows_from_json, rows_from_request

    if content_type == JSON:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise OtlpDecodeFailed(f"body is not valid JSON: {exc}") from None
        try:
            return _checked(rows_from_json(payload))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise OtlpDecodeFailed(str(exc)) from None
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise OtlpDecodeFailed(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    try:
        return _checked(rows_from_request(request))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise OtlpDecodeFailed(f"invalid span data: {exc}") from None


def _checked(rows: list[Row]) -> list[Row]:
    """Refuse what the table cannot hold, before the request is acknowledged."""
    start, events = _timestamp_columns()
    if rows and max(row[start] for row in rows) >= _MAX_TIMESTAMP_NS:
        raise OtlpDecodeFailed("a span's start_time_unix_nano is after the year 2262; send nanoseconds since 1970")
    if any(ns >= _MAX_TIMESTAMP_NS for row in rows for ns in row[events]):
        raise OtlpDecodeFailed("an event's time_unix_nano is after the year 2262; send nanoseconds since 1970")
    return rows


def _timestamp_columns() -> tuple[int, int]:
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    return OTEL_TRACES_COLUMNS.index("Timestamp"), OTEL_TRACES_COLUMNS.index("Events.Timestamp")


def _ns_text(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def encode_rows(rows: list[Row]) -> bytes:
    """Rows (``OTEL_TRACES_COLUMNS`` order) -> ``JSONCompactEachRow`` bytes, one line per row."""
    start, events = _timestamp_columns()
    lines = []
    for row in rows:
        values = list(row)
        values[start] = _ns_text(values[start])
        values[events] = [_ns_text(ns) for ns in values[events]]
        lines.append(_encode(values))
    lines.append("")
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def prepare(body: bytes, encoding: str | None, content_type: str) -> tuple[bytes, int]:
    """Inflate, decode, check and encode one request: (payload, span count).

    Raises :class:`llmtrace.server.bodies.BodyError` (or its subclasses) for the body and
    :class:`OtlpDecodeFailed` for its content.
    """
    rows = decode_traces(decompress(body, encoding, MAX_BODY_BYTES, _ENCODINGS), content_type)
    return encode_rows(rows), len(rows)

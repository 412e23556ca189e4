"""OTLP request body -> an insert-ready ``otel_traces`` payload. Runs in worker processes.

Decoding a 30-attribute span costs ~25 µs of Python (attributes read from their wire bytes,
see :mod:`llmtrace.store.otlp_wire`) and encoding it for ClickHouse ~3 µs (orjson); in the
server's own process that work would fight the event loop and the writer for the GIL. Worker
processes do it in parallel and hand back bytes: one ``JSONCompactEachRow`` line per span,
ready to be logged and inserted as is (lines of many requests concatenate into one INSERT),
with the spans' keys, which the writer would otherwise scan the payload for.

``DateTime64(9)`` reads a JSON integer as seconds, so nanosecond timestamps travel as
``"seconds.nanoseconds"`` strings, the seconds zero-padded to ten digits: ClickHouse reads a
string of eight or fewer digits as a ``YYYYMMDD`` date, so ``"5.000000000"`` (any start before
1973-03-03) was refused at INSERT time, after the 200.

Spans the store would not keep are taken out here, before the request is acknowledged (see
:func:`storable`): the client gets 400 with the reason when no span is left, else 200 with an
OTLP ``partial_success`` naming how many spans were rejected and why (what the OTLP spec
prescribes for a partly accepted request, so the good spans of a batch are not lost with a bad
one). Storing them clamped would write a made-up time into every table.

This module imports no server machinery (no chDB, no starlette), so workers start fast.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from llmtrace.server.bodies import decompress
from llmtrace.server.chunks import SpanKeys
from llmtrace.server.span_cost import price_unpriced

__all__ = [
    "INSERT_FORMAT",
    "MAX_BODY_BYTES",
    "OtlpDecodeFailed",
    "Prepared",
    "decode_traces",
    "encode_rows",
    "prepare",
    "prepare_request",
    "storable",
]

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest accepted OTLP body, compressed or not (the Collector's default is 20 MiB)."""
INSERT_FORMAT = "JSONCompactEachRow"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "zstd"})
_MAX_TIMESTAMP_NS = 2**63  # DateTime64(9) ends in 2262
# The rollups' Bucket, otel_traces_trace_id_ts.Start and every TTL are DateTime (UInt32 seconds):
# a later span is dropped from otel_traces by a wrapped TTL but lands in the rollups at 2106.
_MAX_START_NS = (2**32 - 1) * 1_000_000_000
_DAY_NS = 86_400 * 1_000_000_000
# A span this close to the retention edge could expire while it waits in the log for its batch.
_RETENTION_MARGIN_NS = 3_600 * 1_000_000_000
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

Row = tuple[Any, ...]


class OtlpDecodeFailed(ValueError):
    """The body is not an OTLP traces request (the server answers 400 with this message)."""


def decode_traces(body: bytes, content_type: str) -> list[Row]:
    """OTLP bytes -> otel_traces rows. Raises :class:`OtlpDecodeFailed` with the reason."""
    from llmtrace.store.otlp_rows import rows_from_bytes, rows_from_json

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

    try:
        rows = rows_from_bytes(body)
    except (DecodeError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise OtlpDecodeFailed(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    try:
        return _checked(rows)
    except (ValueError, TypeError) as exc:
        raise OtlpDecodeFailed(f"invalid span data: {exc}") from None


def _checked(rows: list[Row]) -> list[Row]:
    """Refuse what the table cannot hold, before the request is acknowledged."""
    start, events = _timestamp_columns()
    if rows and max(row[start] for row in rows) >= _MAX_TIMESTAMP_NS:
        raise OtlpDecodeFailed("a span's start_time_unix_nano is after the year 2262; send nanoseconds since 1970")
    if any(ns >= _MAX_TIMESTAMP_NS for row in rows for ns in row[events]):
        raise OtlpDecodeFailed("an event's time_unix_nano is after the year 2262; send nanoseconds since 1970")
    return rows


def storable(start_ns: int, oldest_ns: int | None) -> str | None:
    """Why ClickHouse would not keep a span starting at ``start_ns`` (None: it will).

    ``oldest_ns``: the retention edge. Rows older than a table's TTL are dropped at INSERT time
    (chDB still reports them written), so such spans would be acknowledged and never stored.
    """
    if start_ns == 0:
        return "start_time_unix_nano is 0 (unset); send the span's start time in nanoseconds since 1970"
    if start_ns > _MAX_START_NS:
        return "start_time_unix_nano is after 2106-02-07, the end of ClickHouse DateTime used by the rollups"
    if oldest_ns is not None and start_ns < oldest_ns:
        return "start_time_unix_nano is older than the server's retention (--ttl-days); it would be deleted at once"
    return None


def retention_edge(ttl_days: int | None) -> int | None:
    """The oldest start time worth accepting now for tables kept ``ttl_days`` (None: no TTL)."""
    if ttl_days is None:
        return None
    return time.time_ns() - ttl_days * _DAY_NS + _RETENTION_MARGIN_NS


class Prepared(NamedTuple):
    """One decoded request: the insert payload, its span count, the spans left out, and the keys
    of the spans kept (so the writer need not scan the payload for them)."""

    payload: bytes
    spans: int
    rejected: int = 0
    reason: str = ""
    keys: SpanKeys | None = None


def _keep_storable(rows: list[Row], oldest_ns: int | None) -> tuple[list[Row], int, str]:
    start, _ = _timestamp_columns()
    kept: list[Row] = []
    reasons: dict[str, int] = {}
    for row in rows:
        why = storable(row[start], oldest_ns)
        if why is None:
            kept.append(row)
        else:
            reasons[why] = reasons.get(why, 0) + 1
    message = "; ".join(f"{n} span(s): {why}" for why, n in reasons.items())
    return kept, len(rows) - len(kept), message


def _timestamp_columns() -> tuple[int, int]:
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    return OTEL_TRACES_COLUMNS.index("Timestamp"), OTEL_TRACES_COLUMNS.index("Events.Timestamp")


def _ns_text(ns: int) -> str:
    return f"{ns // 1_000_000_000:010d}.{ns % 1_000_000_000:09d}"


def encode_rows(rows: list[Row]) -> bytes:
    """Rows (``OTEL_TRACES_COLUMNS`` order) -> ``JSONCompactEachRow`` bytes, one line per row."""
    import orjson

    start, events = _timestamp_columns()
    lines = []
    for row in rows:
        values = list(row)
        values[start] = _ns_text(values[start])
        values[events] = [_ns_text(ns) for ns in values[events]]
        try:
            lines.append(orjson.dumps(values))
        except orjson.JSONEncodeError:  # a lone surrogate (OTLP/JSON allows "\ud800"): kept as is
            lines.append(_encode(values).encode("utf-8", "surrogatepass"))
    lines.append(b"")
    return b"\n".join(lines)


def prepare_request(body: bytes, encoding: str | None, content_type: str, oldest_ns: int | None = None) -> Prepared:
    """Inflate, decode, check and encode one request, leaving out spans the store would not keep.

    Raises :class:`llmtrace.server.bodies.BodyError` (or its subclasses) for the body and
    :class:`OtlpDecodeFailed` for its content, also when no span of it can be stored.
    """
    rows = decode_traces(decompress(body, encoding, MAX_BODY_BYTES, _ENCODINGS), content_type)
    kept, rejected, reason = _keep_storable(rows, oldest_ns)
    if rejected and not kept:
        raise OtlpDecodeFailed(f"no span of this request can be stored: {reason}")
    price_unpriced(kept)
    return Prepared(encode_rows(kept), len(kept), rejected, reason, _keys(kept))


def _keys(rows: list[Row]) -> SpanKeys | None:
    """What :func:`llmtrace.server.chunks.span_keys` reads from the payload, from the rows."""
    if not rows:
        return None
    start, span_id = _timestamp_columns()[0], 2
    starts = [row[start] for row in rows]
    return SpanKeys(min(starts), max(starts), list({f"{row[span_id]}:{row[start]}" for row in rows}))


def prepare(body: bytes, encoding: str | None, content_type: str, oldest_ns: int | None = None) -> tuple[bytes, int]:
    """(payload, span count) of :func:`prepare_request`."""
    prepared = prepare_request(body, encoding, content_type, oldest_ns)
    return prepared.payload, prepared.spans

"""Spans as an OTLP ``ExportTraceServiceRequest`` in protobuf wire format, without protobuf.

OpenTelemetry's own encoder builds generated protobuf messages: importing them, with the
``requests`` stack its HTTP exporter sends through, adds ~6 MB to an app's memory. The wire
format of the few OTLP messages a span needs is small enough to write directly; the bytes are
the same as ``opentelemetry-exporter-otlp-proto-common``'s ``encode_spans(...).SerializeToString()``
(fields in number order, proto3 defaults omitted, ``tests/test_otlp_exporter.py`` compares them).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

log = logging.getLogger("llmtrace")

_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags masks
_U64 = 0xFFFF_FFFF_FFFF_FFFF


def _varint(value: int) -> bytes:
    value &= _U64  # int64: negatives as ten-byte two's complement, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str | None) -> bytes:
    return _field(number, value.encode()) if value else b""


def _uint(number: int, value: int | None) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _fixed64(number: int, value: int | None) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value) if value else b""


def _fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value) if value else b""


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``'s body; its oneof field is written even when it holds a default."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"cannot encode {type(value).__name__} {value!r} as an OTLP attribute value")


def _key_value(key: str, value: Any) -> bytes:
    return _text(1, key) + _field(2, _any_value(value))


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` field ``number``; a value that cannot be encoded is logged and skipped."""
    parts = []
    for key, value in (attributes or {}).items():
        try:
            parts.append(_field(number, _key_value(key, value)))
        except TypeError as exc:
            log.warning("llmtrace: attribute %r not exported: %s", key, exc)
    return b"".join(parts)


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


def _trace_state(context: SpanContext) -> str | None:
    state = context.trace_state
    return None if state is None else ",".join(f"{key}={value}" for key, value in state.items())


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None  # an SDK span always has one
    parent = span.parent
    status = span.status
    parts = [
        _field(1, context.trace_id.to_bytes(16, "big")),
        _field(2, context.span_id.to_bytes(8, "big")),
        _text(3, _trace_state(context)),
        _field(4, parent.span_id.to_bytes(8, "big")) if parent else b"",
        _text(5, span.name),
        _uint(6, span.kind.value + 1),  # OTLP numbers SPAN_KIND_INTERNAL as 1
        _fixed64(7, span.start_time),
        _fixed64(8, span.end_time),
        _attributes(9, span.attributes),
        _uint(10, span.dropped_attributes),
        *(_field(11, _event(event)) for event in span.events),
        _uint(12, span.dropped_events),
        *(_field(13, _link(link)) for link in span.links),
        _uint(14, span.dropped_links),
        _field(15, _text(2, status.description) + _uint(3, status.status_code.value)) if status is not None else b"",
        _fixed32(16, _flags(parent)),
    ]
    return b"".join(parts)


def _event(event: Any) -> bytes:
    return (
        _fixed64(1, event.timestamp)
        + _text(2, event.name)
        + _attributes(3, event.attributes)
        + _uint(4, event.dropped_attributes)
    )


def _link(link: Any) -> bytes:
    return (
        _field(1, link.context.trace_id.to_bytes(16, "big"))
        + _field(2, link.context.span_id.to_bytes(8, "big"))
        + _attributes(4, link.attributes)
        + _uint(5, link.dropped_attributes)
        + _fixed32(6, _flags(link.context))
    )


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    return _text(1, scope.name) + _text(2, scope.version) + _attributes(3, scope.attributes)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The request body for ``POST /v1/traces``: spans grouped by resource, then by instrumentation scope."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    for span in spans:
        scopes = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_field(2, _span(span)))
    out = []
    for resource, scopes in grouped.items():
        scope_spans = b"".join(
            _field(2, _field(1, _scope(scope)) + b"".join(encoded) + _text(3, scope.schema_url if scope else None))
            for scope, encoded in scopes.items()
        )
        body = _field(1, _attributes(1, resource.attributes)) + scope_spans + _text(3, resource.schema_url)
        out.append(_field(1, body))
    return b"".join(out)

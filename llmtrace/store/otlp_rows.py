"""OTLP traces -> ``otel_traces`` rows, stored exactly as the Collector's ClickHouse exporter does.

This is the one conversion used by ``llmtrace server`` (OTLP/HTTP protobuf and JSON) and by the
direct :mod:`llmtrace.exporters.clickhouse` exporter, so data looks the same whichever path
wrote it: attribute values as strings (ints decimal, doubles as shortest decimal the way Go's
``encoding/json`` prints them, bools ``true``/``false``, arrays and maps as JSON, bytes base64),
``SpanKind`` ``Client``/..., ``StatusCode`` ``Unset``/``Ok``/``Error``, ids lowercase hex.

Rows are tuples in :data:`OTEL_TRACES_COLUMNS` order; timestamps are integer nanoseconds since
the epoch (clickhouse-connect writes ints into ``DateTime64(9)`` as raw ticks), maps are dicts,
Nested columns are parallel lists. Kept lean: ingest must sustain tens of thousands of spans/s.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # opentelemetry-proto is a [server] dependency; import it only when converting
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OTEL_TRACES_COLUMNS", "OtlpDecodeError", "rows_from_json", "rows_from_request"]

OTEL_TRACES_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

# Index = proto enum value (opentelemetry.proto.trace.v1.Span.SpanKind / Status.StatusCode).
_SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS_CODES = ("Unset", "Ok", "Error")
_SERVICE_NAME = "service.name"
_JSON_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpDecodeError(ValueError):
    """The payload is not a valid OTLP traces request (the server answers HTTP 400 with it)."""


def rows_from_request(req: ExportTraceServiceRequest) -> list[tuple[Any, ...]]:
    """Flatten an ``ExportTraceServiceRequest`` into otel_traces rows (one per span)."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for resource_spans in req.resource_spans:
        resource_attrs = _attributes(resource_spans.resource.attributes)
        service_name = resource_attrs.get(_SERVICE_NAME, "")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                events = span.events
                links = span.links
                kind = span.kind
                code = span.status.code
                append(
                    (
                        start,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.trace_state,
                        span.name,
                        _SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified",
                        service_name,
                        resource_attrs,
                        scope_name,
                        scope_version,
                        _attributes(span.attributes),
                        end - start if end > start else 0,
                        _STATUS_CODES[code] if 0 <= code < 3 else "Unset",
                        span.status.message,
                        [e.time_unix_nano for e in events],
                        [e.name for e in events],
                        [_attributes(e.attributes) for e in events],
                        [link.trace_id.hex() for link in links],
                        [link.span_id.hex() for link in links],
                        [link.trace_state for link in links],
                        [_attributes(link.attributes) for link in links],
                    )
                )
    return rows


def rows_from_json(payload: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Convert an OTLP/JSON traces payload (hex ids, per the OTLP spec) into otel_traces rows.

    Raises :class:`OtlpDecodeError` naming what is wrong.
    """
    from google.protobuf.json_format import ParseDict, ParseError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    if not isinstance(payload, dict):
        raise OtlpDecodeError("OTLP/JSON body must be a JSON object with a resourceSpans array")
    _hex_ids_to_base64(payload)
    request = ExportTraceServiceRequest()
    try:
        ParseDict(payload, request, ignore_unknown_fields=True)
    except (ParseError, TypeError, ValueError) as exc:
        raise OtlpDecodeError(f"invalid OTLP/JSON traces payload: {exc}") from exc
    return rows_from_request(request)


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, str]:
    return {kv.key: _value_str(kv.value) for kv in kvs}


def _value_str(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return ""
    return _go_json(value)


def _go_json(value: AnyValue) -> str:
    """An array or kvlist as Go's ``encoding/json`` writes ``AsRaw()``: compact, map keys sorted,
    UTF-8 kept, ``<``, ``>``, ``&`` and U+2028/9 escaped, doubles as :func:`format_double`."""
    text = _json_value(value)
    if any(c in text for c in "<>&\u2028\u2029"):
        for char, escaped in _GO_ESCAPES:
            text = text.replace(char, escaped)
    return text


def _json_value(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return json.dumps(value.string_value, ensure_ascii=False)
    if kind == "array_value":
        return "[" + ",".join(_json_value(v) for v in value.array_value.values) + "]"
    if kind == "kvlist_value":
        items = sorted({kv.key: kv.value for kv in value.kvlist_value.values}.items())
        pairs = (json.dumps(k, ensure_ascii=False) + ":" + _json_value(v) for k, v in items)
        return "{" + ",".join(pairs) + "}"
    if kind == "bytes_value":
        return '"' + base64.b64encode(value.bytes_value).decode("ascii") + '"'
    if kind is None:
        return "null"
    return _value_str(value)


def format_double(x: float) -> str:
    """Go's ES6-style shortest formatting (pdata ``AsString``): ``1.5``, ``3``, ``1e-7``, ``1e+21``."""
    if math.isnan(x) or math.isinf(x):
        return "json: unsupported value: " + ("NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf"))
    text = repr(x)
    magnitude = abs(x)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        # repr() always uses an exponent at these magnitudes; Go drops the exponent's leading zero.
        mantissa, _, exponent = text.partition("e")
        mantissa = mantissa.removesuffix(".0")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    if "e" in text:  # Python switches to exponents at 1e16 / 1e-4; Go stays fixed in [1e-6, 1e21)
        text = _fixed(text)
    return text.removesuffix(".0")


def _fixed(shortest: str) -> str:
    from decimal import Decimal

    return format(Decimal(shortest), "f")


_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _hex_ids_to_base64(payload: dict[str, Any]) -> None:
    """OTLP/JSON carries ids as hex; protobuf's JSON mapping expects base64. Convert in place."""
    for resource_spans in _list(payload, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                _convert_ids(span)
                for link in _list(span, "links"):
                    _convert_ids(link)


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise OtlpDecodeError(f"expected a JSON object, got {type(obj).__name__}")
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise OtlpDecodeError(f"{key} must be an array, got {type(value).__name__}")
            return value
    return []


def _convert_ids(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise OtlpDecodeError(f"expected a span or link object, got {type(obj).__name__}")
    for key in _JSON_ID_FIELDS:
        value = obj.get(key)
        if not value:
            continue
        if not isinstance(value, str):
            raise OtlpDecodeError(f"{key} must be a hex string, got {value!r}")
        try:
            obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            message = f"{key} must be hex (OTLP/JSON encodes ids as hex), got {value!r}"
            raise OtlpDecodeError(message) from None

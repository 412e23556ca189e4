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
from typing import TYPE_CHECKING, Any

from llmtrace.store.otlp_values import attributes, format_double
from llmtrace.store.otlp_wire import request_class

if TYPE_CHECKING:  # opentelemetry-proto is a [server] dependency; import it only when converting
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = [
    "OTEL_TRACES_COLUMNS",
    "OTEL_TRACES_TYPES",
    "OtlpDecodeError",
    "format_double",
    "rows_from_bytes",
    "rows_from_json",
    "rows_from_request",
]

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

_MAP = "Map(LowCardinality(String), String)"
OTEL_TRACES_TYPES: tuple[str, ...] = (
    "DateTime64(9)",
    "String",
    "String",
    "String",
    "String",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "LowCardinality(String)",
    _MAP,
    "String",
    "String",
    _MAP,
    "UInt64",
    "LowCardinality(String)",
    "String",
    "Array(DateTime64(9))",
    "Array(LowCardinality(String))",
    f"Array({_MAP})",
    "Array(String)",
    "Array(String)",
    "Array(String)",
    f"Array({_MAP})",
)
"""The types of :data:`OTEL_TRACES_COLUMNS` as the schema declares them (pinned by a test against
the migrated table), so a typed writer need not ask the server for them."""

# Index = proto enum value (opentelemetry.proto.trace.v1.Span.SpanKind / Status.StatusCode).
_SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS_CODES = ("Unset", "Ok", "Error")
_SERVICE_NAME = "service.name"
_JSON_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpDecodeError(ValueError):
    """The payload is not a valid OTLP traces request (the server answers HTTP 400 with it)."""


def rows_from_request(req: ExportTraceServiceRequest) -> list[tuple[Any, ...]]:
    """Flatten an ``ExportTraceServiceRequest`` into otel_traces rows (one per span)."""
    return rows_from_bytes(req.SerializeToString())


def rows_from_bytes(body: bytes) -> list[tuple[Any, ...]]:
    """Flatten a serialized ``ExportTraceServiceRequest`` into otel_traces rows (one per span).

    Raises protobuf's ``DecodeError`` for bytes that are not one, ``UnicodeDecodeError`` for an
    attribute string that is not UTF-8.
    """
    request = request_class().FromString(body)
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for resource_spans in request.resource_spans:
        resource_attrs = attributes(resource_spans.resource.attributes)
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
                status = span.status
                code = status.code
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
                        attributes(span.attributes),
                        end - start if end > start else 0,
                        _STATUS_CODES[code] if 0 <= code < 3 else "Unset",
                        status.message,
                        *(_events(events) if events else ([], [], [])),
                        *(_links(links) if links else ([], [], [], [])),
                    )
                )
    return rows


def _events(events: Any) -> tuple[list[Any], ...]:
    """The Events.* columns of a span that has events."""
    return (
        [e.time_unix_nano for e in events],
        [e.name for e in events],
        [attributes(e.attributes) for e in events],
    )


def _links(links: Any) -> tuple[list[Any], ...]:
    """The Links.* columns of a span that has links."""
    return (
        [link.trace_id.hex() for link in links],
        [link.span_id.hex() for link in links],
        [link.trace_state for link in links],
        [attributes(link.attributes) for link in links],
    )


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

"""A wire-compatible view of OTLP traces that hands over attributes as raw bytes, for speed.

Reading the generated ``ExportTraceServiceRequest`` costs ~1 µs per attribute in Python (a
``KeyValue`` wrapper, its ``AnyValue``, ``WhichOneof``, the value): ~33 µs of a 30-attribute
span, most of the server's decoding time (a ``map<string, bytes>`` view is no faster: protobuf
builds a Python object per entry all the same). This view declares every ``attributes`` field
as ``repeated bytes``, which has the wire form of a repeated message, so each ``KeyValue``
arrives as its serialized bytes, all of a span's in one C call (~3 µs).
:func:`llmtrace.store.otlp_values.attributes` reads them; every other field keeps its OTLP
number and type, so parsing validates the same things as the generated classes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["request_class"]

_PACKAGE = "llmtrace_otlp_wire"

# (name, number, type, repeated, message type) per message; types are FieldDescriptorProto's.
_S, _B, _U32, _I32, _F64, _F32, _M = "string", "bytes", "uint32", "int32", "fixed64", "fixed32", "message"
_MESSAGES: dict[str, list[tuple[str, int, str, bool, str]]] = {
    "Request": [("resource_spans", 1, _M, True, "ResourceSpans")],
    "ResourceSpans": [
        ("resource", 1, _M, False, "Resource"),
        ("scope_spans", 2, _M, True, "ScopeSpans"),
        ("schema_url", 3, _S, False, ""),
    ],
    "Resource": [("attributes", 1, _B, True, ""), ("dropped_attributes_count", 2, _U32, False, "")],
    "ScopeSpans": [
        ("scope", 1, _M, False, "Scope"),
        ("spans", 2, _M, True, "Span"),
        ("schema_url", 3, _S, False, ""),
    ],
    "Scope": [
        ("name", 1, _S, False, ""),
        ("version", 2, _S, False, ""),
        ("attributes", 3, _B, True, ""),
        ("dropped_attributes_count", 4, _U32, False, ""),
    ],
    "Span": [
        ("trace_id", 1, _B, False, ""),
        ("span_id", 2, _B, False, ""),
        ("trace_state", 3, _S, False, ""),
        ("parent_span_id", 4, _B, False, ""),
        ("name", 5, _S, False, ""),
        ("kind", 6, _I32, False, ""),  # an enum on the wire is a varint, as int32 is
        ("start_time_unix_nano", 7, _F64, False, ""),
        ("end_time_unix_nano", 8, _F64, False, ""),
        ("attributes", 9, _B, True, ""),
        ("dropped_attributes_count", 10, _U32, False, ""),
        ("events", 11, _M, True, "Event"),
        ("dropped_events_count", 12, _U32, False, ""),
        ("links", 13, _M, True, "Link"),
        ("dropped_links_count", 14, _U32, False, ""),
        ("status", 15, _M, False, "Status"),
        ("flags", 16, _F32, False, ""),
    ],
    "Event": [
        ("time_unix_nano", 1, _F64, False, ""),
        ("name", 2, _S, False, ""),
        ("attributes", 3, _B, True, ""),
        ("dropped_attributes_count", 4, _U32, False, ""),
    ],
    "Link": [
        ("trace_id", 1, _B, False, ""),
        ("span_id", 2, _B, False, ""),
        ("trace_state", 3, _S, False, ""),
        ("attributes", 4, _B, True, ""),
        ("dropped_attributes_count", 5, _U32, False, ""),
        ("flags", 6, _F32, False, ""),
    ],
    "Status": [("message", 2, _S, False, ""), ("code", 3, _I32, False, "")],
}


@cache
def request_class() -> Any:
    """The message class of this view of ``ExportTraceServiceRequest`` (built once)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for fname, number, ftype, repeated, type_name in fields:
            added = message.field.add(name=fname, number=number, json_name=fname)
            added.type = getattr(field, f"TYPE_{ftype.upper()}")
            added.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            if type_name:
                added.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Request"))

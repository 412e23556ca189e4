"""OpenTelemetry SDK spans -> one ClickHouse ``Native`` block of ``otel_traces`` rows.

The direct exporter's INSERT body, written column by column straight from the spans: the same
values as :func:`llmtrace.store.span_rows.rows_from_spans` (it shares its value conversion) in
the same bytes clickhouse-connect's ``Native`` serializer writes for those rows (a test compares
them), without a tuple and a dict per span first and without that serializer's generic per-value
work (~29 -> ~23-25 µs of client CPU per 30-attribute span, best of 7 in one process).

Native (https://clickhouse.com/docs/en/interfaces/formats#native): column count and row count
(LEB128), then per column its name, its type and its data. ``LowCardinality(String)`` is a
version prefix (1) before the column, then index width and flags, the dictionary (a ``String``
column) and one index per row; ``Map(K, V)`` is ``Array(Tuple(K, V))``: cumulative ``UInt64``
offsets, then the keys column, then the values column; ``Array(T)`` is offsets then elements.
Blocks concatenate: an INSERT body may carry several, which the server squashes into one part.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import chain
from math import log
from typing import TYPE_CHECKING, Any

from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES
from llmtrace.store.span_rows import plain_attributes, resource_attributes, value_text

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["native_block"]

_KINDS = ("Internal", "Server", "Client", "Producer", "Consumer")
_CODES = ("Unset", "Ok", "Error")
_SWAP = sys.byteorder != "little"  # Native numbers are little-endian
_LEN = [bytes([n]) for n in range(128)]  # the LEB128 length of a string shorter than 128 bytes
_CHR = [chr(n) for n in range(128)]  # the same as a character (latin-1 encodes it to that byte)
_LC_PREFIX = (1).to_bytes(8, "little")  # LowCardinality serialization version: shared dictionaries
_LC_FLAGS = (1 << 9) | (1 << 10)  # HasAdditionalKeys | NeedUpdateDictionary, as clickhouse-connect sends


def _leb128(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _name(text: str) -> bytes:
    data = text.encode()
    return _leb128(len(data)) + data


_HEADERS = {name: _name(name) + _name(kind) for name, kind in zip(OTEL_TRACES_COLUMNS, OTEL_TRACES_TYPES, strict=True)}


def _strings(values: list[str]) -> bytes:
    """A ``String`` column: each value's UTF-8 length (LEB128) then its bytes."""
    if not values:
        return b""
    lengths = list(map(len, values))
    out: list[Any] = [b""] * (2 * len(values))
    if "".join(values).isascii():  # one byte per character: lengths and text in one str, one encode
        out[1::2] = values
        out[0::2] = map(_CHR.__getitem__, lengths) if max(lengths) < 128 else [_leb_chr(n) for n in lengths]
        return "".join(out).encode("latin-1")
    parts = "\x00".join(values).encode().split(b"\x00")
    if len(parts) != len(values):  # a value holds NUL: encode each on its own
        parts = [value.encode() for value in values]
    out[1::2] = parts
    out[0::2] = [_leb_len(len(part)) for part in parts]
    return b"".join(out)


def _leb_chr(n: int) -> str:
    return _CHR[n] if n < 128 else _leb128(n).decode("latin-1")


def _leb_len(n: int) -> bytes:
    return _LEN[n] if n < 128 else _leb128(n)


def _u64(values: list[int]) -> bytes:
    data = array("Q", values)
    if _SWAP:
        data.byteswap()
    return data.tobytes()


def _i64(values: list[int]) -> bytes:
    data = array("q", values)
    if _SWAP:
        data.byteswap()
    return data.tobytes()


def _low_cardinality(values: list[str]) -> bytes:
    """A ``LowCardinality(String)`` column (without its version prefix): the dictionary in order of
    first appearance, then one index per row."""
    if not values:
        return b""
    keys = list(dict.fromkeys(values))
    position = {key: i for i, key in enumerate(keys)}
    width = int(log(len(keys), 2)) >> 3  # index width 2**width bytes, as clickhouse-connect picks
    if width == 0:
        indexes = bytes(map(position.__getitem__, values))
    else:
        wide = array("HIQ"[width - 1], map(position.__getitem__, values))
        if _SWAP:
            wide.byteswap()
        indexes = wide.tobytes()
    head = (_LC_FLAGS | width).to_bytes(8, "little") + len(keys).to_bytes(8, "little")
    return head + _strings(keys) + len(values).to_bytes(8, "little") + indexes


class _Map:
    """A ``Map(LowCardinality(String), String)`` column (or the maps of an ``Array`` of them)."""

    __slots__ = ("keys", "offsets", "values")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.keys: list[str] = []
        self.values: list[str] = []

    def add(self, attributes: Any) -> None:
        """One map: the attributes' stored text (those the OTLP encoder leaves out are left out)."""
        if attributes:
            texts = [value if type(value) is str else value_text(value) for value in attributes.values()]
            if None in texts:  # left out: drop them with their keys
                pairs = [(key, text) for key, text in zip(attributes, texts, strict=True) if text is not None]
                self.keys.extend([key for key, _ in pairs])
                self.values.extend([text for _, text in pairs])
            else:
                self.keys.extend(attributes)
                self.values.extend(texts)
        self.offsets.append(len(self.values))

    def data(self) -> bytes:
        return _u64(self.offsets) + _low_cardinality(self.keys) + _strings(self.values)


def native_block(spans: Sequence[ReadableSpan]) -> bytes:
    """``spans`` as one ``Native`` block of :data:`OTEL_TRACES_COLUMNS` with :data:`OTEL_TRACES_TYPES`."""
    n = len(spans)
    starts, durations = [], []
    trace_ids, span_ids, parents, states = [], [], [], []
    names: list[str] = []
    kinds: list[str] = []
    services: list[str] = []
    codes: list[str] = []
    resource_maps, span_maps = _Map(), _Map()
    scope_names, scope_versions, messages = [], [], []
    event_offsets, event_times, event_names, event_maps = [], [], [], _Map()
    link_offsets, link_traces, link_spans, link_maps = [], [], [], _Map()
    resources: dict[int, tuple[dict[str, str], str]] = {}
    for span in spans:
        resource = span.resource
        found = resources.get(id(resource))
        if found is None:
            found = resources[id(resource)] = resource_attributes(resource)
        context = span.get_span_context()
        assert context is not None  # every SDK span has one (the OTLP encoder relies on it too)
        start, end = span.start_time or 0, span.end_time or 0
        starts.append(start)
        durations.append(end - start if end > start else 0)
        trace_ids.append(f"{context.trace_id:032x}")
        span_ids.append(f"{context.span_id:016x}")
        parent = span.parent
        parents.append(f"{parent.span_id:016x}" if parent is not None else "")
        trace_state = context.trace_state
        states.append(",".join(f"{k}={v}" for k, v in trace_state.items()) if trace_state else "")
        names.append(span.name)
        kinds.append(_KINDS[span.kind.value])
        services.append(found[1])
        resource_maps.add(found[0])
        scope = span.instrumentation_scope
        scope_names.append((scope.name or "") if scope else "")
        scope_versions.append((scope.version or "") if scope else "")
        span_maps.add(plain_attributes(span) or span.attributes)
        status = span.status
        codes.append(_CODES[status.status_code.value])
        messages.append(status.description or "")
        events = span.events
        for event in events:
            event_times.append(event.timestamp)
            event_names.append(event.name)
            event_maps.add(plain_attributes(event) or event.attributes)
        event_offsets.append(len(event_times))
        for link in span.links:
            link_traces.append(f"{link.context.trace_id:032x}")
            link_spans.append(f"{link.context.span_id:016x}")
            link_maps.add(link.attributes)
        link_offsets.append(len(link_traces))
    lc_map = _LC_PREFIX  # a map's key column is LowCardinality: its version comes first
    columns: list[tuple[str, Callable[[], bytes]]] = [
        ("Timestamp", lambda: _i64(starts)),
        ("TraceId", lambda: _strings(trace_ids)),
        ("SpanId", lambda: _strings(span_ids)),
        ("ParentSpanId", lambda: _strings(parents)),
        ("TraceState", lambda: _strings(states)),
        ("SpanName", lambda: _LC_PREFIX + _low_cardinality(names)),
        ("SpanKind", lambda: _LC_PREFIX + _low_cardinality(kinds)),
        ("ServiceName", lambda: _LC_PREFIX + _low_cardinality(services)),
        ("ResourceAttributes", lambda: lc_map + resource_maps.data()),
        ("ScopeName", lambda: _strings(scope_names)),
        ("ScopeVersion", lambda: _strings(scope_versions)),
        ("SpanAttributes", lambda: lc_map + span_maps.data()),
        ("Duration", lambda: _u64(durations)),
        ("StatusCode", lambda: _LC_PREFIX + _low_cardinality(codes)),
        ("StatusMessage", lambda: _strings(messages)),
        ("Events.Timestamp", lambda: _u64(event_offsets) + _i64(event_times)),
        ("Events.Name", lambda: _LC_PREFIX + _u64(event_offsets) + _low_cardinality(event_names)),
        ("Events.Attributes", lambda: lc_map + _u64(event_offsets) + event_maps.data()),
        ("Links.TraceId", lambda: _u64(link_offsets) + _strings(link_traces)),
        ("Links.SpanId", lambda: _u64(link_offsets) + _strings(link_spans)),
        ("Links.TraceState", lambda: _u64(link_offsets) + _strings([""] * len(link_traces))),
        ("Links.Attributes", lambda: lc_map + _u64(link_offsets) + link_maps.data()),
    ]
    head = _leb128(len(columns)) + _leb128(n)
    return head + b"".join(chain.from_iterable((_HEADERS[name], write()) for name, write in columns))

"""OTLP attribute values as ``otel_traces`` stores them, the way the Collector's exporter does.

Strings as they are, ints decimal, doubles as the shortest decimal Go's ``encoding/json``
prints, bools ``true``/``false``, bytes base64, arrays and kvlists as Go's JSON. Values come
either as parsed ``AnyValue`` messages (:func:`value_str`) or, on the server's fast path, as
serialized ``KeyValue`` s (:func:`attributes`, see :mod:`llmtrace.store.otlp_wire`).

The fast path reads the usual shapes (a key and a string, int, double or bool under 128 bytes
of length prefix) from the bytes with slicing; anything else is parsed as the real message,
so the text is always what :func:`value_str` gives. Small attributes repeat across spans
(model, operation, provider, server, prompt, environment, ...), so their texts are cached:
a hit costs ~0.1 µs, a miss ~1 µs. The cache is bounded in entries and in entry size.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Sequence
from json.encoder import encode_basestring as _json_string
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["attribute_text", "attributes", "format_double", "string_array_text", "value_str"]

_DOUBLE = struct.Struct("<d")
_CACHED_BYTES = 160  # larger KeyValues (messages, documents) are rarely repeated: not cached
_CACHE_ENTRIES = 16_384  # ~8 MB at most
_CACHE: dict[bytes, tuple[str, str]] = {}
_TRUE, _FALSE = b"\x10\x01", b"\x10\x00"
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def attributes(entries: Sequence[bytes]) -> dict[str, str]:
    """Serialized ``KeyValue`` s as the stored ``key -> text`` dict (a repeated key: the last wins).

    Raises ``UnicodeDecodeError`` for text that is not UTF-8 and protobuf's ``DecodeError`` for
    bytes that are not a ``KeyValue``.
    """
    found = list(map(_CACHE.get, entries))  # cache hits without a Python call per attribute
    if None not in found:
        return dict(cast("list[tuple[str, str]]", found))
    return dict([pair or _learn(raw) for pair, raw in zip(found, entries, strict=True)])


def _learn(raw: bytes) -> tuple[str, str]:
    pair = _read_pair(raw)
    if len(raw) <= _CACHED_BYTES:
        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.clear()  # unique values (ids, counts) fill it; the usual ones come back at once
        _CACHE[raw] = pair
    return pair


def _read_pair(raw: bytes) -> tuple[str, str]:
    """``(key, text)`` of one serialized ``KeyValue``: ``0A <len> key 12 <len> AnyValue``."""
    size = len(raw)
    if size >= 4 and raw[0] == 0x0A and raw[1] < 0x80:
        end = raw[1] + 2
        if end + 2 <= size and raw[end] == 0x12:
            length, start = raw[end + 1], end + 2
            if length >= 0x80:  # a two-byte length; longer ones take the slow path (-1)
                two = start < size and raw[start] < 0x80
                length, start = ((length & 0x7F) | raw[start] << 7, start + 1) if two else (-1, start)
            if start + length == size:
                if length >= 2 and raw[start] == 0x0A and raw[start + 1] + 2 == length < 0x82:  # a short string
                    return raw[2:end].decode(), raw[start + 2 :].decode()
                return raw[2:end].decode(), attribute_text(raw[start:])
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    kv = KeyValue.FromString(raw)
    return kv.key, value_str(kv.value)


def attribute_text(raw: bytes) -> str:
    """One ``AnyValue``'s wire bytes as stored; the same text :func:`value_str` gives.

    Raises ``UnicodeDecodeError`` for a string that is not UTF-8 and protobuf's ``DecodeError``
    for bytes that are not an ``AnyValue``.
    """
    size = len(raw)
    if size >= 2:
        tag, first = raw[0], raw[1]
        if tag == 0x0A:  # string_value: the usual case, its length in one or two varint bytes
            if first < 0x80 and size == first + 2:
                return raw[2:].decode()
            if first >= 0x80 and size > 3 and raw[2] < 0x80 and size == ((first & 0x7F) | raw[2] << 7) + 3:
                return raw[3:].decode()
        elif tag == 0x18:  # int_value
            value = _varint(raw)
            if value is not None:
                return str(value)
        elif tag == 0x21 and size == 9:  # double_value
            return format_double(_DOUBLE.unpack_from(raw, 1)[0])
        elif raw == _TRUE:
            return "true"
        elif raw == _FALSE:
            return "false"
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    return value_str(AnyValue.FromString(raw))


def _varint(raw: bytes) -> int | None:
    """The int64 varint filling ``raw[1:]`` exactly (two's complement when negative), else None."""
    value, shift, last = 0, 0, len(raw) - 1
    for index in range(1, min(len(raw), 11)):
        byte = raw[index]
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if index != last:
                return None
            value &= 0xFFFF_FFFF_FFFF_FFFF
            return value - (1 << 64) if value >= 1 << 63 else value
    return None


def value_str(value: AnyValue) -> str:
    """A parsed ``AnyValue`` as stored."""
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


def string_array_text(values: Sequence[str]) -> str:
    """An array of strings as stored: the same text :func:`value_str` gives its ``AnyValue``."""
    # encode_basestring is what json.dumps(v, ensure_ascii=False) calls for a str, without building
    # an encoder per call (~3 µs each)
    return _go_escaped("[" + ",".join(map(_json_string, values)) + "]")


def _go_json(value: AnyValue) -> str:
    """An array or kvlist as Go's ``encoding/json`` writes ``AsRaw()``: compact, map keys sorted,
    UTF-8 kept, ``<``, ``>``, ``&`` and U+2028/9 escaped, doubles as :func:`format_double`."""
    return _go_escaped(_json_value(value))


def _go_escaped(text: str) -> str:
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
    return value_str(value)


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

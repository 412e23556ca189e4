"""The fast attribute path (raw ``KeyValue`` bytes) gives exactly what the generated classes give."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from llmtrace.store.otlp_rows import rows_from_bytes
from llmtrace.store.otlp_values import attribute_text, attributes, value_str

VALUES = [
    AnyValue(),
    AnyValue(string_value=""),
    AnyValue(string_value="x" * 125),
    AnyValue(string_value="x" * 126),
    AnyValue(string_value="é" * 64),
    AnyValue(string_value="y" * 20_000),
    AnyValue(int_value=0),
    AnyValue(int_value=-1),
    AnyValue(int_value=2**63 - 1),
    AnyValue(int_value=-(2**63)),
    AnyValue(double_value=-0.0),
    AnyValue(double_value=1e-7),
    AnyValue(double_value=float("nan")),
    AnyValue(double_value=1e300),
    AnyValue(bool_value=True),
    AnyValue(bool_value=False),
    AnyValue(bytes_value=b"\x00\xff"),
    AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="<a>"), AnyValue(int_value=3)])),
    AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="b", value=AnyValue(int_value=9)), KeyValue(key="a")])),
]
KEYS = ["", "k", "é" * 63, "x" * 127, "y" * 128, "z" * 300]


def expected(raw: bytes) -> tuple[str, str]:
    kv = KeyValue.FromString(raw)
    return kv.key, value_str(kv.value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: str(v.WhichOneof("value")))
def test_every_kind_of_value_reads_as_the_generated_classes_read_it(value: AnyValue) -> None:
    assert attribute_text(value.SerializeToString()) == value_str(value)
    for key in KEYS:
        raw = KeyValue(key=key, value=value).SerializeToString()
        assert attributes([raw]) == dict([expected(raw)])
        assert attributes([raw]) == dict([expected(raw)])  # again, from the cache


def test_random_ints_and_doubles_read_exactly() -> None:
    rnd = random.Random(7)
    for _ in range(5_000):
        number = AnyValue(int_value=rnd.randint(-(2**63), 2**63 - 1))
        for value in (number, AnyValue(double_value=rnd.uniform(-1e9, 1e9))):
            assert attribute_text(value.SerializeToString()) == value_str(value)


def test_a_repeated_key_keeps_its_last_value_in_the_senders_order() -> None:
    raws = [KeyValue(key=k, value=AnyValue(string_value=v)).SerializeToString() for k, v in ("ab", "ca", "ac")]
    assert list(attributes(raws).items()) == [("a", "c"), ("c", "a")]


def test_unusual_encodings_take_the_slow_path_and_agree() -> None:
    string_then_int = AnyValue(string_value="a").SerializeToString() + AnyValue(int_value=5).SerializeToString()
    assert attribute_text(string_then_int) == "5"
    assert attribute_text(b"\x18\x80\x00") == "0"  # an over-long varint
    assert attribute_text(b"\x10\x02") == "true"
    assert attributes([KeyValue(key="only").SerializeToString()]) == {"only": ""}


@pytest.mark.parametrize("raw", [b"\n\x05ab", b"\n", b"\x18", b"\x18\x80", b"\xff\xff"])
def test_truncated_or_garbage_values_are_decode_errors(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        attribute_text(raw)


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        attribute_text(b"\n\x02\xff\xfe")
    with pytest.raises(UnicodeDecodeError):
        attributes([b"\n\x02\xff\xfe\x12\x00"])


def test_mutated_key_values_fail_or_agree_with_the_generated_classes() -> None:
    rnd = random.Random(11)
    bases = [KeyValue(key="k" * rnd.randint(0, 200), value=v).SerializeToString() for v in VALUES]
    for _ in range(20_000):
        raw = bytearray(rnd.choice(bases))
        for _ in range(rnd.randint(1, 3)):
            raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        try:
            want: object = expected(bytes(raw))
        except (DecodeError, ValueError, RecursionError):
            want = "error"
        try:
            got: object = attributes([bytes(raw)]).popitem()
        except (DecodeError, ValueError, RecursionError):
            got = "error"
        assert got == want, bytes(raw)


def test_rows_from_bytes_reads_resource_span_event_and_link_attributes() -> None:
    attrs = [KeyValue(key="n", value=AnyValue(int_value=7)), KeyValue(key="s", value=AnyValue(string_value="v"))]
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat", start_time_unix_nano=10**18, attributes=attrs)
    span.events.add(time_unix_nano=10**18 + 1, name="e", attributes=attrs)
    span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, attributes=attrs)
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    (row,) = rows_from_bytes(ExportTraceServiceRequest(resource_spans=[resource_spans]).SerializeToString())
    expected_attrs = {"n": "7", "s": "v"}
    assert row[7:9] == ("svc", {"service.name": "svc"})
    assert row[11] == expected_attrs and row[17] == [expected_attrs] and row[21] == [expected_attrs]

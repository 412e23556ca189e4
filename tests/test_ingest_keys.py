"""Span keys computed while decoding equal those the writer reads back from the payload."""

from __future__ import annotations

from llmtrace.server.chunks import MAX_DAYS_PER_INSERT, SpanKeys, merge_keys, one_insert, span_keys
from llmtrace.server.decode import prepare_request
from tests.server_process import otlp_request

PROTOBUF = "application/x-protobuf"
DAY_NS = 86_400 * 10**9


def test_a_decoded_request_carries_the_keys_of_its_payload() -> None:
    prepared = prepare_request(otlp_request(50, seed=3).SerializeToString(), None, PROTOBUF)
    scanned = span_keys(prepared.payload)
    assert prepared.keys is not None and scanned is not None
    assert (prepared.keys.lo, prepared.keys.hi) == (scanned.lo, scanned.hi)
    assert sorted(prepared.keys.ids) == scanned.ids and len(scanned.ids) == 50


def test_a_span_sent_twice_counts_once_when_keys_merge() -> None:
    body = otlp_request(5, seed=4).SerializeToString()
    first, again = (prepare_request(body, None, PROTOBUF).keys for _ in range(2))
    assert first is not None and again is not None
    merged = merge_keys([first, again])
    assert sorted(merged.ids) == sorted(first.ids) and (merged.lo, merged.hi) == (first.lo, first.hi)


def test_keys_spanning_more_days_than_one_insert_may_touch_are_split() -> None:
    start = 19_000 * DAY_NS  # a UTC midnight
    last_day = start + (MAX_DAYS_PER_INSERT - 1) * DAY_NS
    assert one_insert([SpanKeys(start, start, ["a:1"]), SpanKeys(last_day, last_day + DAY_NS - 1, ["b:2"])])
    assert not one_insert([SpanKeys(start - 1, start, ["a:1"]), SpanKeys(last_day, last_day, ["b:2"])])

"""Reading the insert payload's lines back: which day each span falls on, and which span it is.

The writer needs both without decoding JSON (it runs on the hot path of every batch): a line
made by :mod:`llmtrace.server.decode` starts ``["<10+ digit seconds>.<9 digits>","<trace id>",
"<span id>",``. Lines that do not look like that (never ours, but a hand-made WAL could hold
one) get day ``None`` and no identity: the INSERT itself decides about them.

Why split by day: every table an insert feeds partitions by day (``otel_traces``,
``llm_calls``, ``otel_traces_trace_id_ts``: ``toDate`` in the server's time zone) or coarser
(the rollups: month), and ClickHouse refuses a block touching more than
``max_partitions_per_insert_block`` (100) partitions. chDB's streaming INSERT reports such a
refusal as success and stores nothing, so one span-old-backfill request used to take its whole
batch with it. 50 UTC days touch at most 100 local days in any time zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_DAYS_PER_INSERT", "Part", "SpanKey", "span_keys", "split_by_days"]

MAX_DAYS_PER_INSERT = 50
_DAY = 86_400
_NS = 1_000_000_000
_HEX = re.compile(rb"^[0-9a-f]*$")


@dataclass(frozen=True)
class Part:
    """The lines of one record (by index in its batch) that go into one INSERT."""

    record: int
    lines: bytes


@dataclass(frozen=True)
class SpanKey:
    start_ns: int
    span_id: str
    line: bytes


def _day(line: bytes) -> int | None:
    dot = line.find(b".", 2, 32)
    if not line.startswith(b'["') or dot < 0:
        return None
    try:
        return int(line[2:dot]) // _DAY
    except ValueError:
        return None


def split_by_days(payloads: Sequence[bytes], max_days: int = MAX_DAYS_PER_INSERT) -> list[list[Part]]:
    """Group a batch's lines so that no group spans more than ``max_days`` distinct UTC days.

    Deterministic (same payloads, same groups), so a replayed log segment gets the same INSERTs
    and deduplication tokens as its first attempt. The usual batch (today's spans) is one group
    of the records as they are.
    """
    lines = [payload.splitlines(keepends=True) for payload in payloads]
    days = [[_day(line) for line in record] for record in lines]
    distinct = sorted({day for record in days for day in record}, key=lambda d: -1 if d is None else d)
    if len(distinct) <= max_days:
        return [[Part(i, payload) for i, payload in enumerate(payloads) if payload]]
    group_of = {day: rank // max_days for rank, day in enumerate(distinct)}
    groups: list[list[Part]] = [[] for _ in range(max(group_of.values()) + 1)]
    for i, (record, record_days) in enumerate(zip(lines, days, strict=True)):
        picked: dict[int, list[bytes]] = {}
        for line, day in zip(record, record_days, strict=True):
            picked.setdefault(group_of[day], []).append(line)
        for group, chosen in picked.items():
            groups[group].append(Part(i, b"".join(chosen)))
    return groups


def span_keys(payload: bytes) -> list[SpanKey]:
    """Start time and span id of every line that has them (see the module docstring)."""
    keys = []
    for line in payload.splitlines(keepends=True):
        fields = line.split(b'","', 3)
        if len(fields) < 4 or not fields[0].startswith(b'["') or not _HEX.match(fields[2]):
            continue
        seconds, _, nanos = fields[0][2:].partition(b".")
        try:
            start = int(seconds) * _NS + int(nanos or b"0")
        except ValueError:
            continue
        keys.append(SpanKey(start, fields[2].decode(), line))
    return keys

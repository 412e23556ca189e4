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
from typing import NamedTuple

__all__ = [
    "MAX_DAYS_PER_INSERT",
    "Part",
    "SpanKeys",
    "lines_of",
    "merge_keys",
    "one_insert",
    "span_keys",
    "split_by_days",
]

MAX_DAYS_PER_INSERT = 50
_DAY = 86_400
_NS = 1_000_000_000


@dataclass(frozen=True)
class Part:
    """The lines of one record (by index in its batch) that go into one INSERT."""

    record: int
    lines: bytes


class SpanKeys(NamedTuple):
    """The spans of a payload: their start range and their distinct keys, ``"<span id>:<start ns>"``
    (an id alone can repeat: clients with fixed or seeded ids), in no particular order."""

    lo: int
    hi: int
    ids: list[str]


# Lines of ours, found by one C-level scan for the literal "\n[" (a split per line, or a
# MULTILINE "^", cost more than the INSERT itself). The payload is scanned with a "\n" before it.
_KEY = re.compile(rb'\n\["(\d+)\.(\d{9})","[0-9a-f]*","([0-9a-f]*)"')
_SECONDS = re.compile(rb'\n\["(\d+)\.')


def _days(payload: bytes) -> set[int | None]:
    """The UTC days of a payload's lines (``None`` for lines not made by decode)."""
    seconds = _SECONDS.findall(b"\n" + payload)
    days: set[int | None] = {int(s) // _DAY for s in set(seconds)}
    if len(seconds) != payload.count(b"\n"):
        days.add(None)
    return days


def _day(line: bytes) -> int | None:
    match = _SECONDS.match(b"\n" + line)
    return int(match.group(1)) // _DAY if match else None


def split_by_days(payloads: Sequence[bytes], max_days: int = MAX_DAYS_PER_INSERT) -> list[list[Part]]:
    """Group a batch's lines so that no group spans more than ``max_days`` distinct UTC days.

    Deterministic (same payloads, same groups), so a replayed log segment gets the same INSERTs
    and deduplication tokens as its first attempt. The usual batch (today's spans) is one group
    of the records as they are.
    """
    distinct = set().union(*(_days(payload) for payload in payloads)) if payloads else set()
    if len(distinct) <= max_days:
        return [[Part(i, payload) for i, payload in enumerate(payloads) if payload]]
    ranked = sorted(distinct, key=lambda d: -1 if d is None else d)
    group_of = {day: rank // max_days for rank, day in enumerate(ranked)}
    groups: list[list[Part]] = [[] for _ in range(max(group_of.values()) + 1)]
    for i, payload in enumerate(payloads):
        picked: dict[int, list[bytes]] = {}
        for line in payload.splitlines(keepends=True):
            picked.setdefault(group_of[_day(line)], []).append(line)
        for group, chosen in picked.items():
            groups[group].append(Part(i, b"".join(chosen)))
    return groups


def one_insert(keys: Sequence[SpanKeys], max_days: int = MAX_DAYS_PER_INSERT) -> bool:
    """Whether payloads with these keys (known from decoding) fit one INSERT without a scan:
    their starts span at most ``max_days`` UTC days, so :func:`split_by_days` makes one group."""
    lo, hi = min(k.lo for k in keys), max(k.hi for k in keys)
    return hi // _NS // _DAY - lo // _NS // _DAY < max_days


def merge_keys(keys: Sequence[SpanKeys]) -> SpanKeys:
    """The keys of several payloads inserted as one (a span sent twice counts once)."""
    ids = keys[0].ids if len(keys) == 1 else list(set().union(*(k.ids for k in keys)))
    return SpanKeys(min(k.lo for k in keys), max(k.hi for k in keys), ids)


def span_keys(payload: bytes) -> SpanKeys | None:
    """Start range and distinct span keys of the lines that have them (None: no such line).

    A scan of the payload: the writer uses it for records replayed from the log; records just
    decoded carry their keys (see :func:`llmtrace.server.decode.prepare_request`)."""
    found = _KEY.findall(b"\n" + payload)
    if not found:
        return None
    starts = [int(seconds) * _NS + int(nanos) for seconds, nanos, _ in found]
    keys = {_key(span_id, start) for (_, _, span_id), start in zip(found, starts, strict=True)}
    return SpanKeys(min(starts), max(starts), sorted(keys))


def _key(span_id: bytes, start: int) -> str:
    return f"{span_id.decode()}:{start}"


def lines_of(payload: bytes, span_keys: set[str]) -> bytes:
    """The lines of ``payload`` whose span key is in ``span_keys`` (the rare path: some are missing)."""
    text = b"\n" + payload
    picked = []
    for match in _KEY.finditer(text):
        start = int(match.group(1)) * _NS + int(match.group(2))
        if _key(match.group(3), start) in span_keys:
            end = text.find(b"\n", match.end())
            picked.append(text[match.start() + 1 : len(text) if end < 0 else end + 1])
    return b"".join(picked)

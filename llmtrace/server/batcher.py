"""Accept spans durably at once, insert them in large batches, and let readers wait for them.

Why not one INSERT per request: an INSERT into ``otel_traces`` costs a fixed ~50 ms (it
writes a part into every table its materialized views feed) plus ~20 µs per span, so
per-request inserts cap ingest near 8,000 spans/s, and batching only the requests in flight
(group commit) still pays that fixed cost every few requests. Instead a request is
acknowledged once its payload is in the write-ahead log (as safe against ``kill -9`` as an
inserted part), and one writer thread inserts everything accepted so far as one batch. Each
batch carries a deduplication token derived from its log segment, so re-inserting a segment
after a crash adds nothing that already arrived, in any table (see :mod:`.engine`).

A segment is deleted only once every span of it is verifiably in ``otel_traces`` (the sink
reads the batch back, see :mod:`.sink`). A batch is cut by day so no INSERT touches more
partitions than ClickHouse allows (see :mod:`.chunks`). Spans missing after an INSERT that
reported success are re-inserted (only those, under a new token: they are known absent, so
nothing doubles); if they stay missing they are quarantined. While the database fails (disk
full, a killed query, ...), the batch stays in the log and is retried, never quarantined; a
request whose data the database refuses is isolated by bisection and moved to ``rejected/``
beside the log with a ``.reason`` file, and an error is logged.

Acknowledged spans are visible to every later query all the same: the query port calls
:meth:`SpanWriter.wait_visible` first, which waits for the batch holding everything accepted
before it (no wait when ingest is idle). A bounded backlog turns overload into HTTP 503,
which OTLP exporters retry.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable

from llmtrace.server.chunks import Part, SpanKeys, merge_keys, one_insert, split_by_days
from llmtrace.server.ingest_stats import IngestStats
from llmtrace.server.sink import RowsMissing
from llmtrace.server.wal import Record, Segment, WriteAheadLog, read_segment

__all__ = ["Backlogged", "ShuttingDown", "SpanWriter"]

logger = logging.getLogger(__name__)

InsertFn = Callable[..., None]
"""``insert(payload, token[, keys])``: one INSERT; repeating a token must not insert its rows twice.
``keys``: the payload's span keys when known (see :class:`.chunks.SpanKeys`)."""
_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
_MISSING_ROUNDS = 8  # re-inserts of spans still absent after an INSERT, before quarantining them
# On a full disk chDB's INSERT also "succeeds" and stores nothing: spans missing while free space
# is below this are retried without counting rounds, so they are never quarantined for it.
# Below this much free space no INSERT is even tried: on a full disk a write can also be
# half-applied (otel_traces stored, llm_calls not). A payload over an eighth of the free space goes
# in pieces that fit, each verified: a backlog grown while the disk was full would otherwise wait
# for eight times its size to be freed (for ever, on a disk that never has that much).
_LOW_SPACE_BYTES = 32 * 1024 * 1024
# ClickHouse errors that are about the rows sent (parsing, types): retrying cannot help.
# Everything else (disk, memory, cancelled queries, too many parts, ...) is retried.
_DATA_CODES = frozenset({6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 130, 131, 457})
_CODE = re.compile(r"Code: (\d+)\.")
_NO_SPACE = re.compile(r"no space left|not enough space|ENOSPC|disk quota", re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """Whether an insert failure is about the database (retry) rather than the rows."""
    if isinstance(exc, (OSError, MemoryError)) or _NO_SPACE.search(str(exc)):
        return True
    match = _CODE.search(str(exc))
    return match is None or int(match.group(1)) not in _DATA_CODES


def _retry_lines(attempt: int) -> int:
    """Spans per INSERT on retry ``attempt``: halved each time, from 16k down to 256."""
    return max(256, 32_768 >> min(attempt, 7))


def _token(segment: str) -> str:
    """The deduplication token of a log segment's batch: the same on the first try and on replay."""
    return f"llmtrace-wal-{segment}"


class _Stopped(Exception):
    """The writer is stopping (or replaying at start) with a batch still failing."""


class Backlogged(RuntimeError):
    """Too many spans are waiting for the database; the client should retry later."""


class ShuttingDown(RuntimeError):
    """The server is stopping and takes no new spans."""


class SpanWriter:
    """The one path from accepted OTLP requests into the database."""

    def __init__(
        self,
        insert: InsertFn,
        wal: WriteAheadLog,
        *,
        max_backlog_spans: int = 100_000,
        stats: IngestStats | None = None,
    ) -> None:
        self._insert = insert
        self._wal = wal
        self._max_backlog_spans = max_backlog_spans
        self.stats = stats or IngestStats()
        self._queue: list[Record] = []
        self._queued_spans = 0
        self._writing_spans = 0  # the batch being written (retried while the database fails)
        self._cond = threading.Condition()
        self._closing = False
        self._started = False
        self._replaying = False
        self._accepted_seq = 0
        self._visible_seq = 0
        self._failing = False  # an insert is being retried: readers should not wait for it
        self._segment: Segment | None = None
        self._thread = threading.Thread(target=self._run, name="llmtrace-writer", daemon=True)

    @property
    def batches(self) -> int:
        return self.stats.batches

    @property
    def rows_written(self) -> int:
        return self.stats.stored

    @property
    def rejected_requests(self) -> int:
        return self.stats.quarantined_parts

    def replay(self) -> int:
        """Insert what a previous run accepted but had not inserted; returns the span count.

        Raises the database's error if it keeps failing (the segments stay for the next start).
        """
        total = 0
        self._replaying = True
        try:
            for path in self._wal.leftovers():
                records = list(read_segment(path))
                try:
                    self._store(records, _token(path.stem))
                except _Stopped as stopped:
                    raise stopped.__cause__ or stopped from None
                total += sum(r.spans for r in records)
                path.unlink()
        finally:
            self._replaying = False
        return total

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def accept(self, record: Record) -> None:
        """Log the request and queue it; returns once the record is in the WAL.

        Raises OSError (disk full) with nothing logged: the request must not be acknowledged.
        """
        if not record.spans:
            return
        with self._cond:
            if self._closing or not self._started:
                raise ShuttingDown("the server is shutting down")
            if self._queued_spans and self._queued_spans + record.spans > self._max_backlog_spans:
                raise Backlogged(f"{self._queued_spans} spans are waiting to be written")
            if self._segment is None:
                self._segment = self._wal.new_segment()
            self._segment.append(record)
            self._queue.append(record)
            self._queued_spans += record.spans
            self._accepted_seq += 1
            self.stats.add_accepted(record.spans)
            self._cond.notify_all()

    def backlog(self) -> int:
        """Spans acknowledged and not yet stored: queued, and the batch being written."""
        with self._cond:
            return self._queued_spans + self._writing_spans

    def wait_visible(self, timeout: float = 30.0) -> bool:
        """Block until everything accepted so far is queryable; False on timeout, or at once
        while inserts are failing (a query should then answer with what is stored)."""
        with self._cond:
            target = self._accepted_seq
            self._cond.wait_for(lambda: self._visible_seq >= target or self._failing, timeout)
            return self._visible_seq >= target

    def _take(self) -> tuple[list[Record], Segment, int] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            self._writing_spans = self._queued_spans
            batch, self._queue, self._queued_spans = self._queue, [], 0
            assert self._segment is not None
            segment, self._segment = self._segment, None  # the next accept() opens a new one
            return batch, segment, self._accepted_seq

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            batch, segment, seq = taken
            try:
                self._store(batch, _token(segment.path.stem))
                segment.remove()
            except _Stopped:  # stopping while the database fails: the segment stays for the next start
                segment.close()
            with self._cond:
                self._visible_seq = seq
                self._writing_spans = 0
                self._cond.notify_all()

    def _store(self, items: list[Record], token: str) -> None:
        """Insert ``items`` in INSERTs of at most 50 days each (see :mod:`.chunks`).

        Records just decoded carry their span keys: when those say one INSERT holds them all
        (the usual batch), neither the split nor the sink scans the payload for them. The INSERT
        and its token are the same as after a replay, which scans."""
        keys = [item.keys for item in items if item.keys is not None and item.payload]
        if keys and len(keys) == sum(1 for item in items if item.payload) and one_insert(keys):
            parts = [Part(i, item.payload) for i, item in enumerate(items) if item.payload]
            self._store_parts(parts, token, merge_keys(keys))
        else:
            groups = split_by_days([item.payload for item in items])
            for i, parts in enumerate(groups):
                self._store_parts(parts, token if len(groups) == 1 else f"{token}-d{i}")
        self.stats.add_batch()

    def _store_parts(self, parts: list[Part], token: str, keys: SpanKeys | None = None) -> None:
        """Insert and verify; retry while the database fails, bisect to isolate a request whose
        data the database refuses, and quarantine that one.

        Every retry (and every replay after a restart) first asks which spans are absent and
        inserts only those, under a new token: a killed or half-applied INSERT may have stored
        some rows without recording its token, so re-sending the whole batch could double them.
        """
        payload = b"".join(part.lines for part in parts)
        spans = payload.count(b"\n")
        missing_rounds = 0
        for attempt in itertools.count():
            try:
                free = self._free_bytes()
                if free < _LOW_SPACE_BYTES:
                    raise OSError(f"disk nearly full under {self._wal.directory}: not inserting until space is freed")
                if 8 * len(payload) > free:  # a backlog grown while the disk was full: in pieces that fit
                    fitting = max(1, spans * free // (8 * len(payload)))
                    self._insert_absent(payload, f"{token}-r{attempt}", min(fitting, _retry_lines(attempt)))
                elif attempt == 0 and not self._replaying:
                    self._insert(payload, token) if keys is None else self._insert(payload, token, keys)
                else:
                    self._insert_absent(payload, f"{token}-r{attempt}", _retry_lines(attempt))
            except RowsMissing as exc:
                missing_rounds += 0 if self._disk_nearly_full(len(exc.missing)) else 1
                if missing_rounds > _MISSING_ROUNDS:
                    self.stats.add_stored(spans - exc.missing_spans)
                    self._quarantine(exc.missing, "missing_after_insert", str(exc))
                    self._set_failing(False)
                    return
                logger.error("%s; re-inserting them (they are kept in the log)", exc)
                self._pause(attempt, exc)
                continue
            except Exception as exc:
                if not is_transient(exc):
                    if len(parts) == 1:
                        self._quarantine(payload, "refused_by_database", str(exc))
                        return
                    middle = len(parts) // 2
                    self._store_parts(parts[:middle], f"{token}-a")
                    self._store_parts(parts[middle:], f"{token}-b")
                    return
                logger.error("inserting %d spans failed, will retry (they are kept in the log): %s", spans, exc)
                self._pause(attempt, exc)
                continue
            self._set_failing(False)
            self.stats.add_stored(spans)
            return

    def _insert_absent(self, payload: bytes, token: str, max_lines: int) -> None:
        """Insert the lines of ``payload`` not yet stored (all of them if the sink cannot tell), in
        INSERTs of at most ``max_lines``: an INSERT cancelled again and again (KILL QUERY, a
        timeout) makes progress once it is short enough, each piece verified on its own."""
        absent: Callable[[bytes], bytes] | None = getattr(self._insert, "absent", None)
        complete: Callable[[bytes], None] | None = getattr(self._insert, "complete_derived", None)
        todo = payload if absent is None else absent(payload)
        lines = todo.splitlines(keepends=True) if todo.count(b"\n") > max_lines else [todo] if todo else []
        pieces = [b"".join(lines[i : i + max_lines]) for i in range(0, len(lines), max_lines)]
        for i, piece in enumerate(pieces):
            if self._disk_nearly_full(len(piece)):  # the pieces stored so far are not sent again
                raise OSError(f"disk nearly full under {self._wal.directory}: not inserting until space is freed")
            self._insert(piece, token if len(pieces) == 1 else f"{token}-p{i}")
        if complete is not None:
            complete(payload)

    def _free_bytes(self) -> int:
        try:
            disk = os.statvfs(self._wal.directory)
        except OSError:
            return 0
        return disk.f_bavail * disk.f_frsize

    def _disk_nearly_full(self, payload_bytes: int) -> bool:
        return self._free_bytes() < max(_LOW_SPACE_BYTES, 8 * payload_bytes)

    def _pause(self, attempt: int, exc: Exception) -> None:
        """Wait before the next attempt; give up (segment kept) when stopping or replaying."""
        if (self._closing or self._replaying) and attempt >= 2:
            raise _Stopped from exc
        self._set_failing(True, str(exc))
        time.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])

    def _set_failing(self, failing: bool, error: str = "") -> None:
        self.stats.set_failing(failing, error)
        with self._cond:
            self._failing = failing
            self._cond.notify_all()

    def _quarantine(self, lines: bytes, kind: str, reason: str) -> None:
        """Keep refused spans in ``rejected/`` with a ``.reason`` file; retried while that
        write fails (disk full), since the log segment is deleted after this returns."""
        spans = lines.count(b"\n")
        for attempt in itertools.count():
            try:
                quarantine = WriteAheadLog(self._wal.directory / "rejected")
                keep = quarantine.new_segment()
                keep.append(Record(lines, spans))
                keep.close()
                keep.path.with_suffix(".reason").write_text(f"{kind}: {spans} span(s): {reason}\n")
                break
            except OSError as exc:
                logger.error("could not write rejected spans to %s: %s", self._wal.directory / "rejected", exc)
                self._pause(attempt, exc)
        self.stats.add_rejected(kind, spans, reason)
        logger.error("%d span(s) cannot be inserted (%s); kept in %s: %s", spans, kind, keep.path, reason)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new spans, insert everything accepted, stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            if self._segment is not None and self._segment.records == 0:
                self._segment.remove()
            self._segment = None

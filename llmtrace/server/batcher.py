"""Accept spans durably at once, insert them in large batches, and let readers wait for them.

Why not one INSERT per request: an INSERT into ``otel_traces`` costs a fixed ~50 ms (it
writes a part into every table its materialized views feed) plus ~20 µs per span, so
per-request inserts cap ingest near 8,000 spans/s, and batching only the requests in flight
(group commit) still pays that fixed cost every few requests. Instead a request is
acknowledged once its payload is in the write-ahead log (as safe against ``kill -9`` as an
inserted part), and one writer thread inserts everything accepted so far as one batch. Each
batch carries a deduplication token derived from its log segment, so re-inserting a segment
after a crash adds nothing that already arrived, in any table (see :mod:`.engine`).

Acknowledged spans are visible to every later query all the same: the query port calls
:meth:`SpanWriter.wait_visible` first, which waits for the batch holding everything accepted
before it (no wait when ingest is idle). A bounded backlog turns overload into HTTP 503,
which OTLP exporters retry. While the database fails, the batch stays in the log and is retried;
a request whose data the database refuses is isolated by bisection and moved to ``rejected/``
beside the log, with an error logged.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable

from llmtrace.server.wal import Record, Segment, WriteAheadLog, read_segment

__all__ = ["Backlogged", "ShuttingDown", "SpanWriter"]

logger = logging.getLogger(__name__)

InsertFn = Callable[[bytes, str], None]
"""``insert(payload, token)``: one INSERT; repeating a token must not insert its rows twice."""
_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
# ClickHouse errors about the database's state, not the data: retry rather than quarantine.
_TRANSIENT_CODES = frozenset({74, 75, 76, 159, 202, 209, 236, 241, 243, 252, 394, 425, 1001, 1002})
_CODE = re.compile(r"Code: (\d+)\.")


def is_transient(exc: BaseException) -> bool:
    """Whether an insert failure is about the database (retry) rather than the rows."""
    if isinstance(exc, (OSError, MemoryError)):
        return True
    match = _CODE.search(str(exc))
    return match is not None and int(match.group(1)) in _TRANSIENT_CODES


def _token(segment: str) -> str:
    """The deduplication token of a log segment's batch: the same on the first try and on replay."""
    return f"llmtrace-wal-{segment}"


class _Stopped(Exception):
    """The writer is stopping with a batch still failing."""


class Backlogged(RuntimeError):
    """Too many spans are waiting for the database; the client should retry later."""


class ShuttingDown(RuntimeError):
    """The server is stopping and takes no new spans."""


class SpanWriter:
    """The one path from accepted OTLP requests into the database."""

    def __init__(self, insert: InsertFn, wal: WriteAheadLog, *, max_backlog_spans: int = 100_000) -> None:
        self._insert = insert
        self._wal = wal
        self._max_backlog_spans = max_backlog_spans
        self._queue: list[Record] = []
        self._queued_spans = 0
        self._cond = threading.Condition()
        self._closing = False
        self._accepted_seq = 0
        self._visible_seq = 0
        self._failing = False  # an insert is being retried: readers should not wait for it
        self._segment: Segment | None = None
        self._thread = threading.Thread(target=self._run, name="llmtrace-writer", daemon=True)
        self.batches = 0
        self.rows_written = 0
        self.rejected_requests = 0

    def replay(self) -> int:
        """Insert what a previous run accepted but had not inserted; returns the span count."""
        total = 0
        for path in self._wal.leftovers():
            records = list(read_segment(path))
            try:
                if records:
                    self._insert(b"".join(r.payload for r in records), _token(path.stem))
            except Exception as exc:
                if is_transient(exc):
                    raise
                rejected = self._wal.directory / "rejected"
                rejected.mkdir(exist_ok=True)
                path.rename(rejected / path.name)
                self.rejected_requests += len(records)
                logger.error("logged spans in %s cannot be inserted; kept in %s: %s", path.name, rejected, exc)
                continue
            total += sum(r.spans for r in records)
            path.unlink()
        return total

    def start(self) -> None:
        self._segment = self._wal.new_segment()
        self._thread.start()

    def accept(self, record: Record) -> None:
        """Log the request and queue it; returns once the record is in the WAL."""
        if not record.spans:
            return
        with self._cond:
            if self._closing or self._segment is None:
                raise ShuttingDown("the server is shutting down")
            if self._queued_spans and self._queued_spans + record.spans > self._max_backlog_spans:
                raise Backlogged(f"{self._queued_spans} spans are waiting to be written")
            self._segment.append(record)
            self._queue.append(record)
            self._queued_spans += record.spans
            self._accepted_seq += 1
            self._cond.notify_all()

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
            batch, self._queue, self._queued_spans = self._queue, [], 0
            assert self._segment is not None
            segment = self._segment
            self._segment = None if self._closing else self._wal.new_segment()
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
                self._cond.notify_all()

    def _store(self, items: list[Record], token: str) -> None:
        """Insert ``items``; retry while the database is failing, bisect to isolate a request
        whose data the database refuses, and quarantine that one."""
        payload = b"".join(item.payload for item in items)
        spans = sum(item.spans for item in items)
        for attempt in itertools.count():
            try:
                self._insert(payload, token)
            except Exception as exc:
                if not is_transient(exc):
                    if len(items) == 1:
                        self._reject(items[0], exc)
                        return
                    middle = len(items) // 2
                    self._store(items[:middle], f"{token}-a")
                    self._store(items[middle:], f"{token}-b")
                    return
                logger.error("inserting %d spans failed, will retry (they are kept in the log): %s", spans, exc)
                if self._closing and attempt >= 2:
                    raise _Stopped from exc
                self._set_failing(True)
                time.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
                continue
            self._set_failing(False)
            self.batches += 1
            self.rows_written += spans
            return

    def _set_failing(self, failing: bool) -> None:
        with self._cond:
            self._failing = failing
            self._cond.notify_all()

    def _reject(self, item: Record, exc: Exception) -> None:
        quarantine = WriteAheadLog(self._wal.directory / "rejected")
        keep = quarantine.new_segment()
        keep.append(item)
        keep.close()
        self.rejected_requests += 1
        logger.error("a request of %d spans cannot be inserted; it is kept in %s: %s", item.spans, keep.path, exc)

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

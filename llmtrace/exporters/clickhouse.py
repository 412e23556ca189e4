"""An OpenTelemetry ``SpanExporter`` that writes spans straight into ClickHouse ``otel_traces``.

For setups without a Collector or ``llmtrace server``. Spans become the rows the server's OTLP
ingest would store (:mod:`llmtrace.store.span_rows`, read straight from the SDK spans: encoding
them as OTLP first cost ~4x more CPU), so rows are identical. Over HTTP (clickhouse-connect)
each ``export()``'s spans become one ``Native`` block at once (:mod:`llmtrace.store.span_native`:
the bytes clickhouse-connect would write for those rows, at ~25 instead of ~30 µs of CPU per
30-attribute span, and ~0.7 instead of ~2.2 kB while queued); an INSERT sends the queued blocks
as one lz4 body, which ClickHouse squashes into one part per table and partition. Other clients
(``chdb://``, an injected one without ``raw_insert``) get the rows.

An INSERT has a fixed cost in ClickHouse (a part in ``otel_traces`` and in every table its
views feed: ~50 ms embedded), so its size decides throughput. By default each ``export()`` is
one INSERT (a ``BatchSpanProcessor`` sends 512 spans); for high volumes pass ``insert_spans``
(e.g. 8192) to hold spans across exports like the server does, or give the processor a larger
``max_export_batch_size``; see ``benchmarks/ingest.py``.

With ``background=True`` a sender thread does the INSERTs: ``export()`` converts its spans and
hands the rows off, so the next batch is converted while the last one is being written (without
it, client and server take turns), and every row that arrived while an INSERT was in flight goes
in the next one: INSERTs grow as load rises (each has a fixed server cost: a 1-row INSERT took
~140 ms of CPU in ``llmtrace server`` at load ~33, ``benchmarks/direct_formats.py``).
``export()`` waits while half of ``max_buffered_spans`` is queued behind the INSERT in
flight, or while its spans would not fit beside the INSERT in flight and those queued
(back-pressure: a healthy database never makes it drop a queued span). So INSERTs reach about half
the buffer under load: over HTTP 32,768 spans by default (or 32 MiB of Native blocks, for
large spans), for rows 5,000.

Runs under a ``BatchSpanProcessor`` and never raises: when the database is down, export
returns ``FAILURE``, keeps up to ``max_buffered_spans`` spans to retry (oldest dropped first:
rows one by one, a Native block, an export's spans, whole), and counts what it had to drop in
:attr:`ClickHouseSpanExporter.dropped_spans`. The first failure is logged once with the
URL; recovery is logged with the number of spans lost meanwhile.

Retries are idempotent. A failed INSERT may have been written with only its reply lost (a
timeout, a connection reset after the server wrote, a server killed after its commit), so each
INSERT is a block with a random ``insert_deduplication_token``, sent with ``insert_deduplicate``
and ``deduplicate_blocks_in_dependent_materialized_views``; a block that failed is retried
unchanged under the same token before any row that arrived since (those go in a later block
with a token of their own). A table with a deduplication window then stores a retried block
once, and so does every table its views feed: ``llmtrace server``, ``chdb://`` and the tables
``llmtrace migrate`` creates on a ClickHouse server (028) have one; Replicated tables have one
by default. Measured on ClickHouse 26.9 (chDB): a view's target without a window of its own gets
the retried block's rows again even when the source table skips them. clickhouse-connect itself
re-sends an INSERT whose connection was reset (the same block, so the same token: also a no-op).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["ClickHouseSpanExporter"]

logger = logging.getLogger(__name__)

# Libraries that log every failed request themselves; while we export, our one message suffices.
_NOISY_LOGGERS = (
    "urllib3.connectionpool",
    "clickhouse_connect.driver._backend.http_sync",
    "clickhouse_connect.driver.httpclient",
)
_MAX_BACKOFF_S = 30.0
_SHUTDOWN_WAIT_S = 30.0  # shutdown waits this long for rows queued and in flight
# With the block's token: a block sent again is skipped by every table it already reached.
_DEDUPLICATE = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}
_quiet = threading.local()
# Default max_buffered_spans. As Native blocks a 30-attribute span takes ~0.7 kB (~2.2 kB as rows),
# and max_buffered_bytes bounds large spans: room for INSERTs of ~22k spans, which cost the server
# ~15 us less CPU per span than ~13k (benchmarks/direct_exporter.py).
_NATIVE_BUFFER = 65_536
_ROWS_BUFFER = 10_000


class _Chunk:
    """The spans of one ``export()``, converted: ``otel_traces`` rows (for any client) or one
    ``Native`` block (~0.7 kB per 30-attribute span, a third of the rows' Python objects)."""

    __slots__ = ("native", "rows", "spans")

    def __init__(self, spans: int, rows: list[tuple[Any, ...]] | None = None, native: bytes = b"") -> None:
        self.spans = spans
        self.rows = rows
        self.native = native


def _drop_oldest(chunks: deque[_Chunk] | list[_Chunk], count: int) -> int:
    """Drop ``count`` spans from the front of ``chunks`` (rows one by one, a Native block whole, so
    possibly more); how many were dropped."""
    dropped = 0
    while dropped < count and chunks:
        chunk = chunks[0]
        if chunk.rows is not None and chunk.spans > count - dropped:
            cut = count - dropped
            del chunk.rows[:cut]
            chunk.spans -= cut
        else:
            cut = chunk.spans
            del chunks[0]
        dropped += cut
    return dropped


@dataclass
class _Block:
    """Spans sent as one INSERT, with the token that makes sending them again a no-op."""

    chunks: list[_Chunk]
    token: str

    @property
    def spans(self) -> int:
        return sum(chunk.spans for chunk in self.chunks)

    @property
    def bytes(self) -> int:
        return sum(len(chunk.native) for chunk in self.chunks)

    @classmethod
    def of(cls, chunks: list[_Chunk]) -> _Block:
        return cls(chunks, uuid.uuid4().hex)  # 128 random bits: never the token of another block


class _QuietWhileExporting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "active", False)


_QUIET_FILTER = _QuietWhileExporting()
for _name in _NOISY_LOGGERS:
    logging.getLogger(_name).addFilter(_QUIET_FILTER)


class ClickHouseSpanExporter(SpanExporter):
    """Insert finished spans into ``otel_traces`` at ``url`` (``http[s]://`` or ``chdb://``).

    ``client`` may be given instead of ``url``: a clickhouse-connect client (sent Native blocks with
    ``raw_insert``), or anything with its ``insert(table, rows, column_names=..., settings=...)``
    (sent rows); the settings carry each block's deduplication token. Otherwise one is created on
    first export, so a database that is down at startup does not break the application.

    ``insert_spans``: batch like ``llmtrace server`` does. Spans are kept until that many are
    pending (then inserted by the ``export()`` that reaches it) or the oldest has waited
    ``max_delay_s`` (then a background thread inserts them); ``force_flush()`` and
    ``shutdown()`` insert at once. ``export()`` then answers SUCCESS for spans still buffered,
    as the ``BatchSpanProcessor``'s own queue does: a crash loses them. The default (1) inserts
    on every ``export()``.

    ``max_buffered_spans``: by default 65,536 over HTTP (Native blocks), 10,000 otherwise (rows).
    ``max_buffered_bytes`` (Native blocks only; default 64 MiB) bounds them by size too: spans
    with large prompts and completions take more than the ~0.7 kB of a 30-attribute one.

    ``background``: INSERT from a sender thread (see the module docstring). ``export()`` then
    answers SUCCESS once its rows are queued, FAILURE while the database is failing (the rows
    are kept for retry, as without it); ``force_flush()`` and ``shutdown()`` wait for the rows
    queued and in flight.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        table: str = "otel_traces",
        max_buffered_spans: int | None = None,
        max_buffered_bytes: int = 64 << 20,
        connect_timeout: float = 2.0,
        insert_spans: int = 1,
        max_delay_s: float = 1.0,
        background: bool = False,
    ) -> None:
        self._native = _is_clickhouse_connect(client) if client is not None else _is_http(url)
        if max_buffered_spans is None:
            max_buffered_spans = _NATIVE_BUFFER if self._native else _ROWS_BUFFER
        if insert_spans > max(1, max_buffered_spans):
            raise ValueError(
                f"insert_spans ({insert_spans}) is above max_buffered_spans ({max_buffered_spans}): spans "
                "would be dropped before any INSERT; raise max_buffered_spans"
            )
        self._insert_spans = max(1, insert_spans)
        self._max_delay_s = max_delay_s
        self._oldest = 0.0  # when the oldest pending span arrived (monotonic)
        self._timer: threading.Thread | None = None
        self._url = url
        self._client = client
        self._table = table
        self._max_buffered = max(0, max_buffered_spans)
        self._connect_timeout = connect_timeout
        self._pending: deque[_Chunk] = deque()  # spans in no block yet
        self._pending_spans = 0
        self._pending_bytes = 0  # their Native blocks' size (0 for rows)
        self._max_bytes = max(1, max_buffered_bytes)
        # Blocks built and not yet acknowledged, oldest first (the one in flight in background mode
        # is out of it): each is retried unchanged under its token before any pending row.
        self._blocks: deque[_Block] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._failing = False
        self._dropped_while_failing = 0
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._shutdown = False
        self._background = background
        self._in_flight = 0  # spans the sender thread is inserting right now (background mode)
        self._in_flight_bytes = 0
        self._flush_wanted = False  # force_flush/shutdown asked the sender to insert at once
        self._failures = 0  # failed INSERTs so far: a flush waiting for the sender reads it
        self._queue_limit = max(self._insert_spans, self._max_buffered // 2)
        self.dropped_spans = 0  # spans lost for good (buffer full, conversion error, shutdown)
        self.exported_spans = 0

    @property
    def buffered_spans(self) -> int:
        """Spans held and not yet stored: waiting (to be batched or retried) or being inserted."""
        return self._pending_spans + sum(block.spans for block in self._blocks) + self._in_flight

    @property
    def buffered_bytes(self) -> int:
        """The size of the Native blocks held (0 for rows), as :attr:`buffered_spans` counts spans."""
        return self._pending_bytes + sum(block.bytes for block in self._blocks) + self._in_flight_bytes

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            self.dropped_spans += len(spans)
            return SpanExportResult.FAILURE
        beyond = max(0, len(spans) - self._max_buffered)  # the oldest go first, as from the buffer
        try:
            chunk = self._convert(spans[beyond:] if beyond else spans)
        except Exception:  # a span we cannot encode must not take the app down
            logger.exception("llmtrace: could not convert %d span(s); they are dropped", len(spans))
            self.dropped_spans += len(spans)
            return SpanExportResult.FAILURE
        with self._lock:
            self.dropped_spans += beyond
            self._dropped_while_failing += beyond
            if self._background:
                self._wait_for_room(chunk.spans, len(chunk.native))
            if chunk.spans:
                if not self._pending:
                    self._oldest = time.monotonic()
                self._pending.append(chunk)
                self._pending_spans += chunk.spans
                self._pending_bytes += len(chunk.native)
                self._trim()
            if self._background:
                return self._hand_off()
            if self._pending_spans < self._insert_spans and not self._failing:
                self._flush_later()
                return SpanExportResult.SUCCESS
            return SpanExportResult.SUCCESS if self._flush_pending() else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        with self._lock:
            if self._background:
                return self._drain(timeout_millis / 1000)
            return self._flush_pending(wait_backoff=False)

    def shutdown(self) -> None:
        with self._lock:
            if self._background:
                self._drain(_SHUTDOWN_WAIT_S)
                self.dropped_spans += self.buffered_spans  # what the last attempt could not store
                self._clear()
            elif not self._flush_pending(wait_backoff=False):
                self.dropped_spans += self.buffered_spans
                self._clear()
            self._shutdown = True
            self._wake.notify_all()
            client, self._client = self._client, None
        if client is not None and self._url is not None:  # close only what we opened
            try:
                client.close()
            except Exception:
                logger.debug("llmtrace: closing the ClickHouse client failed", exc_info=True)

    def _convert(self, spans: Sequence[ReadableSpan]) -> _Chunk:
        if self._native:
            from llmtrace.store.span_native import native_block

            return _Chunk(len(spans), native=native_block(spans) if spans else b"")
        from llmtrace.store.span_rows import rows_from_spans

        return _Chunk(len(spans), rows=rows_from_spans(spans))

    def _clear(self) -> None:
        self._pending.clear()
        self._pending_spans = self._pending_bytes = 0
        self._blocks.clear()
        self._in_flight = self._in_flight_bytes = 0

    # --- background sending (caller holds the lock in every method) -------------------
    def _wait_for_room(self, spans: int, size: int) -> None:
        """While the database is healthy, wait until ``spans`` more (``size`` bytes) fit in the
        buffer (the INSERT in flight ends), rather than dropping queued spans to make room."""
        while (
            self._in_flight
            and (self.buffered_spans + spans > self._max_buffered or self.buffered_bytes + size > self._max_bytes)
            and not self._failing
            and not self._shutdown
        ):
            self._wake.wait()

    def _hand_off(self) -> SpanExportResult:
        """Queue the spans for the sender; wait while half the buffer (or ``insert_spans``, if more)
        already waits behind the INSERT in flight, so a database slower than the app pushes back
        instead of dropping, and a single exporting thread still builds large INSERTs."""
        self._start_sender()
        while self._in_flight and self._queue_full() and not self._failing and not self._shutdown:
            self._wake.wait()
        return SpanExportResult.FAILURE if self._failing else SpanExportResult.SUCCESS

    def _queue_full(self) -> bool:
        """Half the buffer (spans or bytes), or ``insert_spans`` if more, waits for an INSERT."""
        return self._pending_spans >= self._queue_limit or self._pending_bytes >= self._max_bytes // 2

    def _start_sender(self) -> None:
        if self._timer is None:
            self._timer = threading.Thread(target=self._send_loop, name="llmtrace-clickhouse", daemon=True)
            self._timer.start()
        self._wake.notify_all()

    def _drain(self, timeout_s: float) -> bool:
        """Wait until every row queued now is stored (True), or an INSERT failed or time ran out."""
        if not self.buffered_spans:
            return True
        self._start_sender()
        failures, deadline = self._failures, time.monotonic() + timeout_s
        self._flush_wanted = True
        self._wake.notify_all()
        while self.buffered_spans and self._failures == failures and not self._shutdown:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake.wait(left)
        return not self.buffered_spans

    def _due(self) -> float:
        """Seconds until the sender should insert what is pending (<= 0: now)."""
        if not self._pending and not self._blocks:
            return float("inf")
        now = time.monotonic()
        if self._flush_wanted:
            return 0.0
        if now < self._retry_at:
            return self._retry_at - now  # failing: retry after the back-off
        if self._blocks or self._pending_spans >= self._insert_spans or self._pending_bytes >= self._max_bytes // 2:
            return 0.0
        return self._oldest + self._max_delay_s - now

    def _send_loop(self) -> None:
        with self._lock:
            while not self._shutdown:
                due = self._due()
                if due > 0:
                    self._wake.wait(None if due == float("inf") else due)
                    continue
                block = self._blocks.popleft() if self._blocks else self._new_block()
                self._in_flight, self._in_flight_bytes = block.spans, block.bytes
                self._wake.notify_all()  # exports waiting for room may queue the next batch now
                self._lock.release()
                try:
                    error = self._send(block)
                finally:
                    self._lock.acquire()
                self._in_flight = self._in_flight_bytes = 0
                if self._shutdown:  # shutdown stopped waiting and counted these rows as dropped
                    if error is None:
                        self.exported_spans += block.spans
                        self.dropped_spans -= block.spans
                    break
                if error is None:
                    self.exported_spans += block.spans
                    self._on_success()
                    self._flush_wanted = self._flush_wanted and bool(self._pending or self._blocks)
                else:
                    self._blocks.appendleft(block)  # retried first, unchanged, under the same token
                    self._trim()
                    self._failures += 1
                    self._flush_wanted = False
                    self._on_failure(error)
                self._wake.notify_all()

    def _send(self, block: _Block) -> Exception | None:
        """One INSERT of ``block``; the error instead of raising it (background mode: outside the lock)."""
        token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        _quiet.active = True
        try:
            _insert(self._connected(), self._table, block, native=self._native)
        except Exception as exc:
            return exc
        finally:
            _quiet.active = False
            otel_context.detach(token)
        return None

    # --- internals -------------------------------------------------------------------
    def _new_block(self) -> _Block:
        """The pending spans as a block of their own (caller holds the lock)."""
        block = _Block.of(list(self._pending))
        self._pending.clear()
        self._pending_spans = self._pending_bytes = 0
        return block

    def _flush_later(self) -> None:
        """Make sure pending spans are inserted within ``max_delay_s`` (caller holds the lock)."""
        if self._timer is None:
            self._timer = threading.Thread(target=self._flush_when_due, name="llmtrace-clickhouse", daemon=True)
            self._timer.start()
        self._wake.notify_all()

    def _flush_when_due(self) -> None:
        with self._lock:
            while not self._shutdown:
                due = 0.0 if self._blocks else self._oldest + self._max_delay_s - time.monotonic()
                if not (self._pending or self._blocks) or due > 0:
                    self._wake.wait(due if self._pending else None)
                elif not self._flush_pending():  # failing: wait for the back-off to end
                    self._wake.wait(max(0.05, self._retry_at - time.monotonic()))

    def _trim(self) -> None:
        """Keep at most ``max_buffered_spans`` spans, those in flight included (oldest go first: rows
        one by one, a Native block, one ``export()``'s spans, whole).

        A failed block may lose its oldest rows and keep its token: per partition, its first
        attempt stored all of that partition's rows or none, so the rest is stored once either way
        (a dropped row may have been stored: ``dropped_spans`` counts it all the same)."""
        overflow = self.buffered_spans - self._max_buffered
        dropped = 0
        while overflow > dropped and self._blocks:
            block = self._blocks[0]
            dropped += _drop_oldest(block.chunks, overflow - dropped)
            if not block.chunks:
                self._blocks.popleft()
        if overflow > dropped:
            cut = _drop_oldest(self._pending, overflow - dropped)
            self._pending_spans -= cut
            self._pending_bytes = sum(len(chunk.native) for chunk in self._pending)
            dropped += cut
        while self.buffered_bytes > self._max_bytes:  # Native blocks only; the newest one always stays
            if self._blocks:
                block = self._blocks[0]
                chunk = block.chunks.pop(0)
                if not block.chunks:
                    self._blocks.popleft()
            elif len(self._pending) > 1:
                chunk = self._pending.popleft()
                self._pending_spans -= chunk.spans
                self._pending_bytes -= len(chunk.native)
            else:
                break
            dropped += chunk.spans
        self.dropped_spans += dropped
        self._dropped_while_failing += dropped

    def _flush_pending(self, *, wait_backoff: bool = True) -> bool:
        """Insert the failed blocks (each unchanged, under its token), then the pending rows as a
        new block; False at the first failure, the block kept for the next attempt."""
        if not self._pending and not self._blocks:
            return True
        if wait_backoff and time.monotonic() < self._retry_at:
            return False  # the database failed recently: keep buffering, do not block the app
        while self._blocks or self._pending:
            if not self._blocks:
                self._blocks.append(self._new_block())
            block = self._blocks[0]
            error = self._send(block)
            if error is not None:
                self._on_failure(error)
                return False
            self._blocks.popleft()
            self.exported_spans += block.spans
            self._on_success()
        return True

    def _connected(self) -> Any:
        if self._client is None:
            from llmtrace.store.client import connect

            self._client = connect(self._url, connect_timeout=self._connect_timeout)
        return self._client

    def _on_failure(self, exc: Exception) -> None:
        self._backoff_s = min(_MAX_BACKOFF_S, max(1.0, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s
        if self._url is not None and not _is_chdb(self._url):
            self._client = None  # reconnect next time: the server may have restarted elsewhere
        if not self._failing:
            self._failing = True
            logger.warning(
                "llmtrace: cannot write spans to ClickHouse at %s (%s). Your app is fine; up to %d spans "
                "are kept for retry, older ones are dropped and counted.",
                _describe(self._url),
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                self._max_buffered,
            )

    def _on_success(self) -> None:
        if self._failing:
            logger.warning(
                "llmtrace: ClickHouse at %s accepts spans again; %d span(s) were dropped meanwhile.",
                _describe(self._url),
                self._dropped_while_failing,
            )
        self._failing = False
        self._dropped_while_failing = 0
        self._backoff_s = 0.0
        self._retry_at = 0.0


def _insert(client: Any, table: str, block: _Block, *, native: bool) -> None:
    """One INSERT of ``block`` under its deduplication token: for clickhouse-connect its Native
    blocks as one body, lz4-compressed (the server squashes them into one part per partition);
    for any other client its rows."""
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    settings = {**_DEDUPLICATE, "insert_deduplication_token": block.token}
    if native:
        body, compression = _compressed(b"".join(chunk.native for chunk in block.chunks))
        client.raw_insert(table, OTEL_TRACES_COLUMNS, body, settings=settings, fmt="Native", compression=compression)
    else:
        rows = [row for chunk in block.chunks if chunk.rows for row in chunk.rows]
        client.insert(table, rows, column_names=OTEL_TRACES_COLUMNS, settings=settings)


def _compressed(body: bytes) -> tuple[bytes, str | None]:
    """``body`` as an lz4 frame, as clickhouse-connect compresses its own INSERTs (~0.6 µs of client
    and 0.2 µs of server CPU per span, a quarter of the bytes); as it is without lz4 installed."""
    try:
        import lz4.frame
    except ImportError:
        return body, None
    return lz4.frame.compress(body), "lz4"


def _is_clickhouse_connect(client: Any) -> bool:
    try:
        from clickhouse_connect.driver.client import Client
    except ImportError:
        return False
    return isinstance(client, Client)


def _is_chdb(url: str) -> bool:
    return url.lower().startswith("chdb:")


def _is_http(url: str | None) -> bool:
    """Whether ``url`` (None: the environment's) names a server over HTTP, which
    :func:`llmtrace.store.client.connect` reaches with clickhouse-connect."""
    from llmtrace.store.settings import StoreSettings

    try:
        return StoreSettings.resolve(url).scheme in ("http", "https")
    except ValueError:
        return False


def _describe(url: str | None) -> str:
    from llmtrace.store.settings import StoreSettings, mask_url

    try:
        return StoreSettings.resolve(url).url
    except ValueError:
        return repr(url if url is None else mask_url(url))

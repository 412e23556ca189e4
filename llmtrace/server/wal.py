"""A write-ahead log of accepted OTLP requests, so a span is safe before it is inserted.

Each accepted request's insert-ready payload (see :mod:`llmtrace.server.decode`) is appended
as one record: a 12-byte header (``>IIB3x``: length, crc32, format) then the payload. A
record is written with one ``write()`` before the request is acknowledged, so it is in the
kernel's page cache and survives a ``kill -9`` of this process: the same durability as a
ClickHouse part written without fsync (a power cut can lose the last seconds of either).
Segments rotate each time the writer takes a batch; once that batch's INSERT returns, its
segment is deleted. On start, leftover segments are replayed: a torn last record (the process
died mid-write, so that request was never acknowledged) ends a segment.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmtrace.server.chunks import SpanKeys

__all__ = ["FORMATS", "Record", "Segment", "WriteAheadLog", "read_segment"]

_HEADER = struct.Struct(">IIB3x")
FORMATS = ("JSONCompactEachRow",)


@dataclass(frozen=True)
class Record:
    """One request's insert payload. ``keys``: its spans' keys when just decoded (not logged: a
    replayed record has none, and the writer reads them from the payload)."""

    payload: bytes
    spans: int
    format: str = FORMATS[0]
    keys: SpanKeys | None = field(default=None, compare=False, repr=False)


class Segment:
    """One append-only WAL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.records = 0
        self._size = 0

    def append(self, record: Record) -> None:
        """Write one record, or raise OSError (disk full) leaving the segment as it was: a torn
        record would end the segment on replay and hide the records acknowledged after it."""
        header = _HEADER.pack(len(record.payload), zlib.crc32(record.payload), FORMATS.index(record.format))
        assert self._fd is not None
        data = header + record.payload
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a regular-file write is whole unless the disk is full
                written += os.write(self._fd, data[written:])
        except OSError:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self.records += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def read_segment(path: Path) -> Iterator[Record]:
    """The intact records of a segment, in order; stops at a torn or corrupt record."""
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc, fmt = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc or fmt >= len(FORMATS):
            return
        yield Record(payload, payload.count(b"\n"), FORMATS[fmt])
        pos += _HEADER.size + length


class WriteAheadLog:
    """Segments in one directory, named by creation time plus a random suffix: names sort
    oldest first and are never reused, so a name can key an insert's deduplication token."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def leftovers(self) -> list[Path]:
        """Segments on disk, oldest first (on start: those not yet inserted)."""
        return sorted(self.directory.glob("*.wal"))

    def new_segment(self) -> Segment:
        return Segment(self.directory / f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.wal")

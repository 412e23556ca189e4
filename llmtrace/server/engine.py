"""The embedded ClickHouse (chDB) that ``llmtrace server`` runs, and how it may be used.

chDB facts this module is built on (verified with chdb 4.4 / ClickHouse 26.9):

- A process hosts one engine (one data path). The engine locks ``<data_dir>/status``, so a
  second process cannot open the directory; we take our own lock first to say so clearly.
- Any number of connection handles open onto that engine (~0.1 ms each). Calls on one
  handle run one at a time; calls on different handles run in parallel and release the GIL.
  A query issued on a handle whose result is still streaming returns nothing, so a handle is
  never shared between concurrent callers here: each caller gets its own.
- ``SET`` and ``USE`` are per handle, and ``readonly`` cannot be unset once set. A fresh
  handle per HTTP request therefore isolates request settings exactly.
- An INSERT into MergeTree returns after the new part is written and renamed into place, so
  acknowledged rows survive ``kill -9`` of this process (not a power cut: like ClickHouse's
  defaults, parts are not fsynced).
- chDB creates no system log tables (``query_log``, ``trace_log``, ...) on disk: there is
  nothing that can grow without bound besides the user's own tables.
- A server config file can be passed (``config-file=``); :mod:`llmtrace.store.chdb_sandbox`
  writes it: ClickHouse's access control keeps queries away from host files, URLs and
  remote servers, and MergeTree tables get a deduplication window, so re-inserting a logged batch with the same
  ``insert_deduplication_token`` after a crash is a no-op for every table it already reached
  (materialized views included). ``insert_deduplicate`` is set off on every handle, but on
  ClickHouse 26.x the newer ``deduplicate_insert`` (default ``enable``) supersedes it: an INSERT
  without a token whose block equals one of a table's recent blocks is stored once, as on a
  ClickHouse server migrated with schema 028 (measured on chDB 26.9; ``deduplicate_insert =
  'backward_compatible_choice'`` would restore the old meaning). Kept on purpose: an identical
  block is the same spans sent again, and distinct spans whose rollup rows happen to be equal are
  all counted (both tested in ``tests/test_migrations_dedup_window.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmtrace.server.sqltext import parse_statement
from llmtrace.store import chdb_sandbox

__all__ = ["DataDirLockedError", "Engine", "EngineError", "Handle"]

Handle = Any
"""A ``chdb.state.sqlitelike.Connection``."""

_LOCK_NAME = "llmtrace.lock"


class EngineError(RuntimeError):
    """The embedded ClickHouse could not be opened or used."""


class DataDirLockedError(EngineError):
    """Another process holds the data directory."""


def _lock_data_dir(data_dir: Path) -> int:
    """Hold an exclusive lock on the data dir for this process's lifetime (released on exit,
    also on kill -9, because the OS drops flock locks with the process)."""
    fd = os.open(data_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirLockedError(
            f"the data directory {data_dir} is in use by another process (pid {holder}). "
            "Stop that `llmtrace server`, or pass --data-dir to use another directory."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


class Engine:
    """One chDB engine on a data directory; hands out a fresh connection handle per caller."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = _lock_data_dir(self.data_dir)
        self._closed = False
        self._internal_lock = threading.Lock()
        try:
            self._connection_string = chdb_sandbox.connection_string(self.data_dir)
            self._anchor = self.connect()  # keeps the engine alive between requests
            chdb_sandbox.verify(lambda sql: self._anchor.query(sql, "TabSeparated").bytes().decode())
        except BaseException:
            self._release_lock()
            raise
        row = self._anchor.query("SELECT version(), timezone()", "JSONCompactEachRow").bytes()
        self.version, self.timezone = json.loads(row)

    def connect(self) -> Handle:
        """A new handle onto the engine; the caller closes it."""
        import chdb

        try:
            conn = chdb.connect(self._connection_string)
            conn.query("SET insert_deduplicate = 0", "TabSeparated")
            return conn
        except RuntimeError as exc:
            raise EngineError(
                f"could not open the embedded ClickHouse in {self.data_dir}: {exc}. If another program "
                "(a notebook using chdb?) has this directory open, close it or pass --data-dir."
            ) from exc

    @contextlib.contextmanager
    def handle(self) -> Iterator[Handle]:
        """A connection of the caller's own, closed afterwards (so its SETs die with it)."""
        if self._closed:
            raise EngineError("the embedded ClickHouse is shut down")
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def run(self, sql: str) -> list[tuple[Any, ...]] | None:
        """Run ONE statement (the migrations runner); a SELECT-like statement returns its rows."""
        statement = parse_statement(sql.encode())
        with self._internal_lock:
            result = self._anchor.query(sql, "JSONCompactEachRow")
        if not statement.returns_rows:
            return None
        return [tuple(json.loads(line)) for line in result.bytes().splitlines() if line]

    def close(self) -> None:
        """Close every handle we own; the engine shuts down when the last one closes."""
        if self._closed:
            return
        self._closed = True
        with self._internal_lock:
            self._anchor.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

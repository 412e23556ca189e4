"""Run one ClickHouse HTTP request's statement on the embedded engine, as ClickHouse would.

Each request runs on a fresh engine handle: ``USE database``, the session's earlier ``SET``s,
the URL settings, ``readonly`` last (it forbids any later SET), then the statement, or a
streaming INSERT for ``INSERT ... FORMAT X`` with data. Sessions (``session_id``) are kept as
the ``SET``/``USE`` statements they ran, replayed on each request: settings persist across a
session's requests like on a ClickHouse server; temporary tables do not.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtrace.server.engine import Engine, Handle
from llmtrace.server.sqltext import Statement
from llmtrace.store import sql_guard

__all__ = ["ClickHouseError", "Outcome", "Request", "Sessions", "execute"]

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_SESSION_LIMIT = 1000  # most SET/USE statements remembered per session
# Output "formats" that chDB's Python API turns into Python objects instead of bytes.
_PYTHON_ONLY_FORMATS = frozenset({"dataframe", "datastore", "arrowtable", "debug"})


class ClickHouseError(Exception):
    """An error to report the ClickHouse way: ``Code: N. DB::Exception: message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        text = str(exc)
        start = text.find("Code: ")
        text = text[start:] if start >= 0 else text
        match = _ERROR_CODE.match(text)
        if not match:
            return cls(1002, text.strip() or type(exc).__name__)
        body = text[match.end() :].strip()
        body = body.removeprefix("DB::Exception:").strip()
        return cls(int(match.group(1)), body)


@dataclass
class Request:
    """What the HTTP layer understood of one request."""

    statement: Statement
    params: dict[str, str] = field(default_factory=dict)
    """Query parameters for ``{name:Type}``, without the ``param_`` prefix."""
    settings: dict[str, str] = field(default_factory=dict)
    readonly: int = 0
    database: str | None = None
    default_format: str = "TabSeparated"
    session_id: str | None = None
    session_timeout: float = 60.0


@dataclass
class Outcome:
    body: bytes
    output_format: str | None
    """Set when the statement returned a result set (sent as X-ClickHouse-Format)."""
    summary: dict[str, str]


@dataclass
class _Session:
    statements: list[str] = field(default_factory=list)
    expires: float = 0.0


class Sessions:
    """``session_id`` -> the SET/USE statements it ran, expiring after ``session_timeout``."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def replay(self, session_id: str | None, timeout: float) -> list[str]:
        if session_id is None:
            return []
        now = time.monotonic()
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[key]
            session = self._sessions.setdefault(session_id, _Session())
            session.expires = now + timeout
            return list(session.statements)

    def remember(self, session_id: str | None, sql: str) -> None:
        if session_id is None:
            return
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and len(session.statements) < _SESSION_LIMIT:
                session.statements.append(sql)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settings_statement(settings: Mapping[str, str]) -> str:
    """One ``SET a = 'x', b = 'y'`` (ClickHouse converts quoted values to each setting's type)."""
    for name in settings:
        if not _SETTING_NAME.match(name):
            raise ClickHouseError(115, f"Unknown setting '{name}'")
    return "SET " + ", ".join(f"{name} = {_quote_value(value)}" for name, value in settings.items())


def _prepare(conn: Handle, request: Request, replay: list[str]) -> None:
    """Bring a fresh handle into the request's state."""
    if request.database:
        conn.query(f"USE {quote_identifier(request.database)}", "TabSeparated")
    for sql in replay:
        conn.query(sql, "TabSeparated")
    if request.settings:
        conn.query(settings_statement(request.settings), "TabSeparated")
    if request.readonly:
        conn.query(f"SET readonly = {int(request.readonly)}", "TabSeparated")


def _summary(result: Any, *, result_rows: int = 0) -> dict[str, str]:
    def stat(name: str) -> int:
        getter = getattr(result, name, None)
        return int(getter() if callable(getter) else getter or 0)

    return {
        "read_rows": str(stat("rows_read")),
        "read_bytes": str(stat("bytes_read")),
        "written_rows": str(stat("rows_written")),
        "written_bytes": str(stat("bytes_written")),
        "total_rows_to_read": "0",
        "result_rows": str(result_rows),
        "result_bytes": str(len(result.bytes()) if hasattr(result, "bytes") else 0),
        "elapsed_ns": str(int(float(getattr(result, "elapsed", lambda: 0.0)() or 0.0) * 1e9)),
    }


def _insert_summary(rows: int, size: int, elapsed: float) -> dict[str, str]:
    written = {"written_rows": str(rows), "written_bytes": str(size)}
    return {"read_rows": str(rows), "read_bytes": str(size), **written, "total_rows_to_read": "0",
            "result_rows": "0", "result_bytes": "0", "elapsed_ns": str(int(elapsed * 1e9))}  # fmt: skip


def _run(conn: Handle, request: Request) -> Outcome:
    statement = request.statement
    if statement.insert_format is not None:
        inserter = conn.send_insert(statement.sql, statement.insert_format)
        try:
            if statement.data:
                inserter.append(statement.data)
            done = inserter.finish()
        except BaseException:
            inserter.cancel()
            raise
        return Outcome(b"", None, _insert_summary(done.rows_written, done.bytes_written, done.elapsed))
    fmt = statement.output_format or request.default_format
    if request.default_format.lower() in _PYTHON_ONLY_FORMATS:
        raise ClickHouseError(73, f"Unknown format {request.default_format}")
    result = conn.query(statement.sql, request.default_format, params=request.params)
    body = result.bytes() or b""
    if not statement.returns_rows:
        return Outcome(b"", None, _summary(result))
    return Outcome(body, fmt, _summary(result))


def _guard(conn: Handle, request: Request) -> None:
    """Refuse, by ClickHouse's own parse of it, a statement that could reach the host."""
    statement = request.statement
    sql = statement.sql if statement.insert_format is None else f"{statement.sql} FORMAT {statement.insert_format}"

    def run(query: str, params: Mapping[str, str]) -> str:
        return str(conn.query(query, "TSVRaw", params=dict(params)).bytes().decode("utf-8", "replace"))

    try:
        sql_guard.check(sql, run, request.params, read_only=bool(request.readonly))
    except sql_guard.StatementRefused as exc:
        raise ClickHouseError(exc.code, exc.message) from None


def execute(engine: Engine, sessions: Sessions, request: Request) -> Outcome:
    """Run the request on its own handle. Raises :class:`ClickHouseError`."""
    replay = sessions.replay(request.session_id, request.session_timeout)
    try:
        with engine.handle() as conn:
            _guard(conn, request)
            _prepare(conn, request, replay)
            outcome = _run(conn, request)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc
    if request.statement.kind in ("SET", "USE"):
        sessions.remember(request.session_id, request.statement.sql)
    return outcome

"""A clickhouse-connect-shaped client over an embedded chDB session.

Used for ``chdb:///path`` URLs (offline analysis of a data directory no server holds) and by
``llmtrace server`` over its own in-process session. It offers the subset of
clickhouse-connect's ``Client`` that llmtrace uses, with the same semantics:
``query(sql, parameters=...)`` -> result with ``result_rows`` / ``column_names``;
``query_df``; ``command``; ``insert(table, rows, column_names=...)`` (ints into
``DateTime64`` are raw ticks, dicts into ``Map``). Errors are clickhouse-connect's
``DatabaseError`` so callers catch one type for both kinds of store.

chDB facts this relies on (chDB 4.x): one data directory per process; several sessions on
the *same* path are fine and each has its own current database; a session may be used from
several threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

from llmtrace.store import chdb_sandbox, sql_guard
from llmtrace.store.chdb_types import converter
from llmtrace.store.client import require
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

__all__ = ["ChdbClient", "ChdbQueryResult", "InsertSummary"]

_FORMAT_MARKER = b"FORMAT Native\n"
_NS = 1_000_000_000


@dataclass
class ChdbQueryResult:
    """The parts of clickhouse-connect's ``QueryResult`` llmtrace reads."""

    column_names: tuple[str, ...]
    result_rows: list[tuple[Any, ...]]

    @property
    def row_count(self) -> int:
        return len(self.result_rows)

    @property
    def first_row(self) -> tuple[Any, ...] | None:
        return self.result_rows[0] if self.result_rows else None

    @property
    def first_item(self) -> dict[str, Any] | None:
        return dict(zip(self.column_names, self.result_rows[0], strict=True)) if self.result_rows else None

    @property
    def result_columns(self) -> list[list[Any]]:
        return [list(col) for col in zip(*self.result_rows, strict=True)] if self.result_rows else []

    def named_results(self) -> list[dict[str, Any]]:
        return [dict(zip(self.column_names, row, strict=True)) for row in self.result_rows]


@dataclass
class InsertSummary:
    written_rows: int
    summary: dict[str, Any] = field(default_factory=dict)


class ChdbClient:
    """clickhouse-connect-compatible facade over a ``chdb.session.Session``."""

    def __init__(
        self, session: Any, database: str = "default", *, owns_session: bool = False, connection: str | None = None
    ) -> None:
        self._session = session
        self._owns_session = owns_session
        self._connection = connection  # what opens another handle onto the same engine
        self.database = database
        self._types: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str, database: str = "default") -> ChdbClient:
        """Open (or create) the chDB data directory at ``path``."""
        session_module = require("chdb.session")
        errors = require("clickhouse_connect.driver.exceptions")
        try:
            connection = chdb_sandbox.connection_string(Path(path)) if path != ":memory:" else path
            session = session_module.Session(connection)
        except Exception as exc:
            raise errors.OperationalError(
                f"cannot open chDB data directory {path}: {exc}. One process may open one chDB "
                "directory at a time: if `llmtrace server` holds it, use its HTTP URL instead."
            ) from exc
        client = cls(session, database, owns_session=True, connection=connection)
        if database != "default":
            try:
                client._run(f"USE {_quote_identifier(database)}", fmt="TabSeparated")
            except errors.DatabaseError as exc:
                client.close()
                raise errors.DatabaseError(
                    f"chDB directory {path} has no database {database!r}: run "
                    f"`llmtrace migrate --url 'chdb://{path}?database={database}'` first ({exc})"
                ) from exc
        return client

    def another(self) -> ChdbClient | None:
        """A client on a new handle onto the same engine, for queries run on another thread at the
        same time as this one's (each handle runs one at a time); the caller closes it. None for an
        in-memory store, where a new handle would be a new, empty database."""
        if self._connection is None or self._connection == ":memory:":
            return None
        session_module = require("chdb.session")
        handle = ChdbClient(session_module.Session(self._connection), self.database, owns_session=True)
        if self.database != "default":
            handle._run(f"USE {_quote_identifier(self.database)}", fmt="TabSeparated")
        return handle

    def read_only_frame(self, sql: str, max_rows: int) -> Any:
        """Run one user-typed statement as the SQL console does (see :meth:`_read_only`), as a
        DataFrame of at most ``max_rows`` rows."""
        settings = {"max_result_rows": max_rows, "result_overflow_mode": "break", "readonly": 1}
        return self._read_only(sql, "DataFrame", None, settings)

    def _read_only(self, sql: str, fmt: str, parameters: dict[str, Any] | None, settings: dict[str, Any]) -> Any:
        """Run ``sql`` checked by ClickHouse's parser (:mod:`llmtrace.store.sql_guard`) on a fresh
        handle whose session is set to ``readonly`` before the statement runs.

        Appending ``SETTINGS readonly = 1`` to the text (what a server does with a URL setting)
        is no wall in-process: a trailing comment swallows it and a second statement runs
        without it; and chDB's local mode reads and writes host files (``file()``, ``INTO
        OUTFILE``) outside access control, which only the statement check refuses.
        """
        if self._connection is None:
            raise RuntimeError("this chDB client cannot open a read-only handle")
        session_module = require("chdb.session")
        errors = require("clickhouse_connect.driver.exceptions")
        params = _bind(parameters) if parameters else None
        readonly = settings.get("readonly")
        others = {k: v for k, v in settings.items() if k != "readonly"}
        handle = session_module.Session(self._connection)
        try:

            def run(query: str, bound: Any) -> str:
                return _as_text(handle.query(query, "TSVRaw", params=_bind(dict(bound)) or None))

            try:
                sql_guard.check(sql, run, params, read_only=True)
            except sql_guard.StatementRefused as exc:
                raise errors.DatabaseError(f"Code: {exc.code}. DB::Exception: {exc.message}") from None
            try:
                if self.database != "default":
                    handle.query(f"USE {_quote_identifier(self.database)}", "TabSeparated")
                if others:
                    handle.query("SET" + _settings_clause(others).removeprefix(" SETTINGS"), "TabSeparated")
                handle.query(f"SET readonly = {int(readonly or 1)}", "TabSeparated")
                return handle.query(sql, fmt, params=params)
            except Exception as exc:
                raise _database_error(exc, sql) from exc
        finally:
            handle.close()

    # --- clickhouse-connect API ------------------------------------------------------
    def query(
        self, query: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> ChdbQueryResult:
        out = self._execute(query, "JSONCompact", parameters, settings)
        text = _as_text(out)
        if not text.strip():  # statements without a result set
            return ChdbQueryResult((), [])
        payload = json.loads(text)
        meta = payload.get("meta", [])
        names = tuple(str(m["name"]) for m in meta)
        converters = [converter(str(m["type"])) for m in meta]
        rows = [tuple(f(v) for f, v in zip(converters, row, strict=True)) for row in payload.get("data", [])]
        return ChdbQueryResult(names, rows)

    def query_df(
        self, query: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        return self._execute(query, "DataFrame", parameters, settings)

    def command(
        self, cmd: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        """Run a statement; return its single value (str), list of values, or None if it has none."""
        out = self._execute(cmd, "TabSeparated", parameters, settings)
        text = _as_text(out).rstrip("\n")
        if not text:
            return None
        values = text.split("\t") if "\n" not in text else text.split("\n")
        return values[0] if len(values) == 1 else values

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str] | str = "*",
        database: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> InsertSummary:
        """Insert rows (row-oriented sequences) into ``table``."""
        rows = list(data)
        if not rows:
            return InsertSummary(0)
        names = tuple(self._column_types(table, database)) if column_names == "*" else tuple(column_names)
        target = _qualified(table, database)
        if table == "otel_traces" and names == OTEL_TRACES_COLUMNS:
            body, fmt = _otel_traces_jsonl(rows), "JSONCompactEachRow"
        else:
            body, fmt = self._native_block(table, database, names, rows), "Native"
        statement = f"INSERT INTO {target} ({', '.join(_quote_identifier(n) for n in names)})"
        statement += _settings_clause(settings)
        try:
            with self._session.send_insert(statement, fmt) as inserter:
                inserter.append(body)
                inserter.finish()
        except Exception as exc:
            raise _database_error(exc, statement) from exc
        return InsertSummary(len(rows))

    def ping(self) -> bool:
        try:
            self._run("SELECT 1", fmt="TabSeparated")
        except Exception:
            return False
        return True

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    # --- internals -------------------------------------------------------------------
    def _execute(self, sql: str, fmt: str, parameters: dict[str, Any] | None, settings: dict[str, Any] | None) -> Any:
        """``readonly`` asked for (``llmtrace sql`` without ``--write``): the checked read-only
        path, as the server would enforce it; anything else runs as given."""
        if settings and str(settings.get("readonly", 0)) not in ("0", "False", "") and self._connection is not None:
            return self._read_only(sql.strip().rstrip(";").strip(), fmt, parameters, settings)
        return self._run(_with_settings(sql, settings), fmt=fmt, parameters=parameters)

    def _run(
        self,
        sql: str,
        *,
        fmt: str,
        parameters: dict[str, Any] | None = None,
    ) -> Any:
        params = _bind(parameters) if parameters else None
        try:
            return self._session.query(sql, fmt, params=params)
        except Exception as exc:
            raise _database_error(exc, sql) from exc

    def _column_types(self, table: str, database: str | None) -> dict[str, str]:
        key = (database or "", table)
        with self._lock:
            cached = self._types.get(key)
        if cached is not None:
            return cached
        db_expr = "{db:String}" if database else "currentDatabase()"
        sql = (
            "SELECT name, type FROM system.columns WHERE database = "
            + db_expr
            + " AND table = {table:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')"
            + " ORDER BY position"
        )
        params = {"table": table, **({"db": database} if database else {})}
        rows = json.loads(_as_text(self._run(sql, fmt="JSONCompact", parameters=params)))["data"]
        if not rows:
            errors = require("clickhouse_connect.driver.exceptions")
            raise errors.DatabaseError(f"table {_qualified(table, database)} does not exist: run `llmtrace migrate`")
        types = {str(name): str(type_) for name, type_ in rows}
        with self._lock:
            self._types[key] = types
        return types

    def _native_block(self, table: str, database: str | None, names: Sequence[str], rows: list[Sequence[Any]]) -> bytes:
        insert_module = require("clickhouse_connect.driver.insert")
        registry = require("clickhouse_connect.datatypes.registry")
        transform = require("clickhouse_connect.driver.transform")
        types = self._column_types(table, database)
        unknown = [n for n in names if n not in types]
        if unknown:
            errors = require("clickhouse_connect.driver.exceptions")
            raise errors.DatabaseError(f"unknown column(s) {unknown} in {_qualified(table, database)}")
        context = insert_module.InsertContext(
            table, list(names), [registry.get_from_name(types[n]) for n in names], rows, compression=None
        )
        context.compression = None
        body = b"".join(transform.NativeTransform.build_insert(context))
        if context.insert_exception is not None:
            raise context.insert_exception
        # clickhouse-connect prefixes the first block with its own INSERT statement; drop it.
        return body[body.index(_FORMAT_MARKER) + len(_FORMAT_MARKER) :]


def _otel_traces_jsonl(rows: list[Sequence[Any]]) -> bytes:
    """Fast path for OTLP ingest: JSON lines with nanosecond timestamps written as exact
    decimal seconds (JSON numbers into DateTime64 are read as seconds)."""
    encode = _JSON_ENCODE
    lines = []
    for row in rows:
        events_ts = ",".join([_seconds(ns) for ns in row[15]])
        lines.append(f"[{_seconds(row[0])},{encode(row[1:15])[1:-1]},[{events_ts}],{encode(row[16:])[1:-1]}]")
    return "\n".join(lines).encode("utf-8")


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _seconds(ns: int) -> str:
    return f"{ns // _NS}.{ns % _NS:09d}"


def _bind(parameters: dict[str, Any]) -> dict[str, str]:
    binding = require("clickhouse_connect.driver.binding")
    return {name: binding.format_bind_value(value, timezone.utc, True) for name, value in parameters.items()}


def _as_text(out: Any) -> str:
    if out is None:
        return ""
    raw = out.bytes() if hasattr(out, "bytes") else out
    return raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else str(raw)


def _with_settings(sql: str, settings: dict[str, Any] | None) -> str:
    return sql.rstrip().rstrip(";") + _settings_clause(settings) if settings else sql


def _settings_clause(settings: dict[str, Any] | None) -> str:
    if not settings:
        return ""
    items = []
    for key, value in settings.items():
        if not key.replace("_", "").isalnum():
            raise ValueError(f"invalid setting name {key!r}")
        if isinstance(value, (bool, int, float)):
            literal = str(int(value) if isinstance(value, bool) else value)
        else:
            literal = "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
        items.append(f"{key} = {literal}")
    return " SETTINGS " + ", ".join(items)


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _qualified(table: str, database: str | None) -> str:
    return f"{_quote_identifier(database)}.{_quote_identifier(table)}" if database else _quote_identifier(table)


def _database_error(exc: BaseException, sql: str) -> Exception:
    errors = require("clickhouse_connect.driver.exceptions")
    first_line = sql.strip().splitlines()[0][:200] if sql.strip() else ""
    error: Exception = errors.DatabaseError(f"{str(exc).strip()}\n(query: {first_line})")
    return error

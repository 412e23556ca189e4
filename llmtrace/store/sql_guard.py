"""Refuse statements that could reach the host, judged by ClickHouse's own parser.

The engine's access control (:mod:`llmtrace.store.chdb_sandbox`) is the wall: no sources
(file, url, s3, remote, ...), no SYSTEM, no BACKUP. What chDB's local mode does outside
access control is checked here, on the statement as ClickHouse parses it, never with a
lexer of our own: the scalar ``file()`` function, ``INTO OUTFILE`` / ``FROM INFILE`` (local
mode reads and writes those host paths itself), ``KILL`` (a user may always kill its own
queries, and every client is the same user), and table functions that are not plain
generators. The same check also refuses more than one statement and reports text that is
not SQL with ClickHouse's syntax error, where the engine would otherwise run the first
statement or answer nothing.

``formatQuery`` parses the text (passed hex-encoded, so no quoting of ours is involved)
and renders it canonically; ``EXPLAIN AST`` of that rendering lists every function node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Checked", "StatementRefused", "check"]

Run = Callable[[str, Mapping[str, str]], str]
"""``run(sql, params)``: the text of a query's result in ``TSVRaw``."""

# Table functions that only generate or reshape data already in the database.
_SAFE_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generateseries", "generate_series",
     "values", "view", "viewifpermitted", "viewexplain", "merge", "null", "input", "format", "primes", "loop",
     "fuzzjson", "fuzzquery", "mergetreeindex", "mergetreeprojection", "mergetreeanalyzeindexes",
     "mergetreecodecblockcounts", "mergetreetextindex", "dictionary", "sqlstandardvalues"}
)  # fmt: skip
# Table and database engines that keep data inside the engine's own directory. Every other
# engine (EmbeddedRocksDB's own path, FileLog, Kafka, S3Queue, Filesystem, SQLite, PostgreSQL,
# Backup, ...) reaches the host or the network; chDB does not enforce TABLE ENGINE grants.
_SAFE_ENGINES = frozenset(
    {"mergetree", "aggregatingmergetree", "coalescingmergetree", "collapsingmergetree", "graphitemergetree",
     "replacingmergetree", "summingmergetree", "versionedcollapsingmergetree", "memory", "log", "tinylog",
     "stripelog", "null", "set", "join", "buffer", "view", "materializedview", "merge", "dictionary",
     "generaterandom", "timeseries", "alias", "loop", "atomic", "ordinary"}
)  # fmt: skip
# Scalar functions (and settings functions) that touch host files or disks.
_HOST_FUNCTIONS = frozenset({"file", "disk", "filesystemavailable", "filesystemunreserved", "filesystemcapacity"})
# Every table function the engine knows that reads or writes outside it, plus chDB's
# in-process ones (python). Kept here as a floor; the engine's own list extends it.
_KNOWN_EXTERNAL = frozenset(
    {"file", "filecluster", "filesystem", "url", "urlcluster", "s3", "s3cluster", "gcs", "cosn", "oss", "hdfs",
     "hdfscluster", "remote", "remotesecure", "cluster", "clusterallreplicas", "mysql", "postgresql", "jdbc",
     "odbc", "executable", "sqlite", "mongodb", "redis", "azureblobstorage", "azureblobstoragecluster", "python",
     "eval", "arrowstream", "bigquery", "ytsaurus", "prometheusquery", "prometheusqueryrange"}
)  # fmt: skip
_REFUSED_KINDS = {
    "KILL": "KILL is not allowed here: every client shares one user, so it could stop other clients' queries",
    "SYSTEM": "SYSTEM statements are not allowed on llmtrace server",
    "BACKUP": "BACKUP writes files on the server host and is not allowed",
    "RESTORE": "RESTORE reads files on the server host and is not allowed",
    "ATTACH": "ATTACH can read table data from host paths and is not allowed",
    "GRANT": "access management is not available on llmtrace server",
    "REVOKE": "access management is not available on llmtrace server",
}
_READ_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "(", "USE", "SET"})
_HOST_CLAUSE = re.compile(r"^\s*(INTO\s+OUTFILE|FROM\s+INFILE)\b", re.MULTILINE)
_INFILE = re.compile(r"\bFROM\s+INFILE\b")
_FUNCTION = re.compile(r"^\s*Function (\S+)", re.MULTILINE)
# Table settings are one opaque node in EXPLAIN AST; a disk defined inline shows in the text.
_DISK_FUNCTION = re.compile(r"(?<![\w'`])disk\s*\(", re.IGNORECASE)
_ERROR = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.DOTALL)
_IN_SCOPE = re.compile(r"(?:: )?In scope SELECT formatQuery\(.*$", re.DOTALL)


class StatementRefused(Exception):
    """The statement may not run; ``code`` is the ClickHouse error code to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Checked:
    """A statement that passed: its canonical text, kind and the functions it calls."""

    formatted: str
    kind: str
    functions: frozenset[str]

    @property
    def read_only(self) -> bool:
        return self.kind in _READ_KINDS


def _names(run: Run, table: str) -> set[str]:
    rows = run(f"SELECT lower(name) FROM system.{table}", {})
    return {line.strip() for line in rows.splitlines() if line.strip()}


def _external_table_functions(run: Run) -> frozenset[str]:
    functions = _names(run, "table_functions") - _SAFE_TABLE_FUNCTIONS
    engines = (_names(run, "table_engines") | _names(run, "database_engines")) - _SAFE_ENGINES
    return frozenset(functions | engines | _KNOWN_EXTERNAL)


_denied: frozenset[str] | None = None


def _denied_functions(run: Run) -> frozenset[str]:
    global _denied
    if _denied is None:  # one engine version per process: read its lists once
        _denied = _external_table_functions(run) | _HOST_FUNCTIONS
    return _denied


def _engine_error(exc: BaseException) -> StatementRefused:
    match = _ERROR.search(str(exc))
    if match is None:
        return StatementRefused(62, f"Syntax error: {exc}")
    message = _IN_SCOPE.sub("", match.group(2)).strip()
    message = re.sub(r"\s*\(version [^)]*\)\.?", "", message)
    return StatementRefused(int(match.group(1)), message)


def _format(sql: str, run: Run) -> str:
    try:
        return run(f"SELECT formatQuery(unhex('{sql.encode().hex()}')) FORMAT RawBLOB", {})
    except Exception as exc:
        raise _engine_error(exc) from None


def _kind(formatted: str) -> str:
    head = formatted.lstrip()
    if head.startswith("("):
        return "("
    match = re.match(r"[A-Za-z]+", head)
    return match.group(0).upper() if match else ""


def check(sql: str, run: Run, params: Mapping[str, str] | None = None, *, read_only: bool = False) -> Checked:
    """Parse ``sql`` with the engine and refuse what may not run.

    Raises :class:`StatementRefused` with ClickHouse's code: 62 for text that is not one
    statement, 164 for a write where only reads are allowed, 497 for what reaches the host.
    """
    formatted = _format(sql, run)
    kind = _kind(formatted)
    if kind in _REFUSED_KINDS:
        raise StatementRefused(497, _REFUSED_KINDS[kind])
    if _HOST_CLAUSE.search(formatted) or (kind == "INSERT" and _INFILE.search(formatted.split("\n", 1)[0])):
        raise StatementRefused(497, "INTO OUTFILE and FROM INFILE would use files on the server host: not allowed")
    if read_only and kind not in _READ_KINDS:
        raise StatementRefused(164, f"Cannot execute query in readonly mode: {kind or 'this statement'} writes")
    try:
        ast = run(f"EXPLAIN AST {formatted}", dict(params or {}))
    except Exception as exc:
        raise _engine_error(exc) from None
    if "FunctionWithKeyValueArguments" in ast:
        raise StatementRefused(497, "dictionary sources and named collections can reach other servers: not allowed")
    if _DISK_FUNCTION.search(formatted):
        raise StatementRefused(497, "disk(...) places table data at a host path: not allowed")
    functions = frozenset(name.lower() for name in _FUNCTION.findall(ast))
    denied = sorted(functions & _denied_functions(run))
    if denied:
        raise StatementRefused(
            497, f"{', '.join(denied)}: functions and engines that reach files, URLs or other servers are not allowed"
        )
    return Checked(formatted, kind, functions)

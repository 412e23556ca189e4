"""Apply the numbered ``schemas/*.sql`` files in order, once each, recorded in a ledger.

The files are templates: ``{on_cluster}``, ``{replicated}``, ``{ttl_days}`` and
``{rollup_ttl_days}`` are filled in by :func:`render`, so one set of files serves an embedded
chDB, a single server and a replicated cluster. The ledger (``schema_migrations``) stores the
sha256 of each file's *text*, not of its rendering: re-running with other parameters is a
no-op, while an applied file that was edited afterwards is refused with :class:`MigrationError`.

With a cluster, :func:`render` also builds the Distributed layer (see :func:`cluster_statements`):
each sharded table becomes ``<name>_local`` (Replicated, per shard) under a ``Distributed`` table of
the original name, so readers and the Collector use the same names as on one node.

Materialized views only see new inserts. After adding a view over existing data, backfill it
with ``INSERT INTO <target> SELECT ... FROM <source>`` using the view's SELECT.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_NODES",
    "LEDGER_FILE",
    "SHARDING_KEYS",
    "MigrationError",
    "apply_migrations",
    "checksum",
    "client_runner",
    "cluster_statements",
    "render",
    "schema_files",
    "split_statements",
]

LEDGER_FILE = "001_schema_migrations.sql"
_FILE_NAME = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
_PLACEHOLDER = re.compile(r"\{(on_cluster|replicated|ttl_days|rollup_ttl_days)\}")
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")

# Cluster mode: how each MergeTree-family table is laid out. A sharded table is <name>_local on every
# shard (Replicated within it) under a Distributed <name> with this key. otel_traces, llm_calls and
# their companions go by trace id so a trace (and the llm_calls and per-trace ranges the views
# derive from it) stays on one shard. Rollup rows are written by the per-shard views wherever the
# source row landed, so no key can co-locate a group and readers always merge across shards; the
# key only routes direct inserts (backfills), and a deterministic one makes a retried block land on
# the same shard, where replicated dedup drops it (rand() would count it twice).
SHARDING_KEYS = {
    "otel_traces": "cityHash64(TraceId)",
    "otel_traces_trace_id_ts": "cityHash64(TraceId)",
    "otel_traces_content": "cityHash64(TraceId)",
    "llm_calls": "cityHash64(TraceId)",
    "llm_traces": "cityHash64(TraceId)",
    "llm_calls_1m": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_calls_1h": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_latency_1h": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_users_1h": "cityHash64(UserId, Bucket)",
    "llm_speed_1h": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_anomaly_5m": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_storm_5m": "cityHash64(ServiceName, RequestModel, Bucket)",
    "llm_scores": "cityHash64(TraceId)",
}
# Small reference tables every node reads in full (the ledger and the price overrides, wherever
# migrate or the server connects): one replicated table with a ZooKeeper path
# without {shard}, so every node of the cluster is a replica of it and an insert anywhere reaches all.
ALL_NODES = {"schema_migrations", "model_prices"}
_ALL_NODES_PATH = "'/clickhouse/tables/{uuid}/all', '{shard}-{replica}'"
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) (ON CLUSTER `[^`]+`)", re.IGNORECASE)
_CREATE_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) (ON CLUSTER `[^`]+`)\s+TO (\w+)", re.I)
_ALTER_TABLE = re.compile(r"^ALTER TABLE (\w+) (ON CLUSTER `[^`]+`)", re.IGNORECASE)
_ENGINE = re.compile(r"ENGINE\s*=\s*(Replicated\w*MergeTree)(\(([^)]*)\))?")
_MODIFY_QUERY = re.compile(r"\s+MODIFY\s+QUERY\b", re.IGNORECASE)
_COLUMN_ALTER = re.compile(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.IGNORECASE)
# A setting only non-replicated tables read: on a cluster every MergeTree table is Replicated.
_NON_REPLICATED_SETTING = re.compile(r"\s+MODIFY\s+SETTING\s+non_replicated_\w+\s*=", re.IGNORECASE)

# run(sql) executes ONE statement; for a SELECT it returns the result rows.
Runner = Callable[[str], Any]


class MigrationError(RuntimeError):
    """The schema cannot be applied as asked (edited file, bad parameter, failed statement)."""


def schema_files() -> list[Path]:
    """The schema files in apply order, from a checkout (``<repo>/schemas``) or a wheel
    (``llmtrace/_schemas``)."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_schemas", package_dir.parent / "schemas"):
        files = sorted(p for p in candidate.glob("*.sql") if _FILE_NAME.match(p.name))
        if files:
            return files
    raise MigrationError(
        f"no schema files found in {package_dir / '_schemas'} or {package_dir.parent / 'schemas'}; "
        "reinstall llmtrace (the wheel ships them as llmtrace/_schemas)"
    )


def checksum(text: str) -> str:
    """sha256 of a schema file's text, as recorded in the ledger."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render(
    text: str, *, cluster: str | None = None, ttl_days: int = 30, rollup_ttl_days: int = 400,
    database: str = "default",
) -> str:  # fmt: skip
    """Fill the template placeholders; other braces (ClickHouse ``{name:Type}``) are left alone.

    With a cluster the result is the file's statements (comments dropped) rewritten by
    :func:`cluster_statements` for the Distributed layer; ``database`` is the one the
    Distributed tables point at. Without one the text is only filled in, comments and all.
    """
    if cluster is not None and not _CLUSTER_NAME.match(cluster):
        raise MigrationError(f"invalid cluster name {cluster!r}: use letters, digits, '_', '-' or '.'")
    if cluster is not None and not _CLUSTER_NAME.match(database):
        raise MigrationError(f"invalid database name {database!r}: use letters, digits, '_', '-' or '.'")
    for label, days in (("--ttl-days", ttl_days), ("rollup TTL days", rollup_ttl_days)):
        if not isinstance(days, int) or days < 1:
            raise MigrationError(f"{label} must be a whole number of days >= 1, got {days!r}")
    values = {
        "on_cluster": f"ON CLUSTER `{cluster}`" if cluster else "",
        "replicated": "Replicated" if cluster else "",
        "ttl_days": str(ttl_days),
        "rollup_ttl_days": str(rollup_ttl_days),
    }
    filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    if cluster is None:
        return filled
    return ";\n\n".join(cluster_statements(filled, cluster, database))


def cluster_statements(text: str, cluster: str, database: str = "default") -> list[str]:
    """Rewrite rendered cluster DDL for the Distributed layer, statement by statement.

    - ``CREATE TABLE x`` of a :data:`SHARDING_KEYS` table becomes ``x_local`` plus a Distributed
      ``x`` over it; one of :data:`ALL_NODES` gets a ZooKeeper path shared by every node.
    - ``CREATE MATERIALIZED VIEW ... TO t ... FROM s`` reads ``s_local`` and writes ``t_local``, so
      each shard derives its own rows from what was inserted on it (a view on a Distributed table
      would only see inserts made through that node).
    - ``ALTER TABLE x`` (TTL, settings, indexes) goes to ``x_local``; column changes go to both.
    - ``ALTER TABLE <view> MODIFY QUERY`` reads the locals, as the view's CREATE does.
    - ``ALTER TABLE x MODIFY SETTING non_replicated_...`` is dropped: every table is Replicated.

    Plain views and other statements are kept: they read the Distributed names.
    """
    out: list[str] = []
    for statement in split_statements(text):
        table = _CREATE_TABLE.match(statement)
        view = _CREATE_MV.match(statement)
        alter = _ALTER_TABLE.match(statement)
        if table and table.group(1) in SHARDING_KEYS:
            name, on_cluster = table.group(1), table.group(2)
            local = f"{name}_local"
            out.append(_CREATE_TABLE.sub(f"CREATE TABLE IF NOT EXISTS {local} {on_cluster}", statement, count=1))
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name} {on_cluster} AS {local}\n"
                f"ENGINE = Distributed('{cluster}', '{database}', '{local}', {SHARDING_KEYS[name]})"
            )
        elif table and table.group(1) in ALL_NODES:
            out.append(_ENGINE.sub(_all_nodes_engine, statement, count=1))
        elif table and _ENGINE.search(statement):
            raise MigrationError(
                f"table {table.group(1)} has no cluster layout: add it to SHARDING_KEYS (sharded, with "
                "the Distributed key) or ALL_NODES (one copy on every node) in llmtrace/store/migrations.py"
            )
        elif view:
            body = _read_locals(statement[view.end() :])
            target = view.group(3)
            target = f"{target}_local" if target in SHARDING_KEYS else target
            head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.group(1)} {view.group(2)}\nTO {target}"
            out.append(head + body)
        elif alter and _NON_REPLICATED_SETTING.match(statement, alter.end()):
            continue  # Replicated tables deduplicate by their own window (028)
        elif alter and _MODIFY_QUERY.match(statement, alter.end()):  # a view's new SELECT: as in CREATE
            out.append(statement[: alter.end()] + _read_locals(statement[alter.end() :]))
        elif alter and alter.group(1) in SHARDING_KEYS:
            name = alter.group(1)
            out.append(_ALTER_TABLE.sub(f"ALTER TABLE {name}_local {alter.group(2)}", statement, count=1))
            if _COLUMN_ALTER.search(statement):
                out.append(statement)
        else:
            out.append(statement)
    return out


def _read_locals(body: str) -> str:
    """A view's SELECT reading the shard tables: each shard derives rows from what it stores."""
    for name in SHARDING_KEYS:
        body = re.sub(rf"\b(FROM|JOIN)(\s+){name}\b(?!_)", rf"\1\2{name}_local", body)
    return body


def _all_nodes_engine(match: re.Match[str]) -> str:
    args = match.group(3)
    rest = f", {args}" if args and args.strip() else ""
    return f"ENGINE = {match.group(1)}({_ALL_NODES_PATH}{rest})"


def split_statements(text: str) -> list[str]:
    """Split SQL text on ``;`` outside quotes and ``--`` comments; drop empty statements."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < n:
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
            current.append(ch)
        elif ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def apply_migrations(
    run: Runner,
    *,
    cluster: str | None = None,
    ttl_days: int = 30,
    rollup_ttl_days: int = 400,
    files: Sequence[Path] | None = None,
    database: str = "default",
) -> list[str]:
    """Apply every schema file not yet in the ledger, in order; return the names applied.

    Re-running is a no-op. Raises :class:`MigrationError` if an applied file changed, or
    naming the file and statement that failed (earlier statements stay applied; they are
    idempotent, so fixing the cause and re-running resumes).
    """
    paths = list(files) if files is not None else schema_files()
    texts = {p.name: p.read_text(encoding="utf-8") for p in paths}

    def rendered(name: str) -> str:
        return render(
            texts[name], cluster=cluster, ttl_days=ttl_days, rollup_ttl_days=rollup_ttl_days, database=database
        )

    if LEDGER_FILE in texts:
        _run_file(run, LEDGER_FILE, rendered(LEDGER_FILE))
    applied = _applied(run)
    _refuse_changed(paths, texts, applied)
    done: list[str] = []
    for path in paths:
        if path.name in applied:
            continue
        _run_file(run, path.name, rendered(path.name))
        run(_ledger_insert(path.name, checksum(texts[path.name])))
        done.append(path.name)
    return done


def pending(run: Runner) -> list[str]:
    """The schema files this llmtrace has that the store has not applied (all of them without a ledger):
    what an analysis that fails on an unknown column or table should name."""
    try:
        applied = _applied(run)
    except Exception:  # no ledger: a store never migrated
        applied = {}
    return [path.name for path in schema_files() if path.name not in applied]


def client_runner(client: Any) -> Runner:
    """Adapt a clickhouse-connect style client (``query``/``command``) to a :data:`Runner`."""

    def run(sql: str) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            return client.query(sql).result_rows
        return client.command(sql)

    return run


def _run_file(run: Runner, name: str, rendered: str) -> None:
    for number, statement in enumerate(split_statements(rendered), start=1):
        try:
            run(statement)
        except Exception as exc:
            raise MigrationError(f"schemas/{name}, statement {number} failed: {exc}") from exc


def _applied(run: Runner) -> dict[str, str]:
    rows = run("SELECT name, argMax(checksum, applied_at) FROM schema_migrations GROUP BY name") or []
    return {str(name): str(digest) for name, digest in rows}


def _refuse_changed(paths: Sequence[Path], texts: dict[str, str], applied: dict[str, str]) -> None:
    for path in paths:
        recorded = applied.get(path.name)
        actual = checksum(texts[path.name])
        if recorded is not None and recorded != actual:
            raise MigrationError(
                f"schema file {path} was edited after it was applied (ledger checksum {recorded[:12]}…, "
                f"file {actual[:12]}…). Applied schema files are append-only: restore the file and "
                "put the change in a new numbered file."
            )


def _ledger_insert(name: str, digest: str) -> str:
    # Both values are validated to a safe alphabet, so inlining them cannot inject SQL.
    if not _FILE_NAME.match(name) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise MigrationError(f"refusing to record unexpected migration name {name!r}")
    return f"INSERT INTO schema_migrations (name, checksum) VALUES ('{name}', '{digest}')"


# Tables with a TTL and the time expression it is measured from (as in the schema files).
_RAW_TTL = {
    "otel_traces": "toDateTime(Timestamp)",
    "otel_traces_trace_id_ts": "Start",
    "otel_traces_content": "toDateTime(Timestamp)",
    "llm_calls": "toDateTime(Timestamp)",
    "llm_traces": "Hour",
}
_ROLLUP_TTL = {
    "llm_calls_1m": "Bucket",
    "llm_calls_1h": "Bucket",
    "llm_latency_1h": "Bucket",
    "llm_users_1h": "Bucket",
    "llm_speed_1h": "Bucket",
    "llm_anomaly_5m": "Bucket",
    "llm_storm_5m": "Bucket",
    "llm_scores": "toDateTime(Timestamp)",
}


def set_ttl(run: Runner, *, ttl_days: int | None = None, rollup_ttl_days: int | None = None,
            cluster: str | None = None) -> list[str]:  # fmt: skip
    """Change the retention of tables that already exist (the schema files only set it at creation).

    Returns the tables altered (with a cluster, the shards' ``<table>_local``: a Distributed table
    holds no data). Safe to repeat: ``MODIFY TTL`` to the same value is a no-op.
    """
    statements: list[str] = []
    for tables, days in ((_RAW_TTL, ttl_days), (_ROLLUP_TTL, rollup_ttl_days)):
        if days is None:
            continue
        render("", cluster=cluster, ttl_days=days)  # validates days and the cluster name
        on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
        for table, start in tables.items():
            table = f"{table}_local" if cluster else table  # TTL lives on the shards' tables
            statements.append(f"ALTER TABLE {table}{on_cluster} MODIFY TTL {start} + toIntervalDay({int(days)})")
    for statement in statements:
        run(statement)
    return [s.split()[2] for s in statements]

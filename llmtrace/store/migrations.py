"""Apply the numbered ``schemas/*.sql`` files in order, once each, recorded in a ledger.

The files are templates: ``{on_cluster}``, ``{replicated}``, ``{ttl_days}`` and
``{rollup_ttl_days}`` are filled in by :func:`render`, so one set of files serves an embedded
chDB, a single server and a replicated cluster. The ledger (``schema_migrations``) stores the
sha256 of each file's *text*, not of its rendering: re-running with other parameters is a
no-op, while an applied file that was edited afterwards is refused with :class:`MigrationError`.

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
    "LEDGER_FILE",
    "MigrationError",
    "apply_migrations",
    "checksum",
    "client_runner",
    "render",
    "schema_files",
    "split_statements",
]

LEDGER_FILE = "001_schema_migrations.sql"
_FILE_NAME = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
_PLACEHOLDER = re.compile(r"\{(on_cluster|replicated|ttl_days|rollup_ttl_days)\}")
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")

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


def render(text: str, *, cluster: str | None = None, ttl_days: int = 30, rollup_ttl_days: int = 400) -> str:
    """Fill the template placeholders; other braces (ClickHouse ``{name:Type}``) are left alone."""
    if cluster is not None and not _CLUSTER_NAME.match(cluster):
        raise MigrationError(f"invalid cluster name {cluster!r}: use letters, digits, '_', '-' or '.'")
    for label, days in (("--ttl-days", ttl_days), ("rollup TTL days", rollup_ttl_days)):
        if not isinstance(days, int) or days < 1:
            raise MigrationError(f"{label} must be a whole number of days >= 1, got {days!r}")
    values = {
        "on_cluster": f"ON CLUSTER `{cluster}`" if cluster else "",
        "replicated": "Replicated" if cluster else "",
        "ttl_days": str(ttl_days),
        "rollup_ttl_days": str(rollup_ttl_days),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


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
) -> list[str]:
    """Apply every schema file not yet in the ledger, in order; return the names applied.

    Re-running is a no-op. Raises :class:`MigrationError` if an applied file changed, or
    naming the file and statement that failed (earlier statements stay applied; they are
    idempotent, so fixing the cause and re-running resumes).
    """
    paths = list(files) if files is not None else schema_files()
    texts = {p.name: p.read_text(encoding="utf-8") for p in paths}

    def rendered(name: str) -> str:
        return render(texts[name], cluster=cluster, ttl_days=ttl_days, rollup_ttl_days=rollup_ttl_days)

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
    "llm_calls": "toDateTime(Timestamp)",
}
_ROLLUP_TTL = {"llm_calls_1m": "Bucket", "llm_calls_1h": "Bucket", "llm_scores": "toDateTime(Timestamp)"}


def set_ttl(run: Runner, *, ttl_days: int | None = None, rollup_ttl_days: int | None = None,
            cluster: str | None = None) -> list[str]:  # fmt: skip
    """Change the retention of tables that already exist (the schema files only set it at creation).

    Returns the tables altered. Safe to repeat: ``MODIFY TTL`` to the same value is a no-op.
    """
    statements: list[str] = []
    for tables, days in ((_RAW_TTL, ttl_days), (_ROLLUP_TTL, rollup_ttl_days)):
        if days is None:
            continue
        render("", cluster=cluster, ttl_days=days)  # validates days and the cluster name
        on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
        for table, start in tables.items():
            statements.append(f"ALTER TABLE {table}{on_cluster} MODIFY TTL {start} + toIntervalDay({int(days)})")
    for statement in statements:
        run(statement)
    return [s.split()[2] for s in statements]

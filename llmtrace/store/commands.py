"""``llmtrace migrate`` and ``llmtrace sql``: apply the schema, and query the store from a shell."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["add_arguments", "format_rows", "migrate", "run"]

_MAX_CELL = 80


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="ClickHouse URL: http[s]://user:password@host:port/database or chdb:///path "
        "(default: $LLMTRACE_CLICKHOUSE_URL, then http://localhost:8123)",
    )
    if name == "migrate":
        parser.add_argument(
            "--cluster",
            help="create the schema ON CLUSTER <name>: Replicated <table>_local per shard under Distributed "
            "<table> (same names for readers and the Collector); rerun with the same name",
        )
        parser.add_argument(
            "--ttl-days", type=int, default=None,
            help="days to keep raw spans and llm_calls (30 for new tables; given, it also changes existing ones)",
        )  # fmt: skip
        parser.add_argument(
            "--rollup-ttl-days", type=int, default=None,
            help="days to keep rollups and scores (400 for new tables; given, it also changes existing ones)",
        )  # fmt: skip
        parser.add_argument(
            "--prices-file", help="JSON list of price overrides (USD per million tokens); stored calls are re-priced"
        )
        parser.add_argument("--no-prices", action="store_true", help="ignore --prices-file")
    else:
        parser.add_argument("query", help='SQL to run, e.g. "SELECT count() FROM llm_calls"')
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument(
            "--write", action="store_true",
            help="allow statements that change data or schema (default: read-only, enforced by ClickHouse)",
        )  # fmt: skip


def run(name: str, args: argparse.Namespace) -> int:
    from llmtrace.store.client import MissingExtraError, StoreUnavailableError
    from llmtrace.store.migrations import MigrationError

    try:
        if name == "migrate":
            return migrate(args)
        return _sql(args)
    except (StoreUnavailableError, MissingExtraError, MigrationError, ValueError) as exc:
        print(f"llmtrace {name}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # database errors: the server's message is the useful part
        if type(exc).__module__.startswith("clickhouse_connect"):
            print(f"llmtrace {name}: {exc}", file=sys.stderr)
            return 1
        raise


def migrate(args: argparse.Namespace) -> int:
    """Create the database if needed, apply pending schema files, load model prices."""
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner, set_ttl
    from llmtrace.store.settings import StoreSettings

    settings = StoreSettings.resolve(args.url)
    if settings.database != "default":
        admin = connect(args.url, database="default")
        on_cluster = f" ON CLUSTER `{args.cluster}`" if args.cluster else ""
        admin.command(f"CREATE DATABASE IF NOT EXISTS `{settings.database}`{on_cluster}")
        admin.close()
    client = connect(args.url)
    try:
        run = client_runner(client)
        applied = apply_migrations(
            run,
            cluster=args.cluster,
            ttl_days=args.ttl_days or 30,
            rollup_ttl_days=args.rollup_ttl_days or 400,
            database=settings.database,
        )
        retained = set_ttl(run, ttl_days=args.ttl_days, rollup_ttl_days=args.rollup_ttl_days, cluster=args.cluster)
        repriced = _prices(client, args)
    finally:
        client.close()
    where = settings.url
    if applied:
        print(f"applied {len(applied)} schema file(s) to {where}")
    else:
        print(f"schema of {where} is up to date")
    for file_name in applied:
        print(f"  {file_name}")
    if retained:
        print(f"retention set on {', '.join(retained)}")
    if repriced:
        print(repriced)
    return 0


def _prices(client: Any, args: argparse.Namespace) -> str:
    """Keep --prices-file's overrides and re-price the stored calls with them (one line to print)."""
    from llmtrace.store.prices import apply_prices

    if args.no_prices or not args.prices_file:
        return ""
    done = apply_prices(client, args.prices_file)  # on a cluster: ON CLUSTER to the shards' llm_calls_local
    return (
        f"applied price overrides: re-priced {done.calls} stored call(s), "
        f"${done.cost_before:.6g} -> ${done.cost_after:.6g}"
    )


def _sql(args: argparse.Namespace) -> int:
    from llmtrace.store.client import connect

    client = connect(args.url)
    try:
        # Read-only unless asked: a typo in a shell must not be able to drop a table.
        result = client.query(args.query, settings=None if args.write else {"readonly": 1})
    except Exception as exc:
        if not args.write and "readonly" in str(exc).lower():
            raise ValueError(f"{_first_line(exc)}\n(llmtrace sql is read-only; add --write to change data)") from exc
        raise
    finally:
        client.close()
    format_rows(list(result.column_names), [tuple(r) for r in result.result_rows], args.format, sys.stdout)
    return 0


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def format_rows(columns: list[str], rows: Sequence[tuple[Any, ...]], fmt: str, out: TextIO) -> None:
    """Write rows as an aligned text table, CSV or a JSON list of objects."""
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[_cell(v, limit=None, exact=True) for v in row] for row in rows])
    elif fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        out.write(json.dumps(records, default=str, ensure_ascii=False, indent=2) + "\n")
    else:
        _write_table(columns, rows, out)


def _write_table(columns: list[str], rows: Sequence[tuple[Any, ...]], out: TextIO) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(columns) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _cell(value: Any, limit: int | None = _MAX_CELL, exact: bool = False) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, float) and not exact:
        text = _float(value)
    elif isinstance(value, (list, dict, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _float(value: float) -> str:
    """A float for people reading a table: 12 significant digits, so binary noise such as
    0.10739339999999997 reads 0.1073934 and 22.0 reads 22 (CSV and JSON keep every digit). 15 digits
    still showed the rounding a sum of thousands of costs gathers (20.9778344999998)."""
    return f"{value:.12g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

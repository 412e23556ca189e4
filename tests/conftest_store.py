"""Shared chDB fixtures for storage tests (use with ``pytest_plugins = ["tests.conftest_store"]``).

chDB facts these rely on (chdb 4.4): a process hosts ONE engine, on one data directory; opening
a second directory raises "EmbeddedServer already initialized" while any session of the first
is open (``chdb.query()``, the stateless call, counts as a different directory too). Any number
of sessions may open the same directory, each with its own current database, and when the last
one closes the engine stops (~50 ms) so another directory can be opened. Hence: one directory
per test module, held open by an anchor session, and a fresh database per test, dropped after.
Everything that opens chDB in a test must close it again.

A fresh schema'd database is a copy of one migrated once per test run (:func:`copy_schema`): the 49
migration statements and 24 ledger inserts cost ~0.8-1.0 s CPU a database, the copy ~0.2-0.3 s, and
about 250 tests take one. ``test_migrations`` checks that a copy equals a migrated database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner


@pytest.fixture(scope="module")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's chDB data directory, kept open (engine running) for the module."""
    path = tmp_path_factory.mktemp("chdb")
    anchor = ChdbClient.open(str(path))
    try:
        yield path
    finally:
        anchor.close()


@contextmanager
def _fresh_database(chdb_path: Path) -> Iterator[ChdbClient]:
    """A client on a new, empty database in ``chdb_path``, dropped on exit."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin = ChdbClient.open(str(chdb_path))
    admin.command(f"CREATE DATABASE {database}")
    client = ChdbClient.open(str(chdb_path), database=database)
    try:
        yield client
    finally:
        client.close()
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


_TEMPLATE_DATABASE = "llmtrace_schema_template"
_schema_copy: tuple[list[str], list[tuple[str, str]]] | None = None  # (CREATE statements, ledger rows)


def schema_copy(chdb_path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The migrated schema as CREATE statements naming the template database (tables before views), and
    the ledger's (name, checksum) rows: migrated once per test run in a scratch database, then dropped."""
    global _schema_copy
    if _schema_copy is None:
        admin = ChdbClient.open(str(chdb_path))
        try:
            admin.command(f"DROP DATABASE IF EXISTS {_TEMPLATE_DATABASE} SYNC")
            admin.command(f"CREATE DATABASE {_TEMPLATE_DATABASE}")
            template = ChdbClient.open(str(chdb_path), database=_TEMPLATE_DATABASE)
            try:
                apply_migrations(client_runner(template))
                objects = template.query(
                    "SELECT engine LIKE '%View', name, create_table_query FROM system.tables "
                    "WHERE database = currentDatabase() ORDER BY 1, 2"
                ).result_rows
                ledger = template.query("SELECT name, checksum FROM schema_migrations ORDER BY name").result_rows
            finally:
                template.close()
            admin.command(f"DROP DATABASE {_TEMPLATE_DATABASE} SYNC")
        finally:
            admin.close()
        _schema_copy = ([str(sql) for _, _, sql in objects], [(str(n), str(c)) for n, c in ledger])
    return _schema_copy


def copy_schema(chdb_path: Path, client: ChdbClient) -> None:
    """Give ``client``'s empty database the full schema and ledger, as ``apply_migrations`` would."""
    statements, ledger = schema_copy(chdb_path)
    for statement in statements:
        client.command(statement.replace(f"{_TEMPLATE_DATABASE}.", f"`{client.database}`."))
    values = ", ".join(f"('{name}', '{digest}')" for name, digest in ledger)
    client.command(f"INSERT INTO schema_migrations (name, checksum) VALUES {values}")


@pytest.fixture
def empty_store(chdb_path: Path) -> Iterator[ChdbClient]:
    """A client on a fresh, empty database (no schema) in the module's chDB directory."""
    with _fresh_database(chdb_path) as client:
        yield client


@pytest.fixture
def store(chdb_path: Path, empty_store: ChdbClient) -> ChdbClient:
    """A client on a fresh database with the full schema applied (a copy of a migrated one)."""
    copy_schema(chdb_path, empty_store)
    return empty_store


@pytest.fixture(scope="module")
def module_databases(chdb_path: Path) -> Iterator[Callable[[], ChdbClient]]:
    """``new()``: another database with the full schema in the module's directory, dropped when the module
    ends; for module-scoped data sets that tests only read (built once instead of once per test)."""
    with ExitStack() as databases:

        def new() -> ChdbClient:
            client = databases.enter_context(_fresh_database(chdb_path))
            copy_schema(chdb_path, client)
            return client

        yield new


@pytest.fixture(scope="module")
def module_store(module_databases: Callable[[], ChdbClient]) -> ChdbClient:
    """One database with the full schema for a whole module, for data that tests only read.
    A test that writes takes ``store``."""
    return module_databases()


@pytest.fixture
def emptied_store(module_store: ChdbClient) -> Iterator[ChdbClient]:
    """The module's shared schema'd database, every table but the migration ledger truncated after the
    test: each test starts as on a fresh ``store`` without migrating one. Only for tests that add rows
    (no DDL, no re-pricing, no ledger edits): the schema itself is not restored."""
    try:
        yield module_store
    finally:
        tables = module_store.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
            "AND name != 'schema_migrations'"
        ).result_rows
        for (table,) in tables:
            module_store.command(f"TRUNCATE TABLE `{table}`")


@pytest.fixture
def store_url(chdb_path: Path, store: ChdbClient) -> str:
    """A ``chdb://`` URL for the ``store`` database (for code that connects by URL)."""
    return f"chdb://{chdb_path}?database={store.database}"


@pytest.fixture
def make_otel_row() -> Callable[..., tuple[object, ...]]:
    """:func:`otel_row`, as a fixture (so test modules need not import this plugin module)."""
    return otel_row


def otel_row(
    span_attributes: dict[str, str] | None = None,
    *,
    resource_attributes: dict[str, str] | None = None,
    start_ns: int | None = None,
    duration_ns: int = 1_500_000_000,
    trace_id: str | None = None,
    span_id: str | None = None,
    span_name: str = "chat gpt-4o",
    span_kind: str = "Client",
    service_name: str = "svc",
    status_code: str = "Unset",
    events: list[tuple[int, str, dict[str, str]]] | None = None,
) -> tuple[object, ...]:
    """One otel_traces row shaped as the Collector writes it (all attribute values strings)."""
    import time

    events = events or []
    return (
        start_ns if start_ns is not None else time.time_ns(),
        trace_id or uuid.uuid4().hex,
        span_id or uuid.uuid4().hex[:16],
        "",
        "",
        span_name,
        span_kind,
        service_name,
        {"service.name": service_name, **(resource_attributes or {})},
        "scope",
        "1.0",
        span_attributes or {},
        duration_ns,
        status_code,
        "",
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        [],
        [],
        [],
        [],
    )

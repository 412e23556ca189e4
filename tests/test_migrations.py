"""The schema runner: ordered, once, ledgered, refusing edits, rendering cluster and TTL."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import (
    SHARDING_KEYS,
    MigrationError,
    apply_migrations,
    client_runner,
    render,
    schema_files,
    set_ttl,
    split_statements,
)

REPO_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def copy_schemas(tmp_path: Path) -> list[Path]:
    target = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, target)
    return sorted(target.glob("*.sql"))


def test_schema_files_are_the_numbered_files_of_the_checkout_in_order() -> None:
    files = schema_files()
    assert [f.name for f in files] == sorted(p.name for p in REPO_SCHEMAS.glob("*.sql"))
    assert all(re.match(r"^\d{3}_[a-z0-9_]+\.sql$", f.name) for f in files)
    assert len({f.name[:3] for f in files}) == len(files), "two schema files share a number"


def test_first_run_applies_every_file_and_second_run_is_a_no_op(empty_store: ChdbClient) -> None:
    run = client_runner(empty_store)
    assert apply_migrations(run) == [f.name for f in schema_files()]
    assert apply_migrations(run) == []


def test_ledger_records_each_file_with_the_sha256_of_its_text(empty_store: ChdbClient) -> None:
    apply_migrations(client_runner(empty_store))
    ledger = dict(empty_store.query("SELECT name, checksum FROM schema_migrations").result_rows)
    assert ledger == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in schema_files()}


def test_the_store_fixtures_copy_equals_a_migrated_database(chdb_path: Path, store: ChdbClient) -> None:
    """``store`` copies a migrated schema instead of migrating (4x less CPU): the copy must be the same
    objects, definitions and ledger, so a test on it sees what it would on a migrated database."""
    store.command("CREATE DATABASE migrated_here")
    migrated = ChdbClient.open(str(chdb_path), database="migrated_here")
    try:
        apply_migrations(client_runner(migrated))
        _assert_same_schema(store, migrated)
    finally:
        migrated.command("DROP DATABASE migrated_here SYNC")
        migrated.close()


def _assert_same_schema(store: ChdbClient, migrated: ChdbClient) -> None:
    def schema(client: ChdbClient) -> dict[str, str]:
        rows = client.query(
            "SELECT name, engine, create_table_query FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
        return {name: f"{engine}: " + sql.replace(f"{client.database}.", "DB.") for name, engine, sql in rows}

    def ledger(client: ChdbClient) -> list[tuple[str, str]]:
        return client.query("SELECT name, checksum FROM schema_migrations ORDER BY name").result_rows

    assert schema(store) == schema(migrated)
    assert len(schema(store)) > 20
    assert ledger(store) == ledger(migrated) and len(ledger(store)) == len(schema_files())
    assert apply_migrations(client_runner(store)) == []


def test_an_applied_file_that_was_edited_is_refused_by_name(empty_store: ChdbClient, tmp_path: Path) -> None:
    files = copy_schemas(tmp_path)
    run = client_runner(empty_store)
    apply_migrations(run, files=files)
    files[3].write_text(files[3].read_text() + "\n-- tweak\n")
    with pytest.raises(MigrationError, match=re.escape(files[3].name) + ".*edited after it was applied"):
        apply_migrations(run, files=files)


def test_a_new_file_is_applied_alone_after_the_others(empty_store: ChdbClient, tmp_path: Path) -> None:
    files = copy_schemas(tmp_path)
    run = client_runner(empty_store)
    apply_migrations(run, files=files)
    extra = tmp_path / "schemas" / "999_extra_table.sql"
    extra.write_text(
        "CREATE TABLE IF NOT EXISTS extra_table {on_cluster} (a UInt8) ENGINE = {replicated}MergeTree ORDER BY a;"
    )
    assert apply_migrations(run, files=[*files, extra]) == ["999_extra_table.sql"]
    assert empty_store.query("EXISTS TABLE extra_table").result_rows == [(1,)]


def test_a_failing_statement_names_its_file_and_is_not_recorded(empty_store: ChdbClient, tmp_path: Path) -> None:
    files = copy_schemas(tmp_path)
    broken = tmp_path / "schemas" / "999_broken.sql"
    broken.write_text("SELECT 1;\nCREATE TABLE nope (a UnknownType) ENGINE = Memory;")
    run = client_runner(empty_store)
    with pytest.raises(MigrationError, match=re.escape("999_broken.sql, statement 2 failed")):
        apply_migrations(run, files=[*files, broken])
    recorded = empty_store.query("SELECT count() FROM schema_migrations WHERE name = '999_broken.sql'")
    assert recorded.result_rows == [(0,)]


def test_cluster_rendering_puts_on_cluster_and_replicated_engines_in_every_statement() -> None:
    for path in schema_files():
        for statement in split_statements(render(path.read_text(), cluster="prod_cluster")):
            if statement.startswith("INSERT INTO"):  # a one-time backfill runs once, through the Distributed names
                continue
            assert "ON CLUSTER `prod_cluster`" in statement, f"{path.name}: {statement[:60]}"
            engine = re.search(r"ENGINE\s*=\s*(\w+)", statement)
            assert engine is None or engine.group(1).startswith("Replicated") or engine.group(1) == "Distributed", (
                f"{path.name}: {engine}"
            )


def test_default_rendering_is_the_file_text_filled_in_comments_and_all() -> None:
    """Single-node and chDB renderings stay what they were before the cluster layer existed."""
    for path in schema_files():
        text = path.read_text()
        expected = (
            text.replace("{on_cluster}", "").replace("{replicated}", "")
            .replace("{ttl_days}", "30").replace("{rollup_ttl_days}", "400")
        )  # fmt: skip
        assert render(text) == expected, path.name


def test_cluster_set_ttl_alters_the_shards_local_tables() -> None:
    statements: list[str] = []
    altered = set_ttl(statements.append, ttl_days=5, rollup_ttl_days=60, cluster="c")
    assert altered and all(name.endswith("_local") for name in altered)
    assert all(" ON CLUSTER `c` MODIFY TTL " in s for s in statements)


def test_default_rendering_has_no_cluster_and_plain_engines() -> None:
    for path in schema_files():
        text = render(path.read_text())
        assert "ON CLUSTER" not in text and "Replicated" not in text, path.name


def test_rendering_leaves_no_template_placeholder_behind() -> None:
    for path in schema_files():
        text = render(path.read_text(), cluster="c", ttl_days=3, rollup_ttl_days=9)
        assert not re.search(r"\{(on_cluster|replicated|ttl_days|rollup_ttl_days)\}", text), path.name


def test_rendering_keeps_clickhouse_query_parameters() -> None:
    assert render("SELECT {x:UInt8} {on_cluster}", cluster="c") == "SELECT {x:UInt8} ON CLUSTER `c`"


@pytest.mark.parametrize(
    "bad",
    [{"ttl_days": 0}, {"rollup_ttl_days": -1}, {"cluster": "a b"}, {"cluster": "x`;DROP"},
     {"cluster": "c", "database": "d';DROP"}],
)  # fmt: skip
def test_invalid_parameters_are_refused_with_a_clear_error(bad: dict[str, object]) -> None:
    with pytest.raises(MigrationError):
        render("{on_cluster}", **bad)  # type: ignore[arg-type]


def test_ttl_days_reach_the_raw_tables_and_rollup_days_the_rollups(empty_store: ChdbClient) -> None:
    apply_migrations(client_runner(empty_store), ttl_days=7, rollup_ttl_days=90)
    engines = dict(
        empty_store.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows
    )
    for table in ("otel_traces", "otel_traces_trace_id_ts", "llm_calls"):
        assert "toIntervalDay(7)" in engines[table], table
    for table in ("llm_calls_1m", "llm_calls_1h", "llm_latency_1h", "llm_users_1h", "llm_speed_1h", "llm_anomaly_5m",
                  "llm_storm_5m", "llm_scores"):  # fmt: skip
        assert "toIntervalDay(90)" in engines[table], table


def test_raw_tables_drop_whole_parts_on_ttl(empty_store: ChdbClient) -> None:
    apply_migrations(client_runner(empty_store))
    engines = dict(
        empty_store.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows
    )
    assert "ttl_only_drop_parts = 1" in engines["otel_traces"]
    assert "PARTITION BY toDate(Timestamp)" in engines["otel_traces"]


def test_checksums_cover_the_file_text_not_the_rendering(empty_store: ChdbClient) -> None:
    run = client_runner(empty_store)
    apply_migrations(run, ttl_days=30)
    assert apply_migrations(run, ttl_days=5, cluster=None) == []


def test_split_statements_ignores_semicolons_in_strings_and_comments() -> None:
    text = "-- a; comment\nSELECT 'a;b', `c;d`;\n\nSELECT 2; -- trailing; note\n"
    assert split_statements(text) == ["SELECT 'a;b', `c;d`", "SELECT 2"]


def test_set_ttl_changes_the_retention_of_existing_tables(empty_store: ChdbClient) -> None:
    run = client_runner(empty_store)
    apply_migrations(run, ttl_days=30, rollup_ttl_days=400)
    altered = set_ttl(run, ttl_days=5, rollup_ttl_days=60)
    engines = dict(
        empty_store.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows
    )
    assert set(altered) == {"otel_traces", "otel_traces_trace_id_ts", "otel_traces_content", "llm_calls", "llm_traces",
                            "llm_calls_1m", "llm_calls_1h", "llm_latency_1h", "llm_users_1h", "llm_speed_1h",
                            "llm_anomaly_5m", "llm_storm_5m", "llm_scores"}  # fmt: skip
    for table in ("otel_traces", "otel_traces_trace_id_ts", "otel_traces_content", "llm_calls", "llm_traces"):
        assert "toIntervalDay(5)" in engines[table], table
    for table in ("llm_calls_1m", "llm_calls_1h", "llm_scores"):
        assert "toIntervalDay(60)" in engines[table], table


def test_set_ttl_refuses_a_bad_number_of_days(empty_store: ChdbClient) -> None:
    with pytest.raises(MigrationError, match="whole number of days"):
        set_ttl(client_runner(empty_store), ttl_days=0)


class _RecordingClient:
    """Stands in for a ClickHouse server: records DDL, answers the ledger query with nothing."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def command(self, sql: str) -> None:
        self.log.append(sql)

    def query(self, sql: str) -> object:
        self.log.append(sql)
        return type("Result", (), {"result_rows": []})()

    def close(self) -> None:
        pass


def test_migrate_cluster_points_distributed_tables_at_the_urls_database(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from llmtrace.store import client as client_module
    from llmtrace.store import commands

    log: list[str] = []
    monkeypatch.setattr(client_module, "connect", lambda *a, **k: _RecordingClient(log))
    args = argparse.Namespace(url="http://ch:8123/llm", cluster="prod", ttl_days=None, rollup_ttl_days=None,
                              prices_file=None, no_prices=True)  # fmt: skip
    assert commands.migrate(args) == 0
    assert log[0] == "CREATE DATABASE IF NOT EXISTS `llm` ON CLUSTER `prod`"
    distributed = [s for s in log if "ENGINE = Distributed(" in s]
    assert len(distributed) == len(SHARDING_KEYS) and all("Distributed('prod', 'llm', '" in s for s in distributed)
    assert not any(s.startswith("ALTER") and "TTL" in s for s in log), "no TTL change unless asked"

"""The SQL console is read-only because the server enforces readonly=1 (real chDB)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmtrace.analytics import sql_console
from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import apply_migrations, client_runner


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('console')}")
    apply_migrations(client_runner(client))
    sql, params = scenarios.history_sql(500, 3, time.time_ns())
    client.command(sql, parameters=params)
    yield client
    client.close()


def test_a_select_returns_its_rows(store: Any) -> None:
    assert sql_console.run(store, "SELECT count() AS n FROM llm_calls;")["n"].iloc[0] == 500


@pytest.mark.parametrize(
    "statement",
    ["DROP TABLE llm_calls", "TRUNCATE TABLE llm_calls", "CREATE TABLE x (a Int8) ENGINE = Memory"],
)
def test_writes_are_refused_by_the_server(store: Any, statement: str) -> None:
    with pytest.raises(Exception, match="readonly"):
        sql_console.run(store, statement)
    assert sql_console.run(store, "SELECT count() AS n FROM llm_calls")["n"].iloc[0] == 500


def test_results_stop_at_the_row_limit(store: Any) -> None:
    assert len(sql_console.run(store, "SELECT number FROM system.numbers LIMIT 100000", max_rows=1000)) == 1000


def test_an_empty_query_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="type a SELECT"):
        sql_console.run(None, " ;\n")


@pytest.mark.parametrize("name", list(sql_console.EXAMPLES))
def test_every_example_runs(store: Any, name: str) -> None:
    result = sql_console.run(store, sql_console.EXAMPLES[name])
    assert list(result.columns)


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE llm_calls --",
        "DROP TABLE llm_calls /*",
        "SELECT 1; DROP TABLE llm_calls",
        "TRUNCATE TABLE llm_calls -- SETTINGS readonly=0",
        "KILL QUERY WHERE 1",
        "SYSTEM SHUTDOWN",
    ],
)
def test_comments_and_second_statements_cannot_escape_read_only_mode(store: Any, statement: str) -> None:
    """On a chdb:// store no server stands between the console and the engine (issue #10)."""
    with pytest.raises(Exception, match=r"Code: (164|62|497)"):
        sql_console.run(store, statement)
    assert sql_console.run(store, "SELECT count() AS n FROM llm_calls")["n"].iloc[0] == 500


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT file('/etc/passwd')",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT $$'$$ AS a INTO OUTFILE 'console-outfile.txt'",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    ],
)
def test_the_console_cannot_read_or_write_host_files(store: Any, statement: str) -> None:
    with pytest.raises(Exception, match=r"Code: 497"):
        sql_console.run(store, statement)

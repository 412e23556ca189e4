"""The query port speaks ClickHouse's HTTP interface: clickhouse-connect and curl work unchanged."""

from __future__ import annotations

import datetime as dt
import gzip
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.server_process import ServerProcess, http, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("ch") / "data")
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture
def table(client: Any, request: pytest.FixtureRequest) -> str:
    name = f"t_{request.node.name[:40]}"
    client.command(f"DROP TABLE IF EXISTS {name}")
    client.command(
        f"CREATE TABLE {name} (id UInt64, label LowCardinality(String), tags Map(LowCardinality(String), String),"
        " at DateTime64(9), score Nullable(Float64)) ENGINE = MergeTree ORDER BY id"
    )
    return name


def get(server: ServerProcess, query: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    return http("GET", f"{server.http_url}/?{urllib.parse.urlencode({'query': query, **params})}")


def test_client_handshake_reports_the_embedded_clickhouse_version_and_timezone(client: Any) -> None:
    assert client.server_version.startswith("26.")
    assert client.command("SELECT timezone()") == "Etc/UTC"


def test_query_binds_typed_parameters(client: Any) -> None:
    result = client.query("SELECT {n:UInt32} + 1 AS n, {s:String} AS s", parameters={"n": 41, "s": "it's\ta tab"})
    assert result.result_rows == [(42, "it's\ta tab")]


def test_query_binds_client_side_parameters(client: Any) -> None:
    assert client.query("SELECT %(v)s AS v", parameters={"v": "O'Brien"}).result_rows == [("O'Brien",)]


def test_inserted_rows_read_back_with_their_types(client: Any, table: str) -> None:
    rows = [
        [1, "a", {"k": "v"}, dt.datetime(2024, 1, 2, 3, 4, 5, 123456), 1.5],
        [2, "b", {}, dt.datetime(2024, 1, 3), None],
    ]
    client.insert(table, rows, column_names=["id", "label", "tags", "at", "score"])
    assert client.query(f"SELECT * FROM {table} ORDER BY id").result_rows == [tuple(r) for r in rows]


def test_dataframes_insert_and_query_round_trip(client: Any, table: str) -> None:
    frame = pd.DataFrame(
        {"id": [7, 8], "label": ["x", "y"], "tags": [{"a": "1"}, {}],
         "at": pd.to_datetime(["2024-02-02", "2024-03-03"]), "score": [0.25, None]}
    )  # fmt: skip
    client.insert_df(table, frame)
    back = client.query_df(f"SELECT id, label, tags, score FROM {table} ORDER BY id")
    assert back["id"].tolist() == [7, 8]
    assert back["label"].tolist() == ["x", "y"]
    assert back["tags"].tolist() == [{"a": "1"}, {}]
    assert back["score"].iloc[0] == 0.25 and pd.isna(back["score"].iloc[1])


def test_a_large_compressed_insert_arrives_whole(client: Any, table: str) -> None:
    frame = pd.DataFrame({"id": range(300_000), "label": "z", "tags": [{}] * 300_000, "at": pd.Timestamp("2024-01-01"),
                          "score": 1.0})  # fmt: skip
    client.insert_df(table, frame)  # several lz4 frames in one body
    assert client.command(f"SELECT count() FROM {table}") == 300_000


def test_query_arrow_returns_a_table(client: Any) -> None:
    table = client.query_arrow("SELECT number AS n FROM numbers(3)")
    assert table.column("n").to_pylist() == [0, 1, 2]


def test_command_returns_values_for_selects_and_a_summary_for_ddl(client: Any) -> None:
    assert client.command("SELECT 1, 'two'") == ["1", "two"]
    summary = client.command("CREATE TABLE IF NOT EXISTS cmd_probe (a UInt8) ENGINE = Memory")
    assert summary.query_id


def test_bad_sql_raises_database_error_with_the_clickhouse_message(client: Any) -> None:
    with pytest.raises(DatabaseError, match=r"Code: 62\. DB::Exception: Syntax error"):
        client.query("SELEC 1")


def test_settings_set_in_a_session_apply_to_later_requests(server: ServerProcess) -> None:
    session = server.client(session_id="settings-session")
    session.command("SET max_threads = 1")
    assert session.command("SELECT getSetting('max_threads')") == 1
    assert server.client().command("SELECT getSetting('max_threads')") != 1


def test_readonly_setting_refuses_writes_with_code_164(server: ServerProcess, table: str) -> None:
    readonly = server.client(settings={"readonly": 1})
    assert readonly.command(f"SELECT count() FROM {table}") == 0
    with pytest.raises(DatabaseError, match=r"Code: 164.*readonly"):
        readonly.command(f"INSERT INTO {table} (id) VALUES (1)")


def test_readonly_mode_refuses_reading_server_files(server: ServerProcess) -> None:
    with pytest.raises(DatabaseError, match=r"Code: 497"):
        server.client(settings={"readonly": 1}).query("SELECT * FROM file('/etc/hostname', 'LineAsString')")


def test_into_outfile_is_refused(client: Any, tmp_path: Path) -> None:
    target = tmp_path / "leak.txt"
    with pytest.raises(DatabaseError, match=r"INTO OUTFILE is not allowed"):
        client.command(f"SELECT 1 INTO OUTFILE '{target}'")
    assert not target.exists()


def test_get_with_query_answers_tab_separated_text(server: ServerProcess) -> None:
    status, headers, body = get(server, "SELECT 1, 'a'")
    assert (status, body) == (200, b"1\ta\n")
    assert headers["x-clickhouse-format"] == "TabSeparated"
    assert headers["x-clickhouse-query-id"] and headers["x-clickhouse-timezone"] == "Etc/UTC"


def test_post_body_query_answers_in_its_format_clause(server: ServerProcess) -> None:
    status, headers, body = http("POST", f"{server.http_url}/", b"SELECT 2 AS two FORMAT JSONEachRow")
    assert (status, body) == (200, b'{"two":2}\n')
    assert headers["x-clickhouse-format"] == "JSONEachRow"


def test_url_parameters_bind_typed_placeholders(server: ServerProcess) -> None:
    assert get(server, "SELECT {n:UInt8} * 2, {s:String}", param_n="21", param_s="a\\tb")[2] == b"42\ta\\tb\n"


def test_default_format_parameter_picks_the_output_format(server: ServerProcess) -> None:
    assert get(server, "SELECT 3 AS x", default_format="CSVWithNames")[2] == b'"x"\n3\n'


def test_get_requests_are_read_only(server: ServerProcess) -> None:
    status, headers, body = get(server, "CREATE TABLE get_probe (a UInt8) ENGINE = Memory")
    assert status == 500 and headers["x-clickhouse-exception-code"] == "164", body


def test_syntax_errors_are_400_with_the_exception_code_header(server: ServerProcess) -> None:
    status, headers, body = get(server, "SELEC 1")
    assert status == 400 and headers["x-clickhouse-exception-code"] == "62"
    assert body.startswith(b"Code: 62. DB::Exception: Syntax error") and b"(version 26." in body


def test_unknown_tables_are_404(server: ServerProcess) -> None:
    status, headers, _ = get(server, "SELECT * FROM no_such_table")
    assert status == 404 and headers["x-clickhouse-exception-code"] == "60"


def test_insert_with_the_format_in_the_url_takes_data_from_the_body(server: ServerProcess, table: str) -> None:
    query = urllib.parse.quote(f"INSERT INTO {table} (id, label) FORMAT TabSeparated")
    status, headers, _ = http("POST", f"{server.http_url}/?query={query}", b"1\tone\n2\ttwo\n")
    assert status == 200 and "x-clickhouse-format" not in headers
    assert get(server, f"SELECT id, label FROM {table} ORDER BY id")[2] == b"1\tone\n2\ttwo\n"


def test_gzip_request_bodies_are_inflated(server: ServerProcess, table: str) -> None:
    body = gzip.compress(f"INSERT INTO {table} (id, label) FORMAT CSV\n5,five\n".encode())
    status, _, reply = http("POST", f"{server.http_url}/", body, {"Content-Encoding": "gzip"})
    assert status == 200, reply
    assert get(server, f"SELECT label FROM {table}")[2] == b"five\n"


def test_responses_are_compressed_only_when_asked(server: ServerProcess) -> None:
    url = f"{server.http_url}/?query=SELECT+1&enable_http_compression=1"
    status, headers, body = http("GET", url, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(body) == b"1\n"
    assert "content-encoding" not in get(server, "SELECT 1")[1]


def test_health_endpoints_answer_ok(server: ServerProcess) -> None:
    for path in ("/ping", "/replicas_status", "/"):
        assert http("GET", f"{server.http_url}{path}")[:3:2] == (200, b"Ok.\n")


def test_unknown_paths_are_404(server: ServerProcess) -> None:
    status, _, body = http("GET", f"{server.http_url}/nope")
    assert status == 404 and b"There is no handle /nope" in body


def test_no_system_log_tables_exist_to_fill_the_disk(client: Any) -> None:
    # query_log, trace_log, ... would be MergeTree tables; chDB's system tables are all virtual.
    stored = client.query(
        "SELECT name FROM system.tables WHERE database = 'system' AND NOT startsWith(engine, 'System')"
    )
    assert stored.result_rows == []

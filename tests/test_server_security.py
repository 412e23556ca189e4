"""The attacks of issue #10, replayed against a real ``llmtrace server``: none may reach the host.

A canary file outside the data directory must never be read, no file may appear outside it,
and a local HTTP server standing in for any URL must receive nothing.
"""

from __future__ import annotations

import http.server as http_server
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, http, otlp_request, post_spans, start_server

CANARY_SECRET = "canary-7f3a9c-do-not-leak"
PASSWORD = "pw-for-security-tests"


class Trap:
    """A local HTTP server that records every request it gets (it must get none)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        trap = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"trapped\n")

            do_POST = do_PUT = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def host_area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    area = tmp_path_factory.mktemp("host")
    (area / "canary.txt").write_text(CANARY_SECRET + "\n")
    return area


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    server = Trap()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(host_area: Path) -> Iterator[ServerProcess]:
    process = start_server(host_area / "data")
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("protected") / "data", {"LLMTRACE_PASSWORD": PASSWORD})
    yield process
    assert process.stop() == 0, process.output


def query(server: ServerProcess, sql: str, method: str = "POST", headers: dict[str, str] | None = None,
          url_params: str = "") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    if method == "GET":
        return http("GET", f"{server.http_url}/?{url_params}query={urllib.parse.quote(sql)}", headers=headers)
    return http("POST", f"{server.http_url}/?{url_params}", sql.encode(), headers=headers)


def files_outside(area: Path) -> set[str]:
    """Files beside the data dir, but the canary and the test server's own log."""
    found = {str(p.relative_to(area)) for p in area.rglob("*") if not p.is_relative_to(area / "data")}
    return {name for name in found if name != "canary.txt" and not name.startswith("data-server-")}


def assert_nothing_reached_the_host(server: ServerProcess, area: Path, trap: Trap, body: bytes) -> None:
    assert CANARY_SECRET.encode() not in body
    assert b"root:" not in body
    assert files_outside(area) == set()
    assert trap.hits == []
    assert http("GET", f"{server.http_url}/ping")[2] == b"Ok.\n"


READS = [
    "SELECT * FROM file('{canary}', 'LineAsString')",
    "SELECT file('{canary}')",
    "SELECT `file`('{canary}')",
    "SELECT FILE('{canary}')",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT file('/proc/self/environ')",
    "SELECT count() FROM `{canary}`",
    "SELECT * FROM llmtrace_scratch.`{canary}`",
    "SELECT * FROM filesystem('{area}')",
    "DESCRIBE TABLE file('{canary}')",
    "SELECT (SELECT file('{canary}'))",
    "WITH (SELECT file('{canary}')) AS x SELECT x",
    "SELECT * FROM executable('cat {canary}', 'LineAsString', 'a String')",
    "SELECT * FROM python('os')",
]
WRITES = [
    "INSERT INTO FUNCTION file('{area}/written.txt', 'LineAsString') SELECT 'pwned'",
    "INSERT INTO FUNCTION file('written.txt', 'LineAsString') SELECT 'pwned'",
    "SELECT 'pwned' INTO OUTFILE '{area}/outfile.txt'",
    "SELECT $$'$$ AS a INTO OUTFILE '{area}/dollar.txt'",
    "SELECT 1 INTO OUTFILE '{area}/stdout.txt' AND STDOUT",
    "CREATE TABLE f (a String) ENGINE = File(LineAsString, '{area}/engine.txt')",
    "CREATE TABLE d (a Int32) ENGINE = MergeTree ORDER BY a SETTINGS disk = disk(type = local, path = '{area}/disk/')",
    "BACKUP TABLE otel_traces TO File('{area}/backup')",
    "SELECT 1 FORMAT Template SETTINGS format_template_resultset = '{canary}'",
    "CREATE DICTIONARY dd (a UInt64) PRIMARY KEY a SOURCE(FILE(path '{canary}' format 'TSV')) LAYOUT(FLAT()) "
    "LIFETIME(0)",
    "CREATE VIEW v AS SELECT file('{canary}') AS a",
    "CREATE TABLE r (k UInt64, v String) ENGINE = EmbeddedRocksDB(0, '{area}/rocksdb') PRIMARY KEY k",
    "CREATE TABLE fl (line String) ENGINE = FileLog('{area}', 'LineAsString')",
    "CREATE DATABASE fsdb ENGINE = Filesystem('{area}')",
    "CREATE DATABASE sq ENGINE = SQLite('{area}/x.db')",
    "CREATE DATABASE bk ENGINE = Backup('b', File('{area}/backup'))",
]
NETWORK = [
    "SELECT * FROM url('http://127.0.0.1:{port}/url', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:{port}/bucket/key.csv', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1:{port}', system.one)",
    "SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "INSERT INTO FUNCTION url('http://127.0.0.1:{port}/post', 'LineAsString', 'a String') SELECT 'x'",
    "CREATE TABLE u (a String) ENGINE = URL('http://127.0.0.1:{port}/engine', LineAsString)",
    "CREATE TABLE k (a String) ENGINE = Kafka('127.0.0.1:{port}', 't', 'g', 'LineAsString')",
    "CREATE TABLE q (a String) ENGINE = S3Queue('http://127.0.0.1:{port}/bucket/*', 'LineAsString')",
    "CREATE DATABASE pg ENGINE = PostgreSQL('127.0.0.1:{port}', 'db', 'u', 'p')",
    "CREATE TABLE d (a Int32) ENGINE = Distributed('default', 'default', 'otel_traces')",
]


@pytest.mark.parametrize("template", READS + WRITES + NETWORK)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_no_statement_reaches_host_files_or_the_network(
    server: ServerProcess, host_area: Path, trap: Trap, template: str, method: str
) -> None:
    sql = template.format(canary=host_area / "canary.txt", area=host_area, port=trap.port)
    status, headers, body = query(server, sql, method)
    assert status >= 400, body
    assert headers["x-clickhouse-exception-code"] in {"497", "164", "48", "62", "36", "60", "452"}, body
    assert_nothing_reached_the_host(server, host_area, trap, body)


def test_the_engine_itself_refuses_sources_without_the_statement_check(host_area: Path, tmp_path: Path) -> None:
    """Access control is the engine's: on a raw engine handle (no llmtrace check) it still holds."""
    engine_dir, canary = str(tmp_path / "engine"), str(host_area / "canary.txt")
    script = f"""
from llmtrace.server.engine import Engine
engine = Engine({engine_dir!r})
with engine.handle() as conn:
    for sql in ["SELECT * FROM file({canary!r}, 'LineAsString')",
                "INSERT INTO FUNCTION file('raw.txt', 'LineAsString') SELECT 'x'",
                "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
                "SYSTEM SHUTDOWN"]:
        try:
            conn.query(sql, "TabSeparated")
            print("ALLOWED", sql)
        except Exception as exc:
            print("REFUSED", "ACCESS_DENIED" in str(exc))
engine.close()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == ["REFUSED True"] * 4, result.stdout
    assert not list(tmp_path.rglob("raw.txt"))


def test_kill_query_is_refused(server: ServerProcess) -> None:
    status, headers, body = query(server, "KILL QUERY WHERE 1")
    assert (status, headers["x-clickhouse-exception-code"]) == (403, "497"), body


def test_system_shutdown_leaves_the_server_running(server: ServerProcess) -> None:
    status, _, body = query(server, "SYSTEM SHUTDOWN")
    assert status == 403, body
    assert server.process.poll() is None
    assert query(server, "SELECT 1")[2] == b"1\n"


@pytest.mark.parametrize(
    ("sql", "code"),
    [("SELECT 1; SELECT 2", "62"), ("'; DROP TABLE otel_traces; --", "62"), ("\x00\x01\x02", "62")],
)
def test_malformed_or_several_statements_get_the_syntax_error(server: ServerProcess, sql: str, code: str) -> None:
    status, headers, body = query(server, sql)
    assert status == 400 and headers["x-clickhouse-exception-code"] == code, body
    assert b"Syntax error" in body or b"Unrecognized token" in body
    assert query(server, "EXISTS TABLE otel_traces")[2] == b"1\n"


def test_get_can_never_write(server: ServerProcess) -> None:
    for sql in ["CREATE TABLE get_write (a Int8) ENGINE = Memory", "INSERT INTO otel_traces (SpanName) VALUES ('x')"]:
        status, headers, body = query(server, sql, "GET", url_params="readonly=0&")
        assert status >= 400 and headers["x-clickhouse-exception-code"] == "164", body
    assert query(server, "EXISTS TABLE get_write")[2] == b"0\n"


def test_a_cross_site_form_post_is_refused(server: ServerProcess, host_area: Path) -> None:
    """What a web page can send without CORS: text/plain POST, with the browser's Origin."""
    sql = "CREATE TABLE csrf_probe (a Int8) ENGINE = Memory"
    headers = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    status, _, body = query(server, sql, headers=headers)
    assert status == 403 and b"Origin" in body
    assert query(server, "EXISTS TABLE csrf_probe")[2] == b"0\n"


def test_a_rebound_host_name_is_refused(server: ServerProcess) -> None:
    headers = {"Host": f"rebind.evil.example:{server.http_port}", "Content-Type": "text/plain"}
    status, _, body = query(server, "SELECT 1", headers=headers)
    assert status == 403 and b"Host" in body


def test_cross_site_fetch_metadata_is_refused(server: ServerProcess) -> None:
    status, _, _ = query(server, "SELECT 1", "GET", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403


def test_otlp_from_a_web_page_is_refused(server: ServerProcess) -> None:
    body = otlp_request(1, service="csrf").SerializeToString()
    status, _, _ = post_spans(server, body, headers={"Origin": "http://evil.example"})
    assert status == 403


def test_clients_naming_the_server_by_its_address_pass(server: ServerProcess) -> None:
    for host in (f"localhost:{server.http_port}", f"127.0.0.1:{server.http_port}"):
        assert query(server, "SELECT 1", headers={"Host": host})[0:3:2] == (200, b"1\n")


def test_an_authenticated_client_cannot_read_the_process_environment(protected: ServerProcess) -> None:
    auth = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}
    for sql in ["SELECT file('/proc/self/environ')", "SELECT * FROM file('/proc/self/environ', 'RawBLOB')"]:
        status, _, body = query(protected, sql, headers=auth)
        assert status == 403 and PASSWORD.encode() not in body, body
    assert query(protected, "SELECT 1", headers=auth)[0] == 200


def test_binding_beyond_loopback_without_a_password_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", "server", "--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0",
         "--otlp-port", "0", "--http-port", "0"],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in __import__("os").environ.items()
                                                         if k != "LLMTRACE_PASSWORD"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "LLMTRACE_PASSWORD" in result.stderr


def test_a_form_field_cannot_lift_the_url_readonly(server: ServerProcess) -> None:
    """``readonly`` given twice (URL and a multipart field): the stricter one holds."""
    field = b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
    create = b"CREATE TABLE form_ro (a Int8) ENGINE = Memory"
    form = field % (b"readonly", b"0") + field % (b"query", create) + b"--B--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    status, reply, body = http("POST", f"{server.http_url}/?readonly=1", form, headers=headers)
    assert (status, reply["x-clickhouse-exception-code"]) == (500, "164"), body
    assert query(server, "EXISTS TABLE form_ro")[2] == b"0\n"


def test_llmtrace_sql_over_chdb_is_read_only_and_stays_off_the_host(host_area: Path, tmp_path: Path) -> None:
    """``llmtrace sql --url chdb://`` without ``--write`` (``query`` with ``readonly``): no server
    between it and the engine, so the same checks must run in-process. Appending ``SETTINGS
    readonly = 1`` let a trailing comment or a second statement write, and chDB's local mode
    served ``file()`` and ``INTO OUTFILE``."""
    canary, store = host_area / "canary.txt", tmp_path / "store"
    statements = [
        "DROP TABLE victim --",
        "DROP TABLE victim #",
        "SELECT 1; DROP TABLE victim",
        f"SELECT file('{canary}')",
        f"SELECT $$'$$ AS a INTO OUTFILE '{tmp_path}/out.txt'",
        "KILL QUERY WHERE 1",
        "SET readonly = 0",
    ]
    script = f"""
import json
from llmtrace.store.client import connect
client = connect("chdb://{store}")
client.command("CREATE TABLE victim (a Int8) ENGINE = Memory")
for sql in {statements!r}:
    try:
        print(json.dumps(["ALLOWED", sql, str(client.query(sql, settings={{"readonly": 1}}).result_rows)]))
    except Exception as exc:
        print(json.dumps(["REFUSED", sql, str(exc)]))
print(json.dumps(["ROWS", str(client.query("SELECT count() FROM victim", settings={{"readonly": 1}}).result_rows)]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == ["REFUSED"] * len(statements) + ["ROWS"], result.stdout
    assert lines[-1] == ["ROWS", "[(0,)]"]  # the table is still there
    assert all(any(code in line[2] for code in ("Code: 164", "Code: 62", "Code: 497")) for line in lines[:-1])
    assert CANARY_SECRET not in result.stdout
    assert not (tmp_path / "out.txt").exists()


def test_no_client_can_lift_the_per_query_memory_cap(server: ServerProcess) -> None:
    """A read-only GET aggregating a huge ``numbers()`` would grow the process to the engine's own
    limit (90% of RAM); the profile caps a query and a constraint keeps clients from lifting it
    (0 means unlimited). Lowering stays possible."""
    cap = int(query(server, "SELECT getSetting('max_memory_usage')")[2])
    assert 0 < cap < 1 << 50
    for lift in ("0", str(cap * 2)):
        for method, sql, params in [("GET", "SELECT 1", f"max_memory_usage={lift}&"),
                                    ("POST", f"SELECT 1 SETTINGS max_memory_usage = {lift}", ""),
                                    ("POST", f"SET max_memory_usage = {lift}", "session_id=mem&")]:  # fmt: skip
            status, headers, body = query(server, sql, method, url_params=params)
            assert (status, headers.get("x-clickhouse-exception-code")) == (500, "452"), body
    status, headers, body = query(server, "SELECT groupArray(number) FROM numbers(1000000) FORMAT Null",
                                  url_params="max_memory_usage=1000000&")  # fmt: skip
    assert headers.get("x-clickhouse-exception-code") == "241", body  # the cap is the engine's


def test_the_dashboard_refuses_a_dns_rebound_page(server: ServerProcess, tmp_path: Path) -> None:
    """A real browser resolving the attacker's name to 127.0.0.1 (Chromium's host-resolver rule is
    DNS rebinding, minus the wait) loads the dashboard as that name: the app must not run there
    (its SQL console would read every span), while the bound address still gets it."""
    from tests import test_dashboard_browser as browser_tests
    from tests.server_process import free_ports

    browser_tests.require_chromium()
    wrapper = tmp_path / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec {browser_tests.CHROMIUM} "--host-resolver-rules=MAP rebind.evil.example '
                       f'127.0.0.1" "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    port = free_ports(1)[0]
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "llmtrace.cli", "dashboard", "--url", server.http_url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    patch = pytest.MonkeyPatch()
    patch.setattr(browser_tests, "CHROMIUM", str(wrapper))
    chrome = browser_tests.Chromium(tmp_path / "profile")
    try:
        rebound = chrome.load(f"http://rebind.evil.example:{port}/sql", "does not answer to the name", 90)
        assert "Examples" not in rebound and "SELECT" not in rebound
        assert "Examples" in chrome.load(f"http://127.0.0.1:{port}/sql", "Examples", 90)
    finally:
        chrome.close()
        patch.undo()
        dashboard.terminate()
        dashboard.wait(30)

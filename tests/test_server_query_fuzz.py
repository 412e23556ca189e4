"""Thousands of generated statements against the query port: none reads or writes outside the
data directory or reaches the network, whatever the quoting, comments, case or settings.

Each statement aims at a canary file (its secret must never come back), at a fresh file
name beside the data directory (it must never appear) or at a local HTTP trap (it must
receive nothing). The generator mixes the ways ClickHouse's grammar lets text hide intent.
"""

from __future__ import annotations

import http.client
import random
from pathlib import Path

from tests.server_process import ServerProcess
from tests.test_server_security import CANARY_SECRET, Trap, files_outside, host_area, server, trap

__all__ = ["host_area", "server", "trap"]  # the security tests' fixtures, one instance per module here

STATEMENTS = 2500
EXTERNAL = ["file", "url", "s3", "hdfs", "remote", "remoteSecure", "mysql", "postgresql", "jdbc", "odbc",
            "executable", "sqlite", "mongodb", "redis", "azureBlobStorage", "python", "filesystem", "gcs",
            "cluster", "urlCluster", "s3Cluster", "iceberg", "deltaLake", "hudi", "fileCluster"]  # fmt: skip
SETTINGS = ["readonly = 0", "readonly = 2", "allow_introspection_functions = 1", "format_schema = '{canary}'",
            "input_format_values_interpret_expressions = 1", "max_execution_time = 0", "allow_ddl = 1",
            "format_template_row = '{canary}'", "output_format_schema = '{area}/schema.capnp'"]  # fmt: skip


class Generator:
    def __init__(self, seed: int, area: Path, port: int) -> None:
        self.rnd = random.Random(seed)
        self.area, self.port = area, port
        self.n = 0

    def string(self, text: str) -> str:
        """One string literal in a randomly chosen ClickHouse quoting style."""
        style = self.rnd.randrange(5)
        if style == 0:
            return "'" + text.replace("'", "\\'") + "'"
        if style == 1:
            return "$$" + text + "$$"
        if style == 2:
            return "$tag$" + text + "$tag$"
        if style == 3:
            return "'" + text.replace("'", "''") + "'"
        return "'" + "".join(f"\\x{b:02x}" for b in text.encode()) + "'"

    def name(self, fn: str) -> str:
        return self.rnd.choice([fn, fn.upper(), f"`{fn}`", f'"{fn}"', fn.capitalize()])

    def gap(self) -> str:
        return self.rnd.choice([" ", "\n", " /* ü */ ", " /* /* nested */ */ ", " --x\n", " #c\n", "\t"])

    def target(self) -> tuple[str, str]:
        """(kind, argument): a read of the canary, a new file beside the data dir, or a trap URL."""
        self.n += 1
        kind = self.rnd.choice(["read", "write", "net"])
        if kind == "read":
            return kind, str(self.area / "canary.txt")
        if kind == "write":
            return kind, str(self.area / f"w{self.n}-ü.txt")
        return kind, f"http://127.0.0.1:{self.port}/f{self.n}/k.csv"

    def call(self) -> str:
        _, arg = self.target()
        fn = self.rnd.choice(EXTERNAL)
        extra = self.rnd.choice(["", ", 'LineAsString'", ", 'CSV', 'a String'", ", 'RawBLOB'"])
        return f"{self.name(fn)}({self.string(arg)}{extra})"

    def statement(self) -> str:
        g, rnd = self.gap, self.rnd
        _, arg = self.target()
        shapes = [
            lambda: f"SELECT *{g()}FROM{g()}{self.call()}",
            lambda: f"SELECT {self.name('file')}({self.string(arg)})",
            lambda: f"SELECT length({self.name('file')}({self.string(arg)})) AS n",
            lambda: f"SELECT arrayMap(x -> {self.name('file')}(x), [{self.string(arg)}])",
            lambda: f"WITH ({g()}SELECT {self.name('file')}({self.string(arg)})) AS x SELECT x",
            lambda: f"SELECT * FROM (SELECT * FROM {self.call()}) LIMIT 1",
            lambda: f"INSERT INTO FUNCTION {self.call()} SELECT 'pwned'",
            lambda: f"SELECT 'pwned'{g()}INTO{g()}OUTFILE{g()}{self.string(arg)}",
            lambda: f"select 'x' into outfile {self.string(arg)} TRUNCATE",
            lambda: f"SELECT {self.string('$$')} AS a INTO OUTFILE {self.string(arg)}",
            lambda: f"INSERT INTO otel_traces (SpanName){g()}FROM INFILE {self.string(arg)} FORMAT LineAsString",
            lambda: f"INSERT INTO otel_traces (SpanName) VALUES ({self.name('file')}({self.string(arg)}))",
            lambda: f"CREATE VIEW v{self.n} AS SELECT {self.name('file')}({self.string(arg)}) AS a",
            lambda: f"CREATE TABLE t{self.n} (a String) ENGINE = File(LineAsString, {self.string(arg)})",
            lambda: f"CREATE TABLE t{self.n} (a String) ENGINE = URL({self.string(arg)}, LineAsString)",
            lambda: f"SELECT 1; INSERT INTO FUNCTION {self.call()} SELECT 'x'",
            lambda: f"SELECT 1 SETTINGS {rnd.choice(SETTINGS)}".replace(
                "{canary}", str(self.area / "canary.txt")
            ).replace("{area}", str(self.area)),
            lambda: f"SET {rnd.choice(SETTINGS)}".replace("{canary}", str(self.area / "canary.txt")).replace(
                "{area}", str(self.area)
            ),
            lambda: f"KILL{g()}QUERY WHERE 1",
            lambda: f"SYSTEM{g()}{rnd.choice(['SHUTDOWN', 'FLUSH LOGS', 'RELOAD CONFIG', 'DROP DNS CACHE'])}",
            lambda: f"DESCRIBE TABLE {self.call()}",
            lambda: f"SELECT count() FROM `{arg}`",
            lambda: f"EXPLAIN SELECT * FROM {self.call()}",
        ]
        return rnd.choice(shapes)()


def send(conn: http.client.HTTPConnection, sql: str, method: str) -> tuple[int, bytes]:
    if method == "GET":
        from urllib.parse import quote

        conn.request("GET", "/?query=" + quote(sql))
    else:
        conn.request("POST", "/", body=sql.encode())
    response = conn.getresponse()
    return response.status, response.read()


def test_no_generated_statement_reaches_the_host(server: ServerProcess, host_area: Path, trap: Trap) -> None:
    generator = Generator(20261204, host_area, trap.port)
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
    leaks, successes = [], 0
    for i in range(STATEMENTS):
        sql = generator.statement()
        status, body = send(conn, sql, "GET" if i % 3 == 0 else "POST")
        if CANARY_SECRET.encode() in body:
            leaks.append(sql)
        successes += status == 200
    conn.close()
    assert leaks == []
    assert files_outside(host_area) == set()
    assert trap.hits == []
    # The only statements that may succeed are harmless settings changes and SELECT 1's.
    assert successes < STATEMENTS * 0.2
    assert send(http.client.HTTPConnection("127.0.0.1", server.http_port), "SELECT 42", "POST") == (200, b"42\n")

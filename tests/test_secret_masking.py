"""Store passwords are never printed: CLI output and errors, ``llmtrace dashboard``, the dashboard's pages, logs.

The CLI runs as a real subprocess with the password in the URL and in ``LLMTRACE_CLICKHOUSE_PASSWORD``,
against a port nothing listens on and against a real password-protected ``llmtrace server``; the
dashboard runs under Streamlit's AppTest. Every test greps all the output for the secrets.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common
from llmtrace.store.settings import StoreSettings, mask_url
from tests.server_process import ServerProcess, free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "streamlit_app.py")
URL_SECRET = "urlpw-Q7xv2"
ENV_SECRET = "envpw-K4mz9"
QUERY_SECRET = "qpw-R3nb8"
SERVER_SECRET = "srvpw-H6cd1"
SECRETS = (URL_SECRET, ENV_SECRET, QUERY_SECRET, SERVER_SECRET)


def assert_no_secret(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{leaked} printed in:\n{text}"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m llmtrace.cli`` with the password also in the environment (``env`` adds to it)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTRACE_", "PYTEST"))}
    environment.update({"PYTHONPATH": str(ROOT), "LLMTRACE_CLICKHOUSE_PASSWORD": ENV_SECRET, **(env or {})})
    command = [sys.executable, "-m", "llmtrace.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- the helper
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"http://bob:{URL_SECRET}@db.example:8123/llm", "http://bob:***@db.example:8123/llm"),
        (f"https://db.example/?password={QUERY_SECRET}&database=llm", "https://db.example/?password=***&database=llm"),
        (f"http://db.example:8123/?token={QUERY_SECRET}#{QUERY_SECRET}", "http://db.example:8123/?token=***#***"),
        (f"chdb://bob:{URL_SECRET}@/data", "chdb://bob:***@/data"),
        ("chdb:///var/lib/llmtrace?database=empty", "chdb:///var/lib/llmtrace?database=empty"),
        (f"http://[::1:{URL_SECRET}@x", "http://***"),  # too malformed to split: only the scheme is kept
    ],
)
def test_mask_url_hides_the_password_and_query_secrets_and_keeps_where_it_points(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_webhook_url_is_masked_down_to_its_host_because_its_path_is_the_token() -> None:
    slack = "https://hooks.slack.com/services/T0AAAA/B0BBBB/" + URL_SECRET
    assert mask_url(slack, secret_path=True) == "https://hooks.slack.com/***"
    assert mask_url(f"https://u:{URL_SECRET}@h:8443/hook?token={QUERY_SECRET}", secret_path=True) == (
        "https://u:***@h:8443/***?token=***"
    )


def test_the_printable_url_of_settings_never_has_the_password() -> None:
    env = {"LLMTRACE_CLICKHOUSE_PASSWORD": ENV_SECRET}
    assert_no_secret(StoreSettings.resolve(f"http://bob:{URL_SECRET}@h:1/db", env=env).url)
    assert_no_secret(StoreSettings.resolve("http://h:1/db", env=env).url)
    assert_no_secret(StoreSettings.resolve(f"chdb://bob:{URL_SECRET}@/data", env=env).url)


# --------------------------------------------------------------------------- CLI
STORE_COMMANDS = [
    ["sql", "SELECT 1"],
    ["sql", "--write", "SELECT 1"],
    ["migrate"],
    ["drift"],
    ["anomalies"],
    ["watch", "--once", "--no-drift"],
]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_store_commands_name_an_unreachable_store_without_its_password(command: list[str], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://bob:{URL_SECRET}@127.0.0.1:{port}/llm?password={QUERY_SECRET}"
    state = ["--state", str(tmp_path / "state.json")] if command[0] == "watch" else []
    done = cli(*command, "--url", url, *state)
    assert done.returncode == 1
    assert f"127.0.0.1:{port}" in done.stderr  # still says where
    assert_no_secret(done.stdout + done.stderr)


@pytest.mark.parametrize("scheme", ["ftp", "http"])
def test_a_bad_store_url_is_refused_without_printing_its_password(scheme: str) -> None:
    done = cli("sql", "SELECT 1", "--url", f"{scheme}://bob:{URL_SECRET}@127.0.0.1:99999999/db")
    assert done.returncode == 1
    assert "127.0.0.1" in done.stderr or "port" in done.stderr.lower()
    assert_no_secret(done.stdout + done.stderr)


@pytest.fixture(scope="module")
def protected_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("masking") / "data", {"LLMTRACE_PASSWORD": SERVER_SECRET})
    yield server
    server.stop()


def test_a_wrong_password_is_reported_without_either_password(protected_server: ServerProcess) -> None:
    url = f"http://default:{URL_SECRET}@127.0.0.1:{protected_server.http_port}/default"
    done = cli("sql", "SELECT 1", "--url", url)
    assert done.returncode == 1
    assert "LLMTRACE_CLICKHOUSE_PASSWORD" in done.stderr  # names the fix
    assert_no_secret(done.stdout + done.stderr)


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["migrate"], ["drift"]], ids=lambda c: c[0])
def test_commands_against_a_protected_server_never_print_the_password(
    protected_server: ServerProcess, command: list[str]
) -> None:
    in_url = cli(*command, "--url", f"http://default:{SERVER_SECRET}@127.0.0.1:{protected_server.http_port}/default")
    in_env = cli(*command, "--url", protected_server.http_url, env={"LLMTRACE_CLICKHOUSE_PASSWORD": SERVER_SECRET})
    for done in (in_url, in_env):
        assert "cannot use ClickHouse" not in done.stderr  # got in: the password was used, just not shown
        assert done.returncode == 0 or command[0] == "drift", done.stderr  # drift may find no calls to compare
        assert_no_secret(done.stdout + done.stderr)


def test_llmtrace_dashboard_prints_the_store_url_without_its_password() -> None:
    url = f"http://bob:{URL_SECRET}@127.0.0.1:{free_port()}/llm?password={QUERY_SECRET}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    environment.update({"PYTHONPATH": str(ROOT), "LLMTRACE_CLICKHOUSE_PASSWORD": ENV_SECRET})
    argv = [sys.executable, "-m", "llmtrace.cli", "dashboard", "--url", url, "--port", str(free_port())]
    process = subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed (and flushed) before Streamlit starts
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[0]
    assert "store: http://bob:***@127.0.0.1:" in first
    assert_no_secret(first + rest)


def test_llmtrace_demo_names_its_endpoint_without_the_password() -> None:
    endpoint = f"http://bob:{URL_SECRET}@127.0.0.1:{free_port()}/?token={QUERY_SECRET}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "LLMTRACE_", "OTEL_"))}
    argv = [sys.executable, "-m", "llmtrace.cli", "demo", "--endpoint", endpoint, "--calls", "1"]
    process = subprocess.Popen(argv, cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the description, printed before any call
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[1]
    assert "into http://bob:***@127.0.0.1:" in first
    assert_no_secret(first + rest)


# --------------------------------------------------------------------------- dashboard pages
def rendered(at: AppTest) -> str:
    """Everything the app drew, sidebar and main area, as the protobuf text Streamlit sends the browser."""

    def walk(node: Any) -> Iterator[str]:
        if getattr(node, "proto", None) is not None:
            yield str(node.proto)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return "\n".join([*walk(at.sidebar), *walk(at.main)])


def test_the_dashboard_names_an_unreachable_store_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv(common.URL_ENV, f"http://bob:{URL_SECRET}@127.0.0.1:{port}/llm?password={QUERY_SECRET}")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    text = rendered(at)
    assert f"bob:***@127.0.0.1:{port}" in text and "Cannot reach the llmtrace store" in text
    assert_no_secret(text)


def test_the_dashboard_sidebar_shows_a_protected_store_without_its_password(
    protected_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://default:{SERVER_SECRET}@127.0.0.1:{protected_server.http_port}/default"
    monkeypatch.setenv(common.URL_ENV, url)
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception and not at.error
        sidebar = "\n".join(str(c.value) for c in at.sidebar.caption)
        assert f"Store: `http://default:***@127.0.0.1:{protected_server.http_port}/default`" in sidebar
        assert_no_secret(rendered(at))
    finally:
        common._client(url).close()
        common._client.clear()
        common._cached.clear()


# --------------------------------------------------------------------------- logs
def test_the_direct_exporter_logs_a_bad_store_url_without_its_password(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

    exporter = ClickHouseSpanExporter(f"ftp://bob:{URL_SECRET}@db.example/llm")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        provider.get_tracer("t").start_span("chat gpt-4o-mini").end()
    provider.shutdown()
    assert "cannot write spans to ClickHouse at 'ftp://bob:***@db.example/llm'" in caplog.text
    assert_no_secret(caplog.text)

"""``llmtrace up`` as a newcomer runs it: from a clone folder named ``llmtrace``, twice on one data
directory, and with a page that fails. Real child processes (server, Streamlit) on free ports.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrace.dashboard_check import render_page
from llmtrace.demo.scenarios import HISTORY_SCOPE
from llmtrace.store.client import connect
from tests.server_process import free_ports

ROOT = Path(__file__).resolve().parents[1]


class Up:
    """``python -m llmtrace.cli up ...`` run from ``checkout``, its output readable line by line."""

    def __init__(self, checkout: Path, data_dir: Path, *extra: str) -> None:
        self.otlp, self.http, self.dashboard = free_ports(3)
        argv = [sys.executable, "-m", "llmtrace.cli", "up", "--data-dir", str(data_dir),
                "--otlp-port", str(self.otlp), "--http-port", str(self.http),
                "--dashboard-port", str(self.dashboard), *extra]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTRACE_", "PYTEST"))}
        env["PYTHONPATH"] = str(checkout)
        self.process = subprocess.Popen(
            argv, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    @property
    def output(self) -> str:
        return "".join(self.seen)

    def wait_for(self, text: str, timeout_s: float = 180) -> bool:
        """True once a line contains ``text``; False if ``up`` exited first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
        pytest.fail(f"llmtrace up did not print {text!r} within {timeout_s:.0f} s:\n{self.output}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        while self.wait_for("\0", 5):
            pass  # drain what it printed while stopping
        return code


def clone(into: Path) -> Path:
    """What ``git clone …/llmtrace`` gives: the repository in a folder named ``llmtrace``."""
    checkout = into / "llmtrace"
    for part in ("llmtrace", "dashboard", "schemas"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", checkout)
    return checkout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return clone(tmp_path / "src")


@pytest.fixture
def up(checkout: Path, tmp_path: Path) -> Iterator[Up]:
    stack = Up(checkout, tmp_path / "data")
    yield stack
    stack.stop()


def demo_calls(http_port: int) -> int:
    """LLM calls of the bulk-loaded demo history (live traffic keeps adding others)."""
    client = connect(f"http://127.0.0.1:{http_port}")
    try:
        sql = "SELECT count() FROM otel_traces WHERE ScopeName = {scope:String}"
        return int(client.query(sql, parameters={"scope": HISTORY_SCOPE}).result_rows[0][0])
    finally:
        client.close()


def test_the_dashboard_of_a_clone_folder_named_llmtrace_renders_its_pages(up: Up) -> None:
    assert up.wait_for("llmtrace is up"), up.output
    for page in ("", "sql"):
        run = render_page(f"http://127.0.0.1:{up.dashboard}", page)
        assert run.problem is None, run.problem


def test_up_does_not_say_up_when_a_page_fails_and_names_the_error_and_the_log(checkout: Path, tmp_path: Path) -> None:
    (checkout / "dashboard" / "sidebar.py").write_text('raise RuntimeError("the sidebar is broken")\n')
    stack = Up(checkout, tmp_path / "data")
    try:
        code = stack.process.wait(180)
    finally:
        stack.stop()
    log = tmp_path / "data" / "dashboard.log"
    assert code == 1
    assert "llmtrace is up" not in stack.output
    assert "the sidebar is broken" in stack.output and str(log) in stack.output
    assert log.is_file()


def test_up_demo_twice_on_one_data_dir_loads_the_demo_once_and_prints_the_dashboard_url(
    checkout: Path, tmp_path: Path
) -> None:
    first = Up(checkout, tmp_path / "data", "--demo", "--demo-calls", "40")
    try:
        assert first.wait_for("Loaded a week of demo history (40 LLM calls)"), first.output
        assert first.wait_for("Demo data loaded"), first.output
        assert f"open http://127.0.0.1:{first.dashboard}" in first.seen[-1]
        live = "live demo traffic: 1 requests"  # the background player's first progress line, in any order
        assert any(live in line for line in first.seen) or first.wait_for(live), first.output
        loaded = demo_calls(first.http)
    finally:
        first.stop()
    assert "llmtrace dashboard)" not in first.output  # the old "open the dashboard (llmtrace dashboard)"
    second = Up(checkout, tmp_path / "data", "--demo", "--demo-calls", "40")
    try:
        assert second.wait_for("not loading it again"), second.output
        assert second.wait_for(f"Open http://127.0.0.1:{second.dashboard}", 10), second.output
        assert demo_calls(second.http) == loaded == 40
    finally:
        second.stop()


def test_demo_force_loads_another_copy_and_without_it_the_demo_is_skipped(tmp_path: Path) -> None:
    from llmtrace.demo.command import load_for_up
    from tests.server_process import ServerProcess

    server = ServerProcess(tmp_path / "data").wait_ready()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        assert load_for_up(server.otlp_url, server.http_url, "http://dash", 20, False, env, live=False)
        assert demo_calls(server.http_port) == 20
        assert not load_for_up(server.otlp_url, server.http_url, "http://dash", 20, False, env, live=False)
        assert demo_calls(server.http_port) == 20
        assert load_for_up(server.otlp_url, server.http_url, "http://dash", 20, True, env, live=False)
        assert demo_calls(server.http_port) == 40
    finally:
        server.stop()

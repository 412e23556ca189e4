"""``llmtrace dashboard`` and ``llmtrace up``: the shipped app, port checks, a served dashboard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llmtrace import dashboard_command
from tests.server_process import free_port

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_app_is_the_streamlit_script_of_the_installed_dashboard_package() -> None:
    import dashboard

    path = dashboard_command.app_path()
    assert path.name == "streamlit_app.py"
    assert path.parent == Path(dashboard.__file__).resolve().parent


def test_the_dashboard_runs_headless_on_the_chosen_port() -> None:
    argv = dashboard_command.dashboard_argv(8765)
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert argv[argv.index("--server.port") + 1] == "8765"


def test_up_refuses_a_port_in_use_and_names_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(
            "up", "--otlp-port", str(port), "--http-port", str(free_port()), "--dashboard-port", str(free_port())
        )
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "--otlp-port" in done.stderr


def test_dashboard_serves_the_app_until_stopped() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "llmtrace.cli", "dashboard", "--url", "http://127.0.0.1:9", "--port", str(port)]
    process = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        health = None
        while health != "ok" and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    health = response.read().decode()
            except OSError:
                time.sleep(0.2)
        assert health == "ok"
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "store: http://127.0.0.1:9" in output

"""How long ``llmtrace up --demo`` takes from start to the first rendered Overview with data.

Starts ``llmtrace up --demo`` on a fresh data directory and free ports, prints its output with
the time since start, and renders the Overview in a real Streamlit session (as ``up``'s own page
check does) as soon as the store holds calls, until one render finishes without a problem.

    python benchmarks/up_demo.py
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dashboard import free_ports  # noqa: E402
from llmtrace.dashboard_check import render_page  # noqa: E402
from llmtrace.store.client import connect  # noqa: E402

TIMEOUT_S = 240


def calls_stored(url: str) -> int:
    try:
        client = connect(url)
    except Exception:  # not up yet
        return 0
    try:
        return int(client.query("SELECT count() FROM llm_calls").result_rows[0][0])
    finally:
        client.close()


def streamlit_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as response:
            return bool(response.read() == b"ok")
    except OSError:
        return False


def main() -> int:
    otlp, http, dashboard = free_ports(3)
    data_dir = tempfile.mkdtemp(prefix="llmtrace-up-demo-")
    argv = [sys.executable, "-m", "llmtrace.cli", "up", "--demo", "--data-dir", data_dir, "--otlp-port", str(otlp),
            "--http-port", str(http), "--dashboard-port", str(dashboard)]  # fmt: skip
    started = time.monotonic()
    up = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(raw.decode(errors="replace").rstrip()) for raw in up.stdout or []],
                     daemon=True).start()  # fmt: skip
    seen: set[str] = set()

    def mark(event: str) -> None:  # the first time each start-up step is seen
        if event not in seen:
            seen.add(event)
            print(f"{time.monotonic() - started:6.1f} s  [{event}]", flush=True)

    try:
        while time.monotonic() - started < TIMEOUT_S:
            while not lines.empty():
                print(f"{time.monotonic() - started:6.1f} s  {lines.get()}", flush=True)
            if "Streamlit answers" not in seen and streamlit_healthy(dashboard):
                mark("Streamlit answers")
            calls = calls_stored(f"http://127.0.0.1:{http}")
            if calls:
                mark("first calls stored")
                try:
                    run = render_page(f"http://127.0.0.1:{dashboard}", "")
                except OSError:
                    continue  # Streamlit not listening yet
                if run.finished and run.problem is None:
                    print(f"first rendered Overview with data ({calls:,} calls): {time.monotonic() - started:.1f} s"
                          f"  (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
                    return 0
            time.sleep(0.2)  # polling the start-up
        print(f"no rendered Overview with data within {TIMEOUT_S} s")
        return 1
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(60)


if __name__ == "__main__":
    sys.exit(main())

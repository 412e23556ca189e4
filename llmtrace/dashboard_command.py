"""``llmtrace dashboard`` and ``llmtrace up``.

``dashboard`` runs the Streamlit app shipped in the wheel against a ClickHouse HTTP URL.
``up`` is the one-command local stack: ``llmtrace server`` and the dashboard as child
processes (optionally filled by ``llmtrace demo``), waits until both answer, prints where
they are, and stops both on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from llmtrace.store.settings import mask_url

__all__ = ["add_arguments", "app_path", "run"]

URL_ENV = "LLMTRACE_CLICKHOUSE_URL"
DEFAULT_URL = "http://127.0.0.1:8123"
DEFAULT_DATA_DIR = "~/.llmtrace/data"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class UpError(RuntimeError):
    """The local stack could not start; the message names the part and the fix."""


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "dashboard":
        parser.add_argument("--url", help=f"ClickHouse HTTP URL (default ${URL_ENV}, else {DEFAULT_URL})")
        parser.add_argument("--port", type=int, default=8501, help="port for the dashboard (default 8501)")
        parser.add_argument("--host", default=HOST, help="address to listen on (default 127.0.0.1)")
        return
    parser.add_argument("--demo", action="store_true", help="load a week of demo traffic once both are up")
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"server data directory (default {DEFAULT_DATA_DIR})"
    )
    parser.add_argument("--otlp-port", type=int, default=4318, help="OTLP/HTTP traces port (default 4318)")
    parser.add_argument("--http-port", type=int, default=8123, help="ClickHouse HTTP port (default 8123)")
    parser.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    parser.add_argument(
        "--demo-calls", type=int, default=30_000, help="LLM calls in the demo's week of history (default 30,000)"
    )
    parser.add_argument(
        "--demo-force", action="store_true", help="load the demo even if this data directory already has it"
    )


def app_path() -> Path:
    """``streamlit_app.py``: in the wheel ``llmtrace/_dashboard``, in a checkout ``<repo>/dashboard``."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (
        package_dir / "_dashboard" / "streamlit_app.py",
        package_dir.parent / "dashboard" / "streamlit_app.py",
    ):
        if candidate.is_file():
            return candidate
    raise UpError(
        "the llmtrace dashboard is not installed (no dashboard/streamlit_app.py found): "
        'pip install "llmtrace[dashboard]"'
    )


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment for child processes: ours plus ``extra``, with this llmtrace importable."""
    env = {**os.environ, **extra}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def dashboard_argv(port: int, host: str = HOST) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # an installed app does not change under us
        "--client.toolbarMode", "viewer",  # no "Deploy" button
    ]  # fmt: skip


def _require_streamlit() -> None:
    if importlib.util.find_spec("streamlit") is None:
        raise UpError('the dashboard needs Streamlit: pip install "llmtrace[dashboard]"')


def run_dashboard(args: argparse.Namespace) -> int:
    _require_streamlit()
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    _check_port_free(args.host, args.port, "--port")
    print(f"llmtrace dashboard on http://{args.host}:{args.port}  (store: {mask_url(url)})", flush=True)
    argv = dashboard_argv(args.port, args.host)
    # Become Streamlit, so Ctrl-C and SIGTERM reach it directly and nothing is left behind.
    os.execve(argv[0], argv, _child_env({URL_ENV: url}))
    return 0  # not reached


# ----------------------------------------------------------------------------- up
def _check_port_free(host: str, port: int, flag: str) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise UpError(f"port {port} on {host} is already in use: stop what holds it or pass {flag} PORT") from None


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode("utf-8", "replace"))
    except OSError:
        return None


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``ready`` until it is true; fail fast if ``process`` exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            raise UpError(f"{what} exited with code {process.returncode} before it was ready (see its output above)")
        time.sleep(0.2)
    raise UpError(f"{what} did not become ready within {READY_TIMEOUT_S:.0f} s")


def _spawn(argv: Sequence[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches only us, and we stop the children in order (dashboard, then server).
    if log is None:
        return subprocess.Popen(list(argv), env=env, start_new_session=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(list(argv), env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def _check_renders(dashboard_url: str, pages: Sequence[str], log: Path) -> None:
    """Health says only that Streamlit listens: run the pages in a real session before saying "up"."""
    from llmtrace.dashboard_check import first_problem

    problem = first_problem(dashboard_url, pages)
    if problem:
        raise UpError(f"the dashboard is not working: {problem}\n  dashboard log: {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Stop(Exception):
    """SIGTERM arrived: shut down like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_up(args: argparse.Namespace) -> int:
    _require_streamlit()
    for port, flag in (
        (args.otlp_port, "--otlp-port"),
        (args.http_port, "--http-port"),
        (args.dashboard_port, "--dashboard-port"),
    ):
        _check_port_free(HOST, port, flag)
    query_url = f"http://{HOST}:{args.http_port}"
    otlp_url = f"http://{HOST}:{args.otlp_port}"
    dashboard_url = f"http://{HOST}:{args.dashboard_port}"
    children: list[subprocess.Popen[bytes]] = []
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # Also SIGINT explicitly: a shell starting us in the background (`llmtrace up &`, a script)
    # leaves SIGINT ignored, and `kill -INT` should still stop both processes.
    previous_int = signal.signal(signal.SIGINT, _on_sigterm)
    try:
        server = _spawn(
            [sys.executable, "-m", "llmtrace.cli", "server", "--data-dir", args.data_dir,
             "--otlp-port", str(args.otlp_port), "--http-port", str(args.http_port)],
            _child_env({}),
        )  # fmt: skip
        children.append(server)
        # Both start at once (Streamlit's start-up is the longest step); the dashboard connects on first use.
        dashboard_log = Path(args.data_dir).expanduser() / "dashboard.log"
        dashboard_log.parent.mkdir(parents=True, exist_ok=True)
        dashboard = _spawn(dashboard_argv(args.dashboard_port), _child_env({URL_ENV: query_url}), dashboard_log)
        children.insert(0, dashboard)
        wait_until(lambda: _get(f"{query_url}/ping") is not None, server, "llmtrace server")
        # The bulk load runs while the dashboard boots and renders its first page (which imports the
        # page modules once per process): on 2 cores the two overlap instead of queueing.
        with ThreadPoolExecutor(1) as pool:
            loading = pool.submit(_load_demo, args, otlp_url, query_url, dashboard_url) if args.demo else None
            wait_until(
                lambda: _get(f"{dashboard_url}/_stcore/health") == "ok",
                dashboard,
                f"the dashboard (log: {dashboard_log})",
            )
            _check_renders(dashboard_url, [""], dashboard_log)
            loaded = loading is not None and loading.result()
        print(
            f"\nllmtrace is up\n  dashboard        : {dashboard_url}\n  OTLP/HTTP traces : {otlp_url}/v1/traces"
            f"\n  ClickHouse HTTP  : {query_url}\n  dashboard log    : {dashboard_log}\n"
            f'Send data with llmtrace.instrument(endpoint="{otlp_url}"). Ctrl-C stops both.\n',
            flush=True,
        )
        if loaded:
            from llmtrace.dashboard_check import PAGES

            _check_renders(dashboard_url, PAGES, dashboard_log)
            print(f"Demo data loaded: open {dashboard_url}  (Ctrl-C stops llmtrace)", flush=True)
        return _wait_any(children)
    except (KeyboardInterrupt, _Stop):
        print("\nstopping llmtrace…", flush=True)
        return 0
    except UpError as exc:
        print(f"llmtrace up: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.demo:  # the demo's traffic first: its last spans go to the server still running
            from llmtrace.demo.live import stop_background

            stop_background()
        for child in children:
            _stop(child)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _load_demo(args: argparse.Namespace, otlp_url: str, query_url: str, dashboard_url: str) -> bool:
    """Load the demo once per data directory (history in bulk, then live traffic); True if loaded now."""
    from llmtrace.demo.command import load_for_up

    return load_for_up(otlp_url, query_url, dashboard_url, args.demo_calls, args.demo_force, _child_env({}))


def _wait_any(children: list[subprocess.Popen[bytes]]) -> int:
    """Block until a child exits (that is a failure: both should run until Ctrl-C)."""
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"llmtrace up: a child process exited with code {child.returncode}; stopping.", file=sys.stderr)
                return child.returncode or 1
        time.sleep(0.5)


def run(name: str, args: argparse.Namespace) -> int:
    try:
        return run_dashboard(args) if name == "dashboard" else run_up(args)
    except UpError as exc:
        print(f"llmtrace {name}: {exc}", file=sys.stderr)
        return 1

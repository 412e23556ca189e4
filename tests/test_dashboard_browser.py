"""Smoke test in a real browser: ``llmtrace up --demo``, then every page in headless Chromium.

Chromium is required (``apt-get install -y chromium``); without it this test fails rather than
skips, so CI cannot silently stop covering the browser path. Chromium is driven over the
DevTools protocol (``websockets`` comes with Streamlit) so the test waits in real time for
Streamlit to finish drawing; ``--virtual-time-budget`` races ahead of its websocket.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from llmtrace.analytics import overview, sql_console
from llmtrace.analytics.filters import Filter
from llmtrace.store.client import connect as connect_store
from tests.server_process import free_ports

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LLMTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = os.environ.get("LLMTRACE_SCREENSHOTS")  # keep screenshots here to look at them
PAGES = {
    "": "Calls",
    "traces": "Waterfall",
    "cost": "Spend per day",
    "latency": "Per model",
    "drift": "Verdicts",
    "compare": "Compare by",
    "anomalies": "Episode",
    "prompts": "Score means by",
    "sessions": "Traces of",
    "sql": "Examples",
}
BAD = ("stException", "Traceback", "Page not found", "Cannot reach the llmtrace store", "No LLM calls in the store")
DEMO_CALLS = 400


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): install it with `apt-get install -y chromium`")


class Up:
    """``llmtrace up --demo`` as a child process, with its output readable line by line."""

    def __init__(self, data_dir: Path) -> None:
        self.otlp, self.http, self.dashboard = free_ports(3)
        # Before any call of the demo's live traffic, which keeps arriving while tests run.
        self.started = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        argv = [sys.executable, "-m", "llmtrace.cli", "up", "--demo", "--demo-calls", str(DEMO_CALLS),
                "--data-dir", str(data_dir), "--otlp-port", str(self.otlp), "--http-port", str(self.http),
                "--dashboard-port", str(self.dashboard)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "llmtrace up exited early:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"llmtrace up did not print {text!r} within {timeout_s:.0f} s:\n" + "".join(self.seen))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    require_chromium()
    stack = Up(tmp_path_factory.mktemp("up-data"))
    try:
        stack.wait_for("Demo data loaded", timeout_s=240)
        yield stack
    finally:
        stack.stop()


class Chromium:
    """Headless Chromium driven over the DevTools protocol: load a page, wait until Streamlit has
    finished drawing it (real time, not virtual time), read its DOM and take a screenshot."""

    READY = """(() => {
        const busy = document.querySelector('[data-testid="stStatusWidget"]');
        return JSON.stringify({
            text: document.body ? document.body.innerText : "",
            html: document.documentElement.outerHTML,
            skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
            running: !!(busy && busy.innerText.trim()),
            charts: document.querySelectorAll('.js-plotly-plot').length,
        });
    })()"""

    def __init__(self, profile: Path) -> None:
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1400,1000", "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1", "about:blank"]  # fmt: skip
        self.process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.exits = contextlib.ExitStack()
        self.ws = self.exits.enter_context(connect(self._page_socket(), max_size=64_000_000))
        self.calls = 0

    def _page_socket(self) -> str:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # Chromium prints its DevTools address first thing
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if match:
                with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/json/list") as response:
                    targets = json.load(response)
                return next(str(t["webSocketDebuggerUrl"]) for t in targets if t["type"] == "page")
        pytest.fail(f"Chromium exited without a DevTools address (code {self.process.wait()})")

    def call(self, method: str, **params: object) -> dict[str, Any]:
        self.calls += 1
        self.ws.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.calls:
                return message  # type: ignore[no-any-return]

    def load(self, url: str, marker: str, timeout_s: float = 120) -> str:
        """Navigate and return the page HTML once ``marker`` shows and drawing has settled."""
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=2600, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        deadline, stable, last = time.monotonic() + timeout_s, 0, None
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            value = self.call("Runtime.evaluate", expression=self.READY, returnByValue=True)
            raw = value.get("result", {}).get("result", {}).get("value")
            if not raw:
                continue  # the page is between documents
            state = json.loads(raw)
            done = marker in state["text"] and not state["skeletons"] and not state["running"]
            stable = stable + 1 if done and state["charts"] == last else 0
            last = state["charts"]
            if stable >= 2:
                return str(state["html"])
        pytest.fail(f"{url} did not finish drawing {marker!r} in {timeout_s:.0f} s: {state.get('text', '')[-1500:]}")

    def screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["result"]["data"]))

    def close(self) -> None:
        self.exits.close()
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    require_chromium()
    chrome = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_in_a_real_browser_without_errors(
    up: Up, browser: Chromium, path: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{up.dashboard}/{path}"
    html = browser.load(url, PAGES[path])
    found = [bad for bad in BAD if bad in html]
    shots = Path(SHOTS) if SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    browser.screenshot(shots / f"{path or 'overview'}.png")
    assert not found, f"{url} shows {found}"


def test_the_sql_console_is_read_only_through_the_http_server(up: Up) -> None:
    client = connect_store(f"http://127.0.0.1:{up.http}")
    before = sql_console.run(client, "SELECT count() AS n FROM llm_calls")["n"].iloc[0]
    with pytest.raises(Exception, match=r"(?i)readonly"):
        sql_console.run(client, "TRUNCATE TABLE llm_calls")
    after = sql_console.run(client, "SELECT count() AS n FROM llm_calls")["n"].iloc[0]
    assert after >= before >= DEMO_CALLS  # live demo traffic only adds calls meanwhile; a TRUNCATE would empty it


def test_a_week_of_demo_figures_over_http_equal_direct_sql(up: Up) -> None:
    """Over a week that ends before ``up`` started: the live traffic arriving between the two queries
    made a window ending now differ by a call (6498 against 6499)."""
    client = connect_store(f"http://127.0.0.1:{up.http}")
    f = Filter.last(timedelta(days=7), now=up.started)
    row = overview.summary(client, f).iloc[0]
    direct = client.query(
        f"SELECT count(), sum(CostUsd), sum(IsError) FROM llm_calls WHERE {f.where()}", parameters=f.params()
    ).result_rows[0]
    assert (row["calls"], row["errors"]) == (direct[0], direct[2])
    assert row["cost_usd"] == pytest.approx(direct[1])


def test_up_stops_server_and_dashboard_on_sigterm(up: Up) -> None:
    assert up.stop() == 0
    for port in (up.http, up.dashboard, up.otlp):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is fine
            sock.bind(("127.0.0.1", port))  # nothing listens any more: the children are gone

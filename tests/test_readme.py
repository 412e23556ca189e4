"""The README's commands, run as a reader would run them against a store holding the demo.

Commands come from the README's ``bash`` blocks (lines starting with ``llmtrace``). What is
adapted, and why: ``--url``/``--endpoint`` point at this test's server; the demo sends 400 calls
instead of 6000 (CI time); fixed dates are shifted onto the demo's week (the demo ends now);
``watch`` runs ``--once`` with a local webhook; the long-running ``up``, ``server`` and
``dashboard`` are parsed only (``tests/test_up.py`` and the browser test run them). Everything
else runs as written and must exit 0 with output. Filters naming values the store lacks exit 2.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from llmtrace.cli import build_parser
from tests.server_process import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LONG_RUNNING = {"up", "server", "dashboard"}
DEMO_CALLS = "400"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def readme_commands() -> list[list[str]]:
    """Every ``llmtrace …`` line of the README's bash blocks, split as a shell would (comments dropped)."""
    lines = [line for block in bash_blocks(README) for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("llmtrace ")]


COMMANDS = readme_commands()


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTRACE_", "PYTEST"))}
    return {**env, "PYTHONPATH": str(ROOT), "LLMTRACE_CLICKHOUSE_URL": url}


def run(argv: list[str], url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", *argv],
        cwd=ROOT, env=cli_env(url), capture_output=True, text=True, timeout=180,
    )  # fmt: skip


class Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``llmtrace server`` filled by the README's own ``llmtrace demo`` line (with fewer calls)."""
    server = ServerProcess(tmp_path_factory.mktemp("readme-demo")).wait_ready()
    try:
        line = next(c for c in COMMANDS if c[1] == "demo")
        done = run(adapt(line, server, ""), server.http_url)
        assert done.returncode == 0, done.stderr
        yield server
    finally:
        server.stop()


def adapt(argv: list[str], server: ServerProcess, webhook: str) -> list[str]:
    """The README line as this test runs it (see the module docstring)."""
    out = argv[1:]
    replace = {"--url": server.http_url, "--endpoint": server.otlp_url, "--calls": DEMO_CALLS, "--webhook": webhook}
    for i, arg in enumerate(out[:-1]):
        if arg in replace:
            out[i + 1] = replace[arg]
    if out[0] == "watch":
        out = [a for a in out if a not in ("--every", "1m")] + ["--once", "--state", str(server.data_dir / "w.json")]
    return [shift_dates(a) for a in out]


def shift_dates(arg: str) -> str:
    """Move the README's example dates so the latest one is today (UTC): the demo's last day.

    Only the commands' dates count: prose dates (a benchmark's "measured 2026-12-04") once left the
    shift at zero and sent `drift --baseline 2026-06-01..` to a window the demo does not hold."""
    found = [date.fromisoformat(d) for c in COMMANDS for d in re.findall(r"\d{4}-\d{2}-\d{2}", " ".join(c))]
    if not found or not re.search(r"\d{4}-\d{2}-\d{2}", arg):
        return arg
    shift = datetime.now(timezone.utc).date() - max(d for d in found if d.year > 2000)
    return re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: (date.fromisoformat(m.group()) + shift).isoformat(), arg)


def command_id(argv: list[str]) -> str:
    return " ".join(argv[1:])[:70]


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[1] not in LONG_RUNNING], ids=command_id)
def test_every_readme_command_runs_against_the_demo(argv: list[str], demo: ServerProcess, webhook: str) -> None:
    done = run(adapt(argv, demo, webhook), demo.http_url)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip() or "demo" in argv
    assert "Traceback" not in done.stderr
    assert " 0 metric(s)" not in done.stdout


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[1] in LONG_RUNNING], ids=command_id)
def test_long_running_readme_commands_take_the_options_they_show(argv: list[str]) -> None:
    build_parser([argv[1]]).parse_args(argv[1:])  # argparse exits 2 on an unknown option


@pytest.mark.parametrize(
    "flags",
    [
        ["--service", "supportbot"],
        ["--model", "gpt-5-typo"],
        ["--baseline", "release=v1.4.0", "--current", "release=v9"],
    ],
    ids=["service", "model", "release"],
)
def test_drift_with_a_value_the_store_lacks_exits_2_listing_the_known_values(
    flags: list[str], demo: ServerProcess
) -> None:
    done = run(["drift", *flags, "--fail-on", "major"], demo.http_url)
    assert done.returncode == 2, done.stdout + done.stderr
    known = {"service": "support-bot", "model": "gpt-4o-mini", "release": "v1.5.0"}
    assert any(value in done.stderr for value in known.values()), done.stderr
    assert "no drift" not in done.stdout


def test_drift_over_a_window_without_calls_is_an_error_not_no_drift(demo: ServerProcess) -> None:
    done = run(["drift", "--baseline", "2001-01-01..2001-01-08", "--current", "2001-01-08..2001-01-09"], demo.http_url)
    assert done.returncode == 2
    assert "no calls" in done.stderr


def test_anomalies_with_an_unknown_service_exits_2(demo: ServerProcess) -> None:
    done = run(["anomalies", "--service", "supportbot"], demo.http_url)
    assert done.returncode == 2
    assert "support-bot" in done.stderr


# ------------------------------------------------------------------ try it without a key
def try_it_blocks() -> tuple[str, str]:
    section = README.split("### Try it without an API key", 1)[1]
    shell = bash_blocks(section)[0]
    python = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    return shell, python


def test_the_try_it_without_a_key_example_is_five_lines_of_python() -> None:
    assert len(try_it_blocks()[1].strip().splitlines()) == 5


def test_the_try_it_without_a_key_example_prints_the_span_of_its_call(tmp_path: Path) -> None:
    shell, python = try_it_blocks()
    port = str(free_port())  # the README's port may be taken on this machine; the example is otherwise verbatim
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "PYTEST"))}
    env["PYTHONPATH"] = str(ROOT)
    fake = subprocess.Popen(
        ["bash", "-c", shell.replace("9999", port).replace(" &", "")],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert fake.stdout is not None and "fake LLM at" in fake.stdout.readline()
        done = subprocess.run(
            [sys.executable, "-"], input=python.replace("9999", port), env=env, capture_output=True, text=True,
            timeout=60, cwd=tmp_path,
        )  # fmt: skip
    finally:
        fake.terminate()
        fake.wait(10)
    assert done.returncode == 0, done.stderr
    assert '"name": "chat gpt-4o-mini"' in done.stdout
    assert '"gen_ai.usage.output_tokens"' in done.stdout

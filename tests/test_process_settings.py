"""llmtrace's own analysis processes run with transparent huge pages off (``llmtrace._process``); the
server's and a host app's are left as they are. Checked in fresh processes through ``/proc``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATUS = "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('THP_enabled')])"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "THP_enabled" not in Path("/proc/self/status").read_text(),
    reason="THP_enabled is reported by Linux >= 5.0 only",
)


# Each child starts with them on: the setting is inherited, and this worker may have run a command in-process.
ENABLE = "import ctypes; ctypes.CDLL(None).prctl(41, 0, 0, 0, 0)"


def huge_pages_after(code: str) -> str:
    argv = [sys.executable, "-c", f"{ENABLE}\n{code}\n{STATUS}"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_disable_huge_pages_turns_them_off_for_the_process() -> None:
    assert huge_pages_after("from llmtrace._process import disable_huge_pages as d; assert d()") == "['0']"


def test_an_analysis_command_runs_without_them_even_when_the_store_is_down() -> None:
    code = "from llmtrace.cli import main; assert main(['anomalies', '--url', 'http://127.0.0.1:9']) == 1"
    assert huge_pages_after(code) == "['0']"


def test_a_host_app_and_the_server_command_keep_the_systems_setting() -> None:
    assert huge_pages_after("import llmtrace; llmtrace.instrument()") == "['1']"
    code = "from llmtrace.cli import main\ntry:\n    main(['server', '--help'])\nexcept SystemExit:\n    pass"
    assert huge_pages_after(code) == "['1']"

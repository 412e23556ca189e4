"""``llmtrace sql`` as a shell user runs it: the real CLI process over a chDB data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('sql-cli')}"


def shell(command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTRACE_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def llmtrace(url: str, query: str, *flags: str) -> str:
    return f"{sys.executable} -m llmtrace.cli sql --url '{url}' \"{query}\" {' '.join(flags)}"


def test_piping_into_head_ends_quietly_without_a_broken_pipe_traceback(url: str) -> None:
    done = shell(llmtrace(url, "SELECT number FROM numbers(300000)") + " | head -n 3")
    assert done.stdout.splitlines()[0].strip() == "number"
    assert len(done.stdout.splitlines()) == 3
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_the_reader_leaving_is_reported_as_sigpipe_like_other_tools(url: str) -> None:
    done = shell("set -o pipefail; " + llmtrace(url, "SELECT number FROM numbers(300000)") + " | head -n 1")
    assert done.returncode == 141


def test_table_floats_read_like_numbers_not_binary_noise(url: str) -> None:
    query = "SELECT 0.1 + 0.2 AS noisy, toFloat64(22) AS whole, 1.5e-7 AS tiny, 0.1073934 AS cost"
    done = shell(llmtrace(url, query))
    assert done.returncode == 0, done.stderr
    values = done.stdout.splitlines()[2].split()
    assert values == ["0.3", "22", "1.5e-07", "0.1073934"]


def test_a_sum_of_many_costs_reads_without_its_rounding_noise(url: str) -> None:
    """Sums over thousands of rows gather rounding error that 15 digits still showed (20.9778344999998)."""
    query = (
        "SELECT sum(d) AS spend, sum(e) AS other FROM "
        "(SELECT 0.0002331 * (number % 7) AS d, 0.00015 * (number % 29) + 0.0000003 AS e FROM numbers(30000))"
    )
    done = shell(llmtrace(url, query))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2].split() == ["20.9778345", "62.99325"]


def test_csv_keeps_every_digit(url: str) -> None:
    done = shell(llmtrace(url, "SELECT 0.1 + 0.2 AS noisy", "--format", "csv"))
    assert done.stdout.splitlines()[1] == "0.30000000000000004"

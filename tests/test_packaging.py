"""The wheel as users get it: built from this checkout, then imported with the checkout out of sight."""

from __future__ import annotations

import json
import re
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.server_process import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(REPO),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    [built] = out.glob("llmtrace-*.whl")
    return built


def test_wheel_ships_dashboard_and_schemas_inside_llmtrace_and_no_other_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"llmtrace"}
    assert "llmtrace/_dashboard/streamlit_app.py" in names
    assert "llmtrace/_dashboard/app_pages/overview.py" in names
    assert "llmtrace/_schemas/002_otel_traces.sql" in names
    assert "llmtrace/py.typed" in names


def test_all_extra_brings_what_the_demo_needs(wheel: Path) -> None:
    """``pip install "llmtrace[all]" && llmtrace up --demo`` (the README's first command) must not stop at
    a missing SDK: the demo drives the real openai, anthropic, google-genai and boto3 SDKs."""
    archive = zipfile.ZipFile(wheel)
    [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    extras: dict[str, set[str]] = {}
    for line in archive.read(metadata).decode().splitlines():
        found = re.match(r"Requires-Dist: ([A-Za-z0-9_.-]+).*extra == [\"']([a-z]+)[\"']", line)
        if found:
            extras.setdefault(found.group(2), set()).add(found.group(1).lower())
    assert extras["demo"] == {"openai", "anthropic", "boto3", "google-genai"}
    assert extras["demo"] | extras["server"] | extras["dashboard"] <= extras["all"]


def test_installed_dashboard_runs_without_a_top_level_dashboard_package(wheel: Path, tmp_path: Path) -> None:
    """The app's modules import each other as ``dashboard``: the wheel's copy must resolve that itself."""
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    url = f"http://127.0.0.1:{free_port()}"
    code = textwrap.dedent(f"""
        import importlib.util, json, os, sys
        sys.path[:0] = [{str(installed)!r}]
        sys.path += {site.getsitepackages()!r}  # dependencies only: -S skips the checkout's editable .pth
        os.environ["LLMTRACE_CLICKHOUSE_URL"] = {url!r}
        import llmtrace
        from llmtrace.dashboard_command import app_path
        from streamlit.testing.v1 import AppTest
        checks = {{
            "llmtrace_from_wheel": llmtrace.__file__.startswith({str(installed)!r}),
            "no_top_level_dashboard": importlib.util.find_spec("dashboard") is None,
            "app": str(app_path().relative_to({str(installed)!r})),
        }}
        at = AppTest.from_file(str(app_path()), default_timeout=60).run()
        checks["exceptions"] = [str(e.value) for e in at.exception]
        checks["error"] = at.error[0].value if at.error else ""
        print(json.dumps(checks))
    """)
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert checks["llmtrace_from_wheel"] and checks["no_top_level_dashboard"]
    assert checks["app"] == "llmtrace/_dashboard/streamlit_app.py"
    assert checks["exceptions"] == []
    assert url in checks["error"]  # the unreachable store is named: the app ran to its store check

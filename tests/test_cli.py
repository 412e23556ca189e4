"""The ``llmtrace`` command on a light install: help always works, a command lacking its extra says which."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _cli_without(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as if ``package`` were not installed (``pip install llmtrace`` has no pandas or chDB)."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{package!r}] = None  # importing it now raises ModuleNotFoundError, as when absent
        from llmtrace.cli import main
        sys.exit(main({list(args)!r}))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_even_when_an_extra_is_missing() -> None:
    result = _cli_without("pandas", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("server", "migrate", "sql", "dashboard", "up", "demo", "drift", "anomalies", "watch"):
        assert f"    {command}" in result.stdout
    assert "needs: pip install 'llmtrace[dashboard]'" in " ".join(result.stdout.split())
    assert "Traceback" not in result.stderr


def test_a_command_whose_extra_is_missing_names_the_package_and_the_install() -> None:
    result = _cli_without("pandas", "drift", "--window", "1d")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "llmtrace drift needs pandas, which is not installed: pip install 'llmtrace[dashboard]'"
    )


def test_commands_with_their_extras_installed_are_unaffected() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", "drift", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--baseline" in result.stdout or "baseline" in result.stdout
    assert "needs: pip install" not in result.stdout

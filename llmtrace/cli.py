"""The ``llmtrace`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up, importing each lazily so that
``llmtrace --help`` never pays for chDB or Streamlit.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "server": (
        "llmtrace.server.command",
        "run the embedded ClickHouse with OTLP ingest and an HTTP query port",
    ),
    "migrate": ("llmtrace.store.commands", "apply the ClickHouse schema (idempotent)"),
    "sql": ("llmtrace.store.commands", "run a SQL query against the store"),
    "dashboard": ("llmtrace.dashboard_command", "open the Streamlit dashboard"),
    "up": ("llmtrace.dashboard_command", "start server and dashboard together (optionally with demo data)"),
    "demo": ("llmtrace.demo.command", "send realistic demo traffic through the real SDKs"),
    "drift": ("llmtrace.analytics.commands", "compare a current window with a baseline"),
    "anomalies": ("llmtrace.analytics.commands", "find anomalous episodes"),
    "watch": ("llmtrace.analytics.commands", "check drift and anomalies on a schedule and alert"),
}


def _load(name: str) -> object | None:
    module_name = COMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            return None  # command not built yet in this version
        raise


def build_parser(available: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmtrace", description="LLM observability on ClickHouse.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in available:
        module = _load(name)
        if module is None:
            continue
        command_parser = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        module.add_arguments(name, command_parser)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wanted = [a for a in args_list if a in COMMANDS][:1]
    # Build only the requested subcommand's parser (fast start); all of them for --help.
    parser = build_parser(wanted or list(COMMANDS))
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module = _load(args.command)
    assert module is not None
    try:
        return int(module.run(args.command, args) or 0)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

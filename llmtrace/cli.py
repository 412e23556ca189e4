"""The ``llmtrace`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up, importing each lazily so that
``llmtrace --help`` never pays for chDB or Streamlit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# name -> (module, one-line help, the extra that brings its dependencies)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "server": (
        "llmtrace.server.command",
        "run the embedded ClickHouse with OTLP ingest and an HTTP query port",
        "server",
    ),
    "migrate": ("llmtrace.store.commands", "apply the ClickHouse schema (idempotent)", "server"),
    "sql": ("llmtrace.store.commands", "run a SQL query against the store", "server"),
    "dashboard": ("llmtrace.dashboard_command", "open the Streamlit dashboard", "dashboard"),
    "up": ("llmtrace.dashboard_command", "start server and dashboard together (optionally with demo data)", "all"),
    "demo": ("llmtrace.demo.command", "send realistic demo traffic through the real SDKs", "demo"),
    "drift": ("llmtrace.analytics.commands", "compare a current window with a baseline", "dashboard"),
    "anomalies": ("llmtrace.analytics.commands", "find anomalous episodes", "dashboard"),
    "watch": ("llmtrace.analytics.commands", "check drift and anomalies on a schedule and alert", "dashboard"),
    "compare": (
        "llmtrace.analytics.compare_command",
        "judge a candidate (release, prompt, model) against a baseline",
        "dashboard",
    ),
    "evaluate": (
        "llmtrace.evaluation",
        "score a sample of stored calls with your evaluator (e.g. an LLM judge)",
        "dashboard",
    ),
}

# Commands whose process runs the analyses (the dashboard's Streamlit process too: it is this one's child):
# transparent huge pages off for them (llmtrace._process). Not the server's, whose ingest was measured with them.
ANALYSES = frozenset({"dashboard", "drift", "anomalies", "watch", "compare", "evaluate"})


class Missing:
    """A command whose module needs a package this install lacks (``pip install llmtrace`` is light)."""

    def __init__(self, name: str, package: str) -> None:
        self.name, self.package = name, package

    def add_arguments(self, name: str, parser: argparse.ArgumentParser) -> None:
        pass  # its options are unknown without its module; main() reports the missing package first

    def run(self, name: str, args: argparse.Namespace) -> int:
        extra = COMMANDS[name][2]
        print(f"llmtrace {name} needs {self.package}, which is not installed: pip install 'llmtrace[{extra}]'",
              file=sys.stderr)  # fmt: skip
        return 2


def _load(name: str) -> object | None:
    module_name = COMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            return None  # command not built yet in this version
        if exc.name and exc.name.split(".")[0] != "llmtrace":
            return Missing(name, exc.name.split(".")[0])
        raise


def build_parser(available: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmtrace", description="LLM observability on ClickHouse.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in available:
        module = _load(name)
        if module is None:
            continue
        text = COMMANDS[name][1]
        if isinstance(module, Missing):
            text += f" (needs: pip install 'llmtrace[{COMMANDS[name][2]}]')"
        command_parser = sub.add_parser(name, help=text, description=text)
        module.add_arguments(name, command_parser)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wanted = [a for a in args_list if a in COMMANDS][:1]
    if wanted and "-h" not in args_list and "--help" not in args_list:
        command = _load(wanted[0])
        if isinstance(command, Missing):
            return command.run(wanted[0], argparse.Namespace())
    # Build only the requested subcommand's parser (fast start); all of them for --help.
    parser = build_parser(wanted or list(COMMANDS))
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module = _load(args.command)
    assert module is not None
    if args.command in ANALYSES:  # our own process: steady CPU for large analyses (llmtrace._process)
        from llmtrace._process import disable_huge_pages

        disable_huge_pages()
    try:
        return int(module.run(args.command, args) or 0)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of our output left (``llmtrace sql … | head``): stop quietly, as ``cat`` would.

    Output still buffered would raise again when Python flushes stdout at exit, so stdout
    is pointed at /dev/null first. 141 is what a shell reports for a process ended by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())

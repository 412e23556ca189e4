"""``llmtrace server``: the command-line face of :mod:`llmtrace.server.app`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]

DEFAULT_DATA_DIR = "~/.llmtrace/data"


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"where the embedded ClickHouse keeps its data (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)"
    )
    parser.add_argument("--otlp-port", type=int, default=4318, help="OTLP/HTTP traces port (default 4318)")
    parser.add_argument("--http-port", type=int, default=8123, help="ClickHouse HTTP query port (default 8123)")
    parser.add_argument(
        "--ttl-days",
        type=int,
        default=None,
        help="keep raw spans and llm_calls this many days (30 for new tables; given, it also changes existing ones)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections per port (default: from the open-files limit, at most 4096); over it, idle ones close",
    )
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds a client has to send a request's headers"
    )
    parser.add_argument("--body-timeout", type=float, default=30.0, help="seconds a client has to send a request body")
    parser.add_argument(
        "--prices-file", help="JSON list of price overrides (USD per million tokens), applied to stored calls too"
    )
    parser.add_argument(
        "--reprice-every", type=float, default=300.0,
        help="seconds between re-pricings of new calls (calls without a cost; all calls of a model with a stored "
        "price override) (default 300; 0: never)",
    )  # fmt: skip


def run(name: str, args: argparse.Namespace) -> int:
    try:
        from llmtrace.server.app import ServerConfig, StartupError, serve
    except ImportError as exc:  # chdb / uvicorn / starlette missing
        print(
            f"llmtrace server needs the server extra ({exc.name} is missing): pip install 'llmtrace[server]'",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    password = os.environ.get("LLMTRACE_PASSWORD") or None
    config = ServerConfig(
        data_dir=Path(args.data_dir).expanduser(),
        host=args.host,
        otlp_port=args.otlp_port,
        http_port=args.http_port,
        password=password,
        ttl_days=args.ttl_days,
        max_connections=args.max_connections,
        header_seconds=args.header_timeout,
        body_seconds=args.body_timeout,
        prices_file=Path(args.prices_file).expanduser() if args.prices_file else None,
        reprice_seconds=args.reprice_every,
    )
    try:
        serve(config)
    except StartupError as exc:
        print(f"llmtrace server: {exc}", file=sys.stderr)
        return 1
    return 0

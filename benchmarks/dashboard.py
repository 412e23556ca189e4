"""How long each dashboard page's queries take over a million LLM calls.

Fills a fresh ``llmtrace server`` (embedded ClickHouse behind its HTTP interface, as the
dashboard sees it) with a week of demo-shaped history through ``otel_traces`` (so the
materialized views and rollups do their real work), then runs every analytics query a page
issues, as the page issues them, and prints the median of 3 runs per page and window.

    python benchmarks/dashboard.py                 # 1M rows into a temporary server
    python benchmarks/dashboard.py --rows 200000
    python benchmarks/dashboard.py --url http://127.0.0.1:8123 --no-insert   # an existing store
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmtrace.analytics import cost, latency, overview, traces  # noqa: E402
from llmtrace.analytics.filters import Filter, options  # noqa: E402
from llmtrace.demo import scenarios  # noqa: E402
from llmtrace.store.client import connect  # noqa: E402

TARGET_S = 2.0
WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def page_queries(client: Any, f: Filter) -> dict[str, list[Callable[[], Any]]]:
    """The analytics calls each page makes on a default first render."""

    def first_trace() -> Any:
        found = traces.list_traces(client, f, limit=200)
        return traces.trace_spans(client, str(found["trace_id"].iloc[0])) if len(found) else None

    shared = [lambda: overview.store_counts(client), lambda: options(client, f)]
    return {
        "Overview": [
            *shared,
            lambda: overview.summary_with_previous(client, f),
            lambda: overview.timeseries(client, f),
            *[lambda by=by: overview.breakdown(client, f, by) for by in ("provider", "model", "service")],
        ],
        "Traces": [*shared, first_trace, lambda: traces.list_traces(client, f, text="refund", limit=200)],
        "Cost": [
            *shared,
            lambda: cost.totals(client, f),
            lambda: cost.spend_per_day(client, f, "model"),
            lambda: cost.spend_by(client, f, "model"),
            lambda: cost.spend_by(client, f, "user"),
            lambda: cost.most_expensive_calls(client, f),
            lambda: cost.unpriced(client, f),
        ],
        "Latency": [
            *shared,
            lambda: latency.by_model(client, f),
            lambda: latency.histogram(client, f),
            lambda: latency.over_time(client, f),
            lambda: latency.tokens_per_second(client, f),
            lambda: latency.slowest_calls(client, f),
        ],
    }


def timed(queries: list[Callable[[], Any]], runs: int = 3) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for query in queries:
            query()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextmanager
def temporary_server() -> Iterator[str]:
    otlp, http = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="llmtrace-bench-") as data_dir:
        argv = [sys.executable, "-m", "llmtrace.cli", "server", "--data-dir", data_dir,
                "--otlp-port", str(otlp), "--http-port", str(http)]  # fmt: skip
        server = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{http}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/ping", timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("llmtrace server did not start") from None
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(60)


def insert(client: Any, rows: int) -> None:
    sql, params = scenarios.history_sql(rows, 7, time.time_ns())
    start = time.perf_counter()
    client.command(sql, parameters=params, settings={"max_execution_time": 0})
    elapsed = time.perf_counter() - start
    calls = client.query("SELECT count() FROM llm_calls").result_rows[0][0]
    print(f"inserted {rows:,} spans -> {calls:,} llm_calls in {elapsed:.1f} s ({rows / elapsed:,.0f} spans/s)")


def report(client: Any) -> bool:
    print(f"\n{'page':<10}" + "".join(f"{name:>10}" for name in WINDOWS) + "   (median of 3, seconds)")
    ok = True
    for page in ("Overview", "Traces", "Cost", "Latency"):
        cells = []
        for span in WINDOWS.values():
            seconds = timed(page_queries(client, Filter.last(span))[page])
            ok &= seconds < TARGET_S
            cells.append(f"{seconds:>10.3f}")
        print(f"{page:<10}" + "".join(cells))
    print(f"\ntarget < {TARGET_S:.0f} s per page: {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="LLM calls to insert (default 1,000,000)")
    parser.add_argument("--url", help="use this store instead of a temporary llmtrace server")
    parser.add_argument("--no-insert", action="store_true", help="time the store as it is")
    args = parser.parse_args()
    with temporary_server() if args.url is None else _given(args.url) as url:
        client = connect(url, send_receive_timeout=600)
        if not args.no_insert:
            insert(client, args.rows)
        return 0 if report(client) else 1


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    sys.exit(main())

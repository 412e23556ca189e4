"""How long each dashboard page's queries take over millions of LLM calls (up to 100M).

Fills a fresh ``llmtrace server`` (embedded ClickHouse behind its HTTP interface, as the
dashboard sees it) with a week of demo-shaped history through ``otel_traces`` (so the
materialized views and rollups do their real work), in chunks of ``--chunk`` spans so memory
stays flat at any size, reporting the insert rate; then runs every analytics query a page
issues, as the page issues them, and prints the median of 3 runs per page and window.

    python benchmarks/dashboard.py                 # 1M rows into a temporary server
    python benchmarks/dashboard.py --rows 10000000
    python benchmarks/dashboard.py --rows 100000000 --data-dir /big/disk/bench   # kept afterwards
    python benchmarks/dashboard.py --url http://127.0.0.1:8123 --no-insert   # an existing store

Measured results are in docs/performance.md ("Dashboard pages at 10M calls"; summary in the README).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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


def timed(queries: list[Callable[[], Any]], runs: int = 3, server_pid: int | None = None) -> tuple[float, float]:
    """Median wall seconds of ``runs`` runs, and the server's mean CPU seconds per run (NaN without its pid)."""
    samples = []
    cpu_before = server_cpu(server_pid)
    for _ in range(runs):
        start = time.perf_counter()
        for query in queries:
            query()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), (server_cpu(server_pid) - cpu_before) / runs


def server_cpu(pid: int | None) -> float:
    """utime + stime of process ``pid`` in seconds (all its threads): CPU per page is load-independent."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextmanager
def temporary_server(data_dir: str | None = None) -> Iterator[tuple[str, int]]:
    """A server on ``data_dir`` (kept), else on a temporary directory (removed afterwards): its URL and pid."""
    with ExitStack() as stack:
        temporary = tempfile.TemporaryDirectory(prefix="llmtrace-bench-") if data_dir is None else _given(data_dir)
        yield stack.enter_context(_server(stack.enter_context(temporary)))


@contextmanager
def _server(data_dir: str) -> Iterator[tuple[str, int]]:
    otlp, http = free_ports(2)
    argv = [sys.executable, "-m", "llmtrace.cli", "server", "--data-dir", data_dir,
            "--otlp-port", str(otlp), "--http-port", str(http)]  # fmt: skip
    server = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{http}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("llmtrace server did not start") from None
                time.sleep(0.2)  # polling the server's start-up
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(120)


def insert(client: Any, rows: int, chunk: int) -> None:
    """``rows`` spans of one week ending now, ``chunk`` per INSERT (the same history as one INSERT)."""
    end_ns = time.time_ns()
    chunk = max(2, chunk - chunk % 2)
    started = time.perf_counter()
    for offset in range(0, rows, chunk):
        size = min(chunk, rows - offset)
        sql, params = scenarios.history_sql(size, 7, end_ns, offset=offset)
        client.command(sql, parameters=params, settings={"max_execution_time": 0})
        done, elapsed = offset + size, time.perf_counter() - started
        print(f"  {done:>12,} spans  {elapsed:8.1f} s  {done / elapsed:>10,.0f} spans/s", flush=True)
    elapsed = time.perf_counter() - started
    calls = client.query("SELECT count() FROM llm_calls").result_rows[0][0]
    print(f"inserted {rows:,} spans -> {calls:,} llm_calls in {elapsed:.1f} s ({rows / elapsed:,.0f} spans/s)")
    print(f"on disk: {_disk(client)}  (load average {os.getloadavg()[0]:.1f})", flush=True)


def _disk(client: Any) -> str:
    sql = """SELECT table, formatReadableSize(sum(bytes_on_disk)) FROM system.parts
             WHERE active AND database = currentDatabase() GROUP BY table ORDER BY sum(bytes_on_disk) DESC"""
    return ", ".join(f"{table} {size}" for table, size in client.query(sql).result_rows)


def report(client: Any, target: float = TARGET_S, per_query: bool = False, server_pid: int | None = None) -> bool:
    cpu_note = ", server CPU s in brackets" if server_pid else ""
    print(f"\n{'page':<10}" + "".join(f"{name:>18}" for name in WINDOWS) + f"   (median of 3, wall s{cpu_note})")
    ok = True
    for page in ("Overview", "Traces", "Cost", "Latency"):
        cells, parts = [], []
        for window, span in WINDOWS.items():
            queries = page_queries(client, Filter.last(span))[page]
            seconds, cpu = timed(queries, server_pid=server_pid)
            ok &= seconds < target
            cells.append(f"{seconds:>10.3f} [{cpu:.2f}]" if server_pid else f"{seconds:>18.3f}")
            if per_query:  # which query dominates the page
                each = [timed([q], server_pid=server_pid) for q in queries]
                parts.append(
                    f"    {window}: " + " ".join(f"{w:.3f}" + (f" [{c:.2f}]" if server_pid else "") for w, c in each)
                )
        print(f"{page:<10}" + "".join(cells))
        for line in parts:
            print(line)
    print(f"\ntarget < {target:g} s per page: {'met' if ok else 'MISSED'}  (load average {os.getloadavg()[0]:.1f})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="LLM calls to insert (default 1,000,000)")
    parser.add_argument("--url", help="use this store instead of a temporary llmtrace server")
    parser.add_argument("--no-insert", action="store_true", help="time the store as it is")
    parser.add_argument("--chunk", type=int, default=2_000_000, help="spans per INSERT (default 2,000,000)")
    parser.add_argument("--data-dir", help="server data directory to fill and keep (default: a temporary one)")
    parser.add_argument("--target", type=float, default=TARGET_S, help=f"seconds per page (default {TARGET_S:g})")
    parser.add_argument("--per-query", action="store_true", help="also each query's median, in page order")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, to report its CPU per page")
    args = parser.parse_args()
    with temporary_server(args.data_dir) if args.url is None else _given((args.url, args.server_pid)) as (url, pid):
        client = connect(url, send_receive_timeout=3600)
        if not args.no_insert:
            insert(client, args.rows, args.chunk)
        return 0 if report(client, args.target, args.per_query, pid) else 1


@contextmanager
def _given(value: Any) -> Iterator[Any]:
    yield value


if __name__ == "__main__":
    sys.exit(main())

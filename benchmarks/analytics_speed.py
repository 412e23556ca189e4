"""How long anomaly detection and drift take over millions of LLM calls (issues #12 and #16).

Times ``anomalies.detect`` over the last 24 h and 7 d and ``drift.compare`` with its
defaults (last day against the day before, ungrouped and by service) on an ``llmtrace
server`` store, reporting per case the median wall seconds and the mean CPU seconds of the
server process and of this process (the detector's statistics) per run. CPU is the
load-independent figure on a shared machine; the load average is printed beside it.

    python benchmarks/analytics_speed.py --rows 1000000                      # temporary server
    python benchmarks/analytics_speed.py --data-dir /work/bench10m --no-insert   # a kept store
    python benchmarks/analytics_speed.py --url http://127.0.0.1:8123 --server-pid 1234 --no-insert

Measured results are in docs/performance.md (summary in the README's Performance).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dashboard import _given, insert, server_cpu, temporary_server  # noqa: E402
from llmtrace.analytics import anomalies, drift  # noqa: E402
from llmtrace.analytics.filters import Filter  # noqa: E402
from llmtrace.store.client import connect  # noqa: E402


def cases(client: Any, now: datetime | None = None) -> dict[str, Callable[[], Any]]:
    """Each timed call, as the CLI issues it by default (windows ending ``now``, default the clock's)."""
    day = timedelta(days=1)
    return {
        "anomalies 24h": lambda: anomalies.detect(client, Filter.last(day, now=now)),
        "anomalies 7d": lambda: anomalies.detect(client, Filter.last(7 * day, now=now)),
        "drift 1d vs 1d": lambda: drift.compare(client, drift.Comparison.previous_period(day, now=now)),
        "drift 1d by service": lambda: drift.compare(
            client, drift.Comparison.previous_period(day, now=now), by="service"
        ),
    }


def measure(run: Callable[[], Any], runs: int, server_pid: int | None) -> tuple[float, float, float]:
    """Median wall seconds, mean server CPU and mean own CPU seconds per run."""
    walls = []
    server_before, own_before = server_cpu(server_pid), time.process_time()
    for _ in range(runs):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    server = (server_cpu(server_pid) - server_before) / runs
    return statistics.median(walls), server, (time.process_time() - own_before) / runs


def report(
    client: Any, runs: int, server_pid: int | None, only: list[str] | None = None, now: datetime | None = None
) -> None:
    calls = client.query("SELECT count() FROM llm_calls").result_rows[0][0]
    print(f"{calls:,} llm_calls; median of {runs}, CPU s are means per run")
    print(f"{'case':<22}{'wall s':>9}{'server CPU':>12}{'own CPU':>10}{'load':>7}")
    if now:
        print(f"windows end at {now:%Y-%m-%d %H:%M} UTC")
    for name, run in cases(client, now).items():
        if only and not any(word in name for word in only):
            continue
        wall, server, own = measure(run, runs, server_pid)
        print(f"{name:<22}{wall:>9.2f}{server:>12.2f}{own:>10.2f}{os.getloadavg()[0]:>7.1f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="LLM calls to insert (default 1,000,000)")
    parser.add_argument("--url", help="use this store instead of a temporary llmtrace server")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, to report its CPU")
    parser.add_argument("--data-dir", help="server data directory to fill or reuse (default: a temporary one)")
    parser.add_argument("--no-insert", action="store_true", help="time the store as it is")
    parser.add_argument("--chunk", type=int, default=2_000_000, help="spans per INSERT (default 2,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument(
        "--end", type=datetime.fromisoformat, help="windows end here (UTC; a kept store's last call) instead of now"
    )
    parser.add_argument("--only", nargs="*", help="cases whose name holds one of these words (anomalies, drift, 7d)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with temporary_server(args.data_dir) if args.url is None else _given((args.url, args.server_pid)) as (url, pid):
        client = connect(url, send_receive_timeout=3600)
        if not args.no_insert:
            insert(client, args.rows, args.chunk)
        end = args.end.replace(tzinfo=timezone.utc) if args.end and args.end.tzinfo is None else args.end
        report(client, args.runs, pid, args.only, end)
    return 0


if __name__ == "__main__":
    sys.exit(main())

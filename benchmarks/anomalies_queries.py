"""What each query of ``anomalies.detect`` costs the server: CPU, rows and bytes read (issue #16).

chDB keeps no ``system.query_log``, so this records the queries one ``detect`` run issues (over
the last 24 h or 7 d, windows ending ``--end``), then replays each alone ``--runs`` times and
reads the server process's CPU (``/proc/PID/stat``) around it, and the rows it reads from stored
tables (``EXPLAIN ESTIMATE``: whole granules, an upper bound). The load average is printed beside them: on a shared
machine CPU is the figure that holds, and the replays of the old and new code can be
interleaved by running this with ``--code`` pointing at each checkout in turn.

    python benchmarks/anomalies_queries.py --url http://127.0.0.1:8123 --server-pid PID \\
        --end 2026-12-05T06:50 --days 7 [--code /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Recorder:
    """The client ``detect`` is given: passes every call on and keeps each query's text and parameters."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name not in {"query", "query_df", "query_arrow", "query_np", "command"}:
            return target

        def call(sql: str, *args: Any, **kwargs: Any) -> Any:
            self.queries.append((sql, dict(kwargs.get("parameters") or {})))
            return target(sql, *args, **kwargs)

        return call


def estimate(client: Any, sql: str, params: dict[str, Any]) -> int:
    """Rows the query reads from stored tables by ``EXPLAIN ESTIMATE`` (granules its filters keep),
    as chDB's summary only counts the rows a query returns."""
    if sql.lstrip().upper().startswith("DESCRIBE"):
        return 0
    rows = client.query(f"EXPLAIN ESTIMATE {sql}", parameters=params).result_rows
    return sum(int(r[3]) for r in rows)


def label(sql: str) -> str:
    """A short name for a query: the tables it reads."""
    tables = dict.fromkeys(re.findall(r"\bFROM\s+([a-z_0-9]+)", sql))
    return "+".join(t for t in tables if t not in {"calls", "hourly", "thresholds", "r", "t"}) or sql.split()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--end", type=datetime.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--code", default=str(ROOT), help="checkout whose llmtrace package issues the queries")
    parser.add_argument("--runs", type=int, default=3, help="replays of each query (default 3)")
    parser.add_argument("--show", action="store_true", help="print each query's text")
    parser.add_argument("--max-threads", type=int, help="replay with this max_threads setting")
    args = parser.parse_args()
    sys.path.insert(0, args.code)
    from llmtrace.analytics import anomalies
    from llmtrace.analytics.filters import Filter
    from llmtrace.store.client import connect

    end = args.end.replace(tzinfo=timezone.utc) if args.end.tzinfo is None else args.end
    client = connect(args.url, send_receive_timeout=3600)
    recorder = Recorder(client)
    anomalies.detect(recorder, Filter.last(timedelta(days=args.days), now=end))
    print(f"code {args.code}, {args.days} d ending {end:%Y-%m-%d %H:%M} UTC: {len(recorder.queries)} queries")
    print(f"{'#':>2} {'query':<34}{'server CPU s':>13}{'est. rows read':>15}{'rows out':>10}{'load':>6}")
    total = 0.0
    settings = {"max_threads": args.max_threads} if args.max_threads else None
    for i, (sql, params) in enumerate(recorder.queries, 1):
        cpus = []
        for _ in range(args.runs):
            before = server_cpu(args.server_pid)
            result = client.query(sql, parameters=params, settings=settings)
            cpus.append(server_cpu(args.server_pid) - before)
        cpu = statistics.median(cpus)
        total += cpu
        print(
            f"{i:>2} {label(sql)[:34]:<34}{cpu:>13.2f}{estimate(client, sql, params):>15,}"
            f"{len(result.result_rows):>10,}{os.getloadavg()[0]:>6.1f}",
            flush=True,
        )
        if args.show:
            print(sql)
    print(f"   {'sum of medians':<34}{total:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

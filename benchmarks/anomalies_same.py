"""Whether two versions of the detector give the same anomalies on a kept store, and their CPU.

Runs ``anomalies.detect`` over the last 24 h and 7 d (windows ending ``--end``) with the
``llmtrace`` package of ``--code`` (default: this checkout; another checkout, e.g. a
``git worktree`` of an older commit, times and lists that version), prints per run the server's
CPU (``--server-pid``), this process's CPU and the load, and writes the anomalies as rows (kind,
level, series, metric, start, end, score / observed / expected / events / trials to 6 significant
digits, severity, direction, points, example traces, change) to ``--out``; ``--compare`` names
another version's file and reports whether the lists are identical.

    python benchmarks/anomalies_same.py --url http://127.0.0.1:8123 --server-pid PID \\
        --end 2026-12-05T06:50 --code /tmp/main-checkout --out old.json
    python benchmarks/anomalies_same.py --url ... --server-pid PID --end ... --out new.json --compare old.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _sig(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def rows(report: Any) -> list[list[Any]]:
    """The anomalies as comparable rows, sorted."""
    return sorted(_row(a) for a in report.anomalies)


def _row(a: Any) -> list[Any]:
    numbers = [_sig(x) for x in (a.score, a.observed, a.expected, a.events, a.trials)]
    where = [a.kind, a.level, json.dumps(a.series, sort_keys=True), a.metric, a.start.isoformat(), a.end.isoformat()]
    return [*where, *numbers, a.severity, a.direction, a.points, list(a.trace_ids), a.change]


def server_cpu(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the store's ClickHouse HTTP URL (an llmtrace server)")
    parser.add_argument("--server-pid", type=int, help="the server's pid, to report its CPU")
    parser.add_argument("--end", type=datetime.fromisoformat, required=True, help="windows end here (UTC)")
    parser.add_argument("--code", default=str(ROOT), help="checkout whose llmtrace package is timed")
    parser.add_argument("--runs", type=int, default=3, help="runs per window (default 3)")
    parser.add_argument("--out", help="write the anomalies here (JSON)")
    parser.add_argument("--compare", help="another version's --out file: are the anomalies identical?")
    parser.add_argument(
        "--days", type=int, nargs="+", default=[1, 7], help="window lengths in days (default 1 7; 24h and 7d)"
    )
    parser.add_argument(
        "--huge-pages", action="store_true", help="keep transparent huge pages on (the CLI and dashboard turn them off)"
    )
    args = parser.parse_args()
    sys.path.insert(0, args.code)
    if not args.huge_pages:  # as `llmtrace anomalies` and the dashboard run (llmtrace._process; older checkouts too)
        import ctypes

        ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
    from llmtrace.analytics import anomalies
    from llmtrace.analytics.filters import Filter
    from llmtrace.store.client import connect

    end = args.end.replace(tzinfo=timezone.utc) if args.end.tzinfo is None else args.end
    client = connect(args.url, send_receive_timeout=3600)
    found: dict[str, list[list[Any]]] = {}
    print(f"code {args.code}, windows end {end:%Y-%m-%d %H:%M} UTC, huge pages {'on' if args.huge_pages else 'off'}")
    for name, days in ((f"{d}d" if d != 1 else "24h", d) for d in args.days):
        for run in range(args.runs):
            server, own, wall = server_cpu(args.server_pid), time.process_time(), time.perf_counter()
            report = anomalies.detect(client, Filter.last(timedelta(days=days), now=end))
            server, own = server_cpu(args.server_pid) - server, time.process_time() - own
            print(
                f"{name} run {run + 1}: server CPU {server:.2f} s, own CPU {own:.2f} s, "
                f"wall {time.perf_counter() - wall:.2f} s, "
                f"load {os.getloadavg()[0]:.1f}, {len(report.anomalies)} anomalies",
                flush=True,
            )
        found[name] = rows(report)
    if args.out:
        Path(args.out).write_text(json.dumps(found, indent=1))
    if args.compare:
        other = json.loads(Path(args.compare).read_text())
        for name, listed in found.items():
            same = other.get(name) == json.loads(json.dumps(listed))
            print(f"{name}: {len(listed)} anomalies, {'identical to' if same else 'DIFFERENT from'} {args.compare}")
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long ``llmtrace compare`` and a history re-pricing take, on embedded ClickHouse (chDB).

Measured 2026-12-04 on the shared 2-core machine, 1M calls (chDB runs in this process, so the
process's CPU time is the queries' CPU time; wall time is what a user waits, CPU the load-free part):

* 16:30, load 12-14: compare median CPU 0.79 s, wall 2.39 s of 5 (wall 1.22-4.05 s). Per query
  CPU/wall: scores 0.43-0.56 / 0.68-2.50, stats 0.11-0.19 / 0.12-0.56, quantiles 0.07-0.10,
  finish 0.07. Re-pricing 653k calls and both rollups 20.4 s.
* At load 5-7 the same compare took CPU 0.69-0.86 s, wall 0.91-0.96 s (no compare change between).
* The scores query (sided calls grouped per trace, joined to llm_scores) is ~60% of the CPU.
  Tried and not faster in CPU (same answers): one GROUP BY over calls UNION ALL scores (0.49 vs
  0.46), span join + trace join on 'loose' scores (0.48), side bitmasks per span and per trace
  (0.54), a per-trace "all calls on one side" shortcut (0.75 vs 0.66), parallel_hash (0.50),
  full_sorting_merge (0.78), stats and finish in one GROUPING SETS pass (0.24 vs 0.20). A join
  on the trace's side mask alone would take ~0.33 but loses the per-span rule for scores on a
  call. Earlier: 8.1 s before the scores join moved to id hashes.

Loads the canary demo (:mod:`llmtrace.demo.canary`, three releases side by side) with
``--calls`` calls into a temporary chDB directory, then prints the median of 3 runs of
``compare`` (v2.0.0 against v2.1.0: two thirds of the calls) and the time of one re-pricing that
rewrites every call of the canary's model.

    python benchmarks/compare.py                  # 1M calls over 3 days
    python benchmarks/compare.py --calls 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llmtrace.analytics.compare as compare  # noqa: E402
from llmtrace.analytics.filters import Filter  # noqa: E402
from llmtrace.demo import canary  # noqa: E402
from llmtrace.store import prices  # noqa: E402
from llmtrace.store.chdb_client import ChdbClient  # noqa: E402
from llmtrace.store.migrations import apply_migrations, client_runner  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    scenario = dataclasses.replace(canary.DEMO, calls=args.calls, hours=72).dated()
    with tempfile.TemporaryDirectory() as directory:
        client = ChdbClient.open(directory)
        try:
            apply_migrations(client_runner(client))
            started = time.perf_counter()
            canary.insert(client, scenario)
            print(f"loaded {args.calls:,} calls in {time.perf_counter() - started:.1f} s")
            f = Filter(start=scenario.start, end=scenario.end)
            print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            walls, cpus = [], []
            for _ in range(5):
                with _per_query() as queries:
                    wall, cpu = time.perf_counter(), _cpu()
                    report = compare.compare(client, "release=v2.0.0", "release=v2.1.0", f)
                    walls.append(time.perf_counter() - wall)
                    cpus.append(_cpu() - cpu)
                split = ", ".join(f"{name} {c:.2f}/{w:.2f}" for name, c, w in queries)
                print(f"  compare: cpu {cpus[-1]:.2f} s, wall {walls[-1]:.2f} s (per query cpu/wall: {split})")
            flagged = ", ".join(f"{r.metric} {r.verdict}" for r in report.with_verdict("worse", "better", "changed"))
            print(f"compare: median cpu {statistics.median(cpus):.2f} s, wall {statistics.median(walls):.2f} s "
                  f"of 5 ({flagged})")  # fmt: skip
            print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            started = time.perf_counter()
            done = prices.apply_prices(client, [{"model": scenario.model, "input_mtok": 0.3, "output_mtok": 1.2}])
            print(f"re-pricing {done.calls:,} calls and the rollups: {time.perf_counter() - started:.1f} s")
        finally:
            client.close()
    return 0


def _cpu() -> float:
    """This process's CPU seconds: chDB runs in it, so its query threads count too."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _per_query() -> Iterator[list[tuple[str, float, float]]]:
    """(query, cpu s, wall s) of every query compare runs, named by what it computes."""
    queries: list[tuple[str, float, float]] = []
    original = compare.frame

    def timed(client: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), _cpu()
        result = original(client, sql, *args, **kwargs)
        name = next((n for key, n in _NAMES if key in sql), "other")
        queries.append((name, _cpu() - cpu, time.perf_counter() - wall))
        return result

    compare.frame = timed
    try:
        yield queries
    finally:
        compare.frame = original


_NAMES = (("quantilesExactIf", "quantiles"), ("llm_scores", "scores"), ("AS reason", "finish"), ("varSamp", "stats"))


if __name__ == "__main__":
    sys.exit(main())

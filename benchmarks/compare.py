"""How long ``llmtrace compare`` and a history re-pricing take, on embedded ClickHouse (chDB).

Measured 2026-12-04 on the shared 2-core machine (load average 13-16 from other jobs), 1M calls:
compare median 4.1 s (was 8.1 s before the scores join on id hashes; 1.0-1.8 s at load ~11 on the
same data), re-pricing 653k calls and both rollups 9.4 s.

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
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmtrace.analytics import compare  # noqa: E402
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
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                report = compare.compare(client, "release=v2.0.0", "release=v2.1.0", f)
                runs.append(time.perf_counter() - started)
            flagged = ", ".join(f"{r.metric} {r.verdict}" for r in report.with_verdict("worse", "better", "changed"))
            print(f"compare: median {statistics.median(runs):.2f} s of 3 ({flagged})")
            started = time.perf_counter()
            done = prices.apply_prices(client, [{"model": scenario.model, "input_mtok": 0.3, "output_mtok": 1.2}])
            print(f"re-pricing {done.calls:,} calls and the rollups: {time.perf_counter() - started:.1f} s")
        finally:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""False alarms of ``llmtrace compare`` on A/A canaries, judged again and again (the whole path:
SQL statistics, every metric, Bonferroni, always-valid intervals).

Each seed loads a canary whose two releases are drawn from the same distributions
(:mod:`llmtrace.demo.canary`, no injected change) and compares them at ``--looks`` cumulative
windows; a seed is a false alarm if any look gives any metric a verdict. The share of such seeds
should stay below alpha (0.05).

    python benchmarks/compare_aa.py --seeds 40 --looks 6 --calls 6000
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmtrace.analytics import compare  # noqa: E402
from llmtrace.analytics.filters import Filter  # noqa: E402
from llmtrace.demo import canary  # noqa: E402
from llmtrace.store.chdb_client import ChdbClient  # noqa: E402
from llmtrace.store.migrations import apply_migrations, client_runner  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--looks", type=int, default=6)
    parser.add_argument("--calls", type=int, default=6000)
    args = parser.parse_args()
    started = time.perf_counter()
    alarms, metrics = 0, 0
    with tempfile.TemporaryDirectory() as directory:
        client = ChdbClient.open(directory)
        try:
            apply_migrations(client_runner(client))
            for seed in range(args.seeds):
                service = f"aa-{seed}"
                aa = dataclasses.replace(canary.DEMO, arms=(canary.Arm("a"), canary.Arm("b")), calls=args.calls,
                                         seed=100 + seed, service=service).dated()  # fmt: skip
                canary.insert(client, aa)
                flagged = set()
                for look in range(1, args.looks + 1):
                    end = aa.start + timedelta(hours=aa.hours * look / args.looks)
                    report = compare.compare(
                        client, "release=a", "release=b", Filter(aa.start, end, services=(service,))
                    )
                    metrics = len(report.results)
                    flagged |= {r.metric for r in report.with_verdict("worse", "better", "changed")}
                alarms += bool(flagged)
                if flagged:
                    print(f"seed {seed}: {sorted(flagged)}")
        finally:
            client.close()
    took = time.perf_counter() - started
    print(f"A/A reports with any verdict at any of {args.looks} looks: {alarms} of {args.seeds} "
          f"({alarms / args.seeds:.1%}; alpha 5% over {metrics} metrics) in {took:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

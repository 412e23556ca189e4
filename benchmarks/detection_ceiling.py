"""The recall of an oracle judging each incident on the harness's own yardstick (its effect size).

    python benchmarks/detection_ceiling.py --runner detection_v10 --seeds 1000-1009
    python benchmarks/detection_ceiling.py --runner detection_v9 --seeds 900-909 --stores /work/stores-v9

Issue #12 asks for recall >= 0.95 on incidents whose effect is >= 3 normal variations, with
<= 0.5 false episodes per series per week. The harness measures "normal variation" as the spread
of the incident window's statistic over fresh draws of the generator's traffic (its noise too).
This asks what that yardstick allows. For every eligible incident of a judge (the harness's rule:
>= 10 minutes, size >= 3 and >= 10 extra events for counts) it draws the same paired replicates the
harness sizes it with (``replicates``: the incident's window, its first 2 hours at most, fresh
noise each, with and without the incident) and asks in how many of them the window crosses a
threshold of ``z`` normal variations in the incident's direction: the recall of an oracle told
where and how long each incident is, judging it against that spread.

The threshold such an oracle may use follows from the false-alarm budget: a window without
incident crosses ``z`` with the normal tail probability, and a week holds 2,016 five-minute steps
per series and metric direction; with 8 metric directions, 8 x 2,016 x tail(z) false windows per
series-week (independent windows: fewer than a scan tests). At z = 4 that is 0.51: the budget.

It is a yardstick, not a bound: where a generator's noise is shared by neighbouring hours (v10's
log-rate process has ~1 h of memory), a detector that compares a window with the hours around it
sees less of that noise than the yardstick counts, and can find incidents of 3-4 "sd" the oracle
never does (v10: 3 of 8 volume drops of that size); how much depends on how the generator's noise
is correlated in time.

With ``--stores`` (a runner's kept stores) the detector's own finds are joined in, per kind.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h

from llmtrace.analytics.tails import nbinom_cdf, nbinom_sf

THRESHOLDS = (3.0, 3.5, 4.0, 4.5, 5.0)
WINDOWS_PER_WEEK = 7 * 24 * 12  # five-minute steps
DIRECTIONS = 8  # metric families judged upwards (errors, latency, TTFT, cost, tokens, empty, truncation) + calls down


def tail(z: float) -> float:
    """One-sided normal tail probability."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def oracle(b: h.Bench, sc: Any, inc: Any, reps: int, exact: bool = False) -> dict[str, Any]:
    """The incident's size, extra events and, per threshold, the share of replicates whose window
    crosses it in the incident's direction."""
    base, hit = h.replicates(b, sc, inc, max(reps, b.reps))
    size, extra, _ = h.effect_of(b, inc.kind, base[: b.reps], hit[: b.reps])  # the harness's own draws
    crossed = crossings(b, inc, base, hit, exact)
    minutes = 120 if inc.kind in b.gen.PERMANENT else inc.end - inc.start
    row = {"kind": inc.kind, "size": size, "extra": extra, "minutes": minutes, "seed": sc.seed, "start": inc.start}
    return {**row, "eligible": h.eligible(b, row), "crossed": crossed}


def crossings(b: h.Bench, inc: Any, base: np.ndarray, hit: np.ndarray, exact: bool = False) -> dict[float, float]:
    """Per threshold z, the share of paired replicates whose window crosses z spreads (of the
    window without the incident) in the incident's direction.

    ``exact``: a count's window crosses z where its tail under the window's own distribution
    without the incident (a negative binomial of the replicates' mean and variance, Poisson at
    least) is at most the normal tail at z. Counts of a few events are far from normal: 3 errors
    where 0.2 are usual are z = 5.6 by the harness's spread (at least 0.5) but a tail of 1e-3."""
    _, _, sd = h.effect_of(b, inc.kind, base, hit)
    good = ~np.isnan(base) & ~np.isnan(hit)
    if not good.any() or not math.isfinite(sd):
        return dict.fromkeys(THRESHOLDS, 0.0)
    sign = 1.0 if np.mean(hit[good] - base[good]) >= 0 else -1.0
    if exact and inc.kind in b.counted:
        mu, var = float(np.mean(base[good])), float(np.var(base[good]))
        r = mu * mu / (var - mu) if var > mu else 1e9
        counts = np.rint(hit[good]).astype(int).tolist()
        tails = np.array([nbinom_sf(k, mu, r) if sign > 0 else nbinom_cdf(k, mu, r) for k in counts])
        return {t: float(np.mean(tails <= tail(t))) for t in THRESHOLDS}
    z = sign * (hit[good] - np.mean(base[good])) / sd
    return {t: float(np.mean(z >= t)) for t in THRESHOLDS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", required=True, help="detection_v4 ... detection_v10")
    parser.add_argument("--seeds", required=True, help="e.g. 1000-1009 or 1000,1001")
    parser.add_argument("--reps", type=int, default=200, help="paired replicates per incident (harness: 40)")
    parser.add_argument("--stores", help="the runner's kept stores: join the detector's own finds")
    parser.add_argument("--exact-counts", action="store_true", help="counts crossing by their own tail (crossings)")
    args = parser.parse_args()
    runner = importlib.import_module(args.runner)
    b: h.Bench = runner.BENCH
    rows = []
    for seed in h.seeds(args.seeds):
        sc = b.gen.build(seed)
        found: dict[int, bool] = {}
        if args.stores:
            h.KEEP = args.stores
            res = h.run_seed(b, seed)
            found = {i: r["found"] for i, r in enumerate(res["rows"])}
        for i, inc in enumerate(sc.incidents):
            r = oracle(b, sc, inc, args.reps, args.exact_counts)
            r["found"] = found.get(i)
            rows.append(r)
        print(f"seed {seed}: {len(sc.incidents)} incidents, {sum(r['eligible'] for r in rows if r['seed'] == seed)} "
              "eligible", flush=True)  # fmt: skip
    report(rows, args.stores is not None)
    return 0


def report(rows: list[dict[str, Any]], joined: bool) -> None:
    el = [r for r in rows if r["eligible"]]
    print(f"\n{len(el)} eligible incidents of {len(rows)}; oracle recall at threshold z (share of replicates "
          "whose incident window crosses z):")  # fmt: skip
    head = "| kind | n | " + " | ".join(f"z={t:g}" for t in THRESHOLDS) + (" | detector |" if joined else " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in el:
        by[r["kind"]].append(r)
    for kind, part in [*sorted(by.items()), ("ALL", el)]:
        cells = [f"{np.mean([r['crossed'][t] for r in part]):.2f}" for t in THRESHOLDS]
        mine = f" {np.mean([bool(r['found']) for r in part]):.2f} |" if joined else ""
        print(f"| {kind} | {len(part)} | " + " | ".join(cells) + f" |{mine}")
    print("\nfalse windows per series-week an oracle pays at z (8 directions x 2,016 independent windows): "
          + ", ".join(f"z={t:g} {DIRECTIONS * WINDOWS_PER_WEEK * tail(t):.2f}" for t in THRESHOLDS))  # fmt: skip
    sizes = ((3, 4), (4, 5), (5, 6), (6, 10), (10, math.inf))
    print("oracle recall at z=4 by size: " + "; ".join(
        f"[{lo:g}, {hi:g}) {np.mean([r['crossed'][4.0] for r in el if lo <= r['size'] < hi]):.2f} "
        f"({sum(lo <= r['size'] < hi for r in el)})"
        for lo, hi in sizes if any(lo <= r["size"] < hi for r in el)))  # fmt: skip
    if joined:
        print("detector recall by size: " + "; ".join(
            f"[{lo:g}, {hi:g}) {np.mean([bool(r['found']) for r in el if lo <= r['size'] < hi]):.2f}"
            for lo, hi in sizes if any(lo <= r["size"] < hi for r in el)))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())

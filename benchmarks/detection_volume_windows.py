"""What the volume test saw around one incident (or any window) of a kept judge store: diagnosis.

    python benchmarks/detection_volume_windows.py --runner detection_v10 --stores /work/stores-v10 \\
        --seed 1005 --incident 1
    python benchmarks/detection_volume_windows.py --runner detection_v9 --stores /work/stores-v9 \\
        --seed 902 --series doc-extract/gpt-4o-mini --at "Mon 03:55" --minutes 180 --rises

``--incident N``: the seed's N-th incident of ``--kind`` (default volume_drop), as its generator
placed it. ``--series``/``--at``/``--minutes``: any span of the judged week (a false episode's).
For each row holding the series (its service x model and its service) and each scale, the best
score among the windows overlapping the span (every window the gates let through is scored,
passing or not), and at that window: calls ``x``, the expectations a fall (``low``) and a rise
(``high``) are judged against for both trailing baselines, their unguarded middles, the baselines'
calls ``y``, the clustering factor ``phi`` and the negative binomial size ``r`` (1/r = the
expectation's squared relative spread). Session 18 found the falls' lower-of-two-baselines bias
this way (v10 seed 1005, incident 1: 389 expected calls where the middle held 536).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h

from llmtrace.analytics import anomalies_scan as scan


def _span(args: argparse.Namespace, sc: Any) -> tuple[set[tuple[str, str]], datetime, datetime]:
    if args.series:
        service, model = args.series.split("/", 1)
        day, clock = args.at.split()
        t = sc.end - timedelta(days=7)
        while t.strftime("%a") != day:
            t += timedelta(days=1)
        start = t.replace(hour=int(clock[:2]), minute=int(clock[3:5]), second=0, microsecond=0)
        return {(service, model)}, start, start + timedelta(minutes=args.minutes)
    inc = [i for i in sc.incidents if i.kind == args.kind][args.incident]
    print("incident:", inc)
    return {(sc.series[j].service, sc.series[j].model) for j in inc.series}, sc.at(inc.start), sc.at(inc.end)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", required=True, help="detection_v7 ... detection_v10 (its generator is used)")
    parser.add_argument("--stores", required=True, help="the runner's kept stores (--stores of its run)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--incident", type=int, default=0, help="the seed's N-th incident of --kind")
    parser.add_argument("--kind", default="volume_drop")
    parser.add_argument("--series", help="service/model: a span instead of an incident")
    parser.add_argument("--at", help='with --series: "Mon 03:55", a day of the judged week')
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rises", action="store_true", help="rises instead of falls")
    args = parser.parse_args()

    gen = importlib.import_module(args.runner).gen
    sc = gen.build(args.seed)
    wanted, t0, t1 = _span(args, sc)
    print(f"span {t0:%a %H:%M} -> {t1:%a %H:%M} UTC, series {sorted(wanted)}")
    found = [d for d in os.listdir(args.stores) if d.endswith(f"-{args.seed}") or d.endswith(f"{args.seed}")]
    if not found:
        raise SystemExit(f"no store of seed {args.seed} in {args.stores}")

    seen: list[tuple[int, Any, Any]] = []  # (width, summed counts, phi) per scale, in call order
    scores: dict[tuple[int, int, int], tuple[float, float]] = {}  # (scale, row, end) -> (score, r)
    side, flag = scan._volume_side, scan._flag_nb

    def watched_side(s: Any, judged: Any, width: int, up: bool, surged: Any, step: int, phi: Any) -> Any:
        if up == args.rises:
            seen.append((width, s, phi))
        return side(s, judged, width, up, surged, step, phi)

    def scored_flag(g: Any, e: Any, x: Any, mu: Any, r: Any, up: bool, *rest: Any) -> Any:
        if up == args.rises:
            bar, scan.VOLUME_MIN_SCORE = scan.VOLUME_MIN_SCORE, -1e9
            try:
                every = flag(g, e, x, mu, r, up, *rest)
            finally:
                scan.VOLUME_MIN_SCORE = bar
            for (row, end, score), size in zip(every, r, strict=True):
                scores[(len(seen) - 1, row, end)] = (score, float(size))
        return flag(g, e, x, mu, r, up, *rest)

    p, prep = h.watched_week(os.path.join(args.stores, found[0]), sc, watched_side, scored_flag)

    step = p.step
    b0 = int((t0 - p.history.start).total_seconds() // step)
    b1 = int((t1 - p.history.start).total_seconds() // step)
    offset = 0
    for name, data in prep.levels.items():
        for g, key in enumerate(data.groups):
            labels = dict(zip(data.level.keys, key, strict=True))
            if name in ("service,model", "service") and (
                (labels.get("service"), labels.get("model")) in wanted
                or (name == "service" and labels["service"] in {s for s, _ in wanted})
            ):
                _show(name, labels, offset + g, seen, scores, b0, b1, step)
        offset += len(data.groups)
    calls = [e for e in prep.episodes if e.metric == "calls" and e.first <= b1 and e.last >= b0]
    print("calls episodes over the span:", [(e.level, e.direction, e.first, e.last, round(e.score, 1)) for e in calls])
    return 0


def _show(
    name: str,
    labels: dict[str, str],
    row: int,
    seen: list[tuple[int, Any, Any]],
    scores: dict[tuple[int, int, int], tuple[float, float]],
    b0: int,
    b1: int,
    step: int,
) -> None:
    print(f"== {name} {labels}")
    for k, (width, s, phi) in enumerate(seen):
        ends = [e for e in range(b0, min(b1 + width + 6, s.x.shape[1])) if e - width + 1 <= b1]
        best = max(((scores[(k, row, e)][0], e) for e in ends if (k, row, e) in scores), default=None)
        e = best[1] if best else min(b0 + width - 1, s.x.shape[1] - 1)
        size = f" r {scores[(k, row, e)][1]:.1f}" if best else ""
        print(
            f"  {width * step // 60:4d} min  phi {phi[row]:.2f}  best {'-' if best is None else f'{best[0]:.2f}'}"
            f"  x {s.x[row, e]:.0f}  low {s.mu_low[0][row, e]:.0f}/{s.mu_low[1][row, e]:.0f}"
            f"  high {s.mu[0][row, e]:.0f}/{s.mu[1][row, e]:.0f}"
            f"  mid {s.mu_mid[0][row, e]:.0f}/{s.mu_mid[1][row, e]:.0f}"
            f"  y {s.y[0][row, e]:.0f}/{s.y[1][row, e]:.0f}  borrowed {bool(s.borrowed[row, e])}{size}"
        )


if __name__ == "__main__":
    sys.exit(main())

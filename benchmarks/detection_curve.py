"""What recall the detector can buy with false alarms: the same stores judged with its bars moved.

    python benchmarks/detection_curve.py --runner detection_v7 --seeds 700-709
    python benchmarks/detection_curve.py --runner detection_v8 --seeds 800-809

Each seed's store is filled once (:func:`detection_harness.store`); ``anomalies.detect`` then runs
once per variant with module constants of :mod:`llmtrace.analytics.anomalies_scan` replaced for that
run (``detect`` is re-run, not filtered by score: a lower bar also merges windows into longer
episodes, which filtering finished episodes by score would not show). Incidents are matched and
effect sizes computed as the runner does, on the default variant's episodes for the sizes; every
variant is judged against the same eligible incidents. The variants:

- ``VOLUME_MIN_SCORE`` (-log10 p of a ``calls`` window) and ``MIN_SCORE`` (rates, tails) moved;
- ``poisson``: volume judged without the expectation's own wobble (the negative binomial's size
  set to infinity, clustering kept): how much volume recall the seasonal expectation's error costs;
- ``phi=1``: volume judged without the clustering factor;
- ``falls' spread on the guarded expectation``, ``young: parent's shape only`` and ``silence always
  Poisson``: the volume changes of session 11 switched off one at a time (``SPREAD_ON_MID``,
  ``BORROW_BEST``, ``SILENCE_HABIT``), and the first two together.

``--stores DIR`` keeps each seed's store and the effect sizes (they depend on the generator alone) and
reuses them, so a detector change is judged again in ~6 s per seed instead of ~50.

Measured with this script on main 798fb8e's detector (02:59-03:12 UTC 2026-12-05, both runs at
once, niced, load 1.3-2.2 on 2 CPUs; ``volume kinds``: v7 volume_drop and runaway_loop, v8
volume_drop; ``unlabelled``: false episodes on no labelled benign change).

v7, seeds 700-709 (155 eligible incidents, 118.8 series-weeks; a tuning set since it judged session 9):

| variant | eligible | young | volume kinds | false / series-week | unlabelled |
|---|---|---|---|---|---|
| as shipped | 0.75 (116/155) | 0.69 (50/72) | 0.32 (11/34) | 1.14 | 0.10 |
| volume bar 3 | 0.83 (128/155) | 0.79 (57/72) | 0.68 (23/34) | 1.82 | 0.29 |
| volume bar 4 | 0.79 (122/155) | 0.74 (53/72) | 0.50 (17/34) | 1.36 | 0.13 |
| volume bar 6 | 0.74 (115/155) | 0.69 (50/72) | 0.29 (10/34) | 0.96 | 0.05 |
| volume bar 7 | 0.74 (115/155) | 0.69 (50/72) | 0.29 (10/34) | 0.89 | 0.05 |
| rate bar 5 | 0.77 (119/155) | 0.72 (52/72) | 0.32 (11/34) | 1.37 | 0.17 |
| rate bar 6 | 0.76 (118/155) | 0.71 (51/72) | 0.32 (11/34) | 1.21 | 0.11 |
| rate bar 8 | 0.74 (115/155) | 0.69 (50/72) | 0.32 (11/34) | 1.09 | 0.10 |
| poisson | 0.85 (131/155) | 0.81 (58/72) | 0.76 (26/34) | 3.02 | 0.32 |
| phi=1 | 0.77 (120/155) | 0.76 (55/72) | 0.44 (15/34) | 1.97 | 0.66 |

v8, seeds 800-809 (blind: written this session by an author who read neither the detector nor the
other generators; 232 eligible, 118.3 series-weeks):

| variant | eligible | young | volume kinds | false / series-week | unlabelled |
|---|---|---|---|---|---|
| as shipped | 0.88 (204/232) | 0.52 (12/23) | 0.21 (6/29) | 0.27 | 0.00 |
| volume bar 3 | 0.91 (212/232) | 0.70 (16/23) | 0.48 (14/29) | 0.68 | 0.12 |
| volume bar 4 | 0.90 (208/232) | 0.61 (14/23) | 0.34 (10/29) | 0.39 | 0.03 |
| volume bar 6 | 0.88 (203/232) | 0.52 (12/23) | 0.17 (5/29) | 0.20 | 0.00 |
| volume bar 7 | 0.88 (203/232) | 0.52 (12/23) | 0.17 (5/29) | 0.14 | 0.00 |
| rate bar 5 | 0.90 (208/232) | 0.57 (13/23) | 0.21 (6/29) | 0.41 | 0.13 |
| rate bar 6 | 0.90 (208/232) | 0.57 (13/23) | 0.21 (6/29) | 0.29 | 0.01 |
| rate bar 8 | 0.87 (202/232) | 0.52 (12/23) | 0.21 (6/29) | 0.27 | 0.00 |
| poisson | 0.94 (219/232) | 0.87 (20/23) | 0.72 (21/29) | 1.06 | 0.16 |
| phi=1 | 0.88 (204/232) | 0.52 (12/23) | 0.21 (6/29) | 0.27 | 0.00 |

What it says:
- Volume is where recall is (v7 0.32, v8 0.21 of volume incidents), and the bar buys it dearly: volume
  bar 4 gives v8 0.34 at 0.39 false per series-week (met <= 0.5), v7 0.50 at 1.36 (most of v7's false
  episodes are its recurring batch jobs); bar 3 v8 0.48 at 0.68.
- ``poisson`` (the expectation's own error left out) finds 0.72-0.76 of volume incidents at 1.06 /
  3.02 false: the spread the seasonal expectation is given, estimated per series from its own windows,
  is what hides volume incidents, more than the clustering factor (``phi=1``: v7 0.44 at 1.97 false,
  v8 unchanged) or the drop/spike gates (``VOLUME_DROP`` 0.5 -> 0.75 and ``VOLUME_SPIKE`` 1.8 -> 1.4
  changed no episode on v7 700-704 and v8 800-803, a first run of this idea by hand). A better seasonal
  expectation, whose smaller error is then earned, is where volume recall is.
- Rate bar 6 (from 7) adds 4 eligible incidents on v8 at +0.02 false, 2 on v7 at +0.07.
- No single bar reaches the issue's 0.95 at <= 0.5 false on either judge.

Session 11 (detector of branch s11-detector, kept stores, load 2-5; "as shipped" is the new detector):

| judge: eligible (volume, young), false | before | falls' spread on the middle | + young's best shape |
|---|---|---|---|
| v7 700-709 | 0.75 (11/34, 50/72), 1.09 | 0.77 (15/34, 52/72), 1.09 | 0.79 (17/34, 54/72), 1.09 |
| v8 800-809 | 0.88 (6/29, 12/23), 0.27 | 0.88 (7/29, 12/23), 0.29 | 0.89 (9/29, 14/23), 0.29 |

(eligible found: v7 116 -> 120 -> 122 of 155; v8 204 -> 205 -> 207 of 232.) Then the silence habit
(``SILENCE_HABIT``: a window without calls is not judged as Poisson at a minute of the hour where the
series went silent against >= 5 expected clusters on 3 occasions): **v7 false 1.09 -> 0.80** per
series-week (37 false drops off its hourly job ``etl-enrich``, which runs 10-20 minutes from the same
minute every hour), no finding changed on v7 or v8 (v8 0.89 at 0.29). The older judges, before -> after
all three: v6 600-604 unchanged (103/127, 0.46 false); v2 100-104 (``detection_v2.py``) 90 -> 91 of 107,
false 0.30 -> 0.17 per series-week. Volume bar 4 on top: v7 125/155 at 1.01, v8 210/232 at 0.43 (not
adopted: the blind judge's false alarms rise by half for 3 incidents).

Then the per-call bars from the last 24 *qualifying* hours within a week of hours with calls
(``anomalies_sql.THRESHOLD_LOOKBACK``; was: the qualifying ones among the last 24): **v7 false 0.80 ->
0.65** (the nightly job's tokens, cost and latency bars came from 1-2 trickle hours), eligible 122/155
unchanged; v8 207/232 at 0.29 unchanged; v6 600-604 103 -> 102/127, false 0.46 -> 0.44; v2 100-104
identical back to back (87/109, 0.17: v2's data follows the clock of the run, so its figures move
between runs hours apart; 91/107 at 07:40 UTC with the same detector).

Then rises held to the same hours of any previous days while fewer than two of the same type
exist (``RISE_ANY_DAY``; the store's first weekend): **v7 false 0.65 -> 0.46** (a nightly job's run on
Saturday and Sunday was held to the trickle before it), eligible 122 -> 121 of 155; v8 207/232, false
0.29 -> 0.23; v6 102 -> 101 of 127 at 0.44; v2 100-104 back to back 87 -> 86 of 109, false 0.17 -> 0.15.
Each judge but v8 loses one volume incident (a rise on a first weekend now expected at weekday level).

Tried and dropped, same stores: the spread measured on the unguarded middle for rises too (v7 124/155
but 1.25 false: daily tenant syncs became spikes); a spread per hour of the day, shrunk towards the
series' whole-day one by 24 windows (v7 119/155 at 1.11, v8 205/232 at 0.32: fewer false alarms on the
ramps, but the calm hours' drops it was for were not found more often); a flat shape among a young
series' candidates and a young series' spread from its borrowed windows alone (no change on either
judge); a spread per minute of the hour for windows under an hour (v7 -2 found, -0.01 false);
remembering the history's flagged windows for the recurrence rule (no change on either judge;
measured with the history's windows also counted in the spread: v7 118/155 at 0.73, v8 206/232 at
0.25); longer volume baselines (6, 12, 24 h instead of 3 h: the expectation's median error at the hour
scale 0.20, 0.20, 0.24 against 0.20 on v8 seed 800: the baseline's level is not what is uncertain).
What limits volume on v8: its traffic carries an independent lognormal wobble of 0.12 per hour
(``detection_scenarios_v8.noise_of``), and the expectation's error at the hour scale is ~0.17 (median
over 48 series-seeds), near the ~0.16 that a 3-hour level and a median of 5 previous days can reach
with that wobble; the missed drops are 3-6 standard deviations of their window, scores 1.5-4.6
against the bar of 5.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h

from llmtrace.analytics import anomalies, anomalies_levels
from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.filters import Filter


def _infinite_size(x: np.ndarray, mu: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.full(x.shape[0], 1e9)


def _no_clustering(calls: np.ndarray, step: int, parent: float | None = None) -> np.ndarray:
    return np.ones(calls.shape[0])


VARIANTS: dict[str, dict[str, Any]] = {
    "as shipped": {},
    **{f"volume bar {bar:g}": {"VOLUME_MIN_SCORE": bar} for bar in (3.0, 4.0, 6.0, 7.0)},
    **{f"rate bar {bar:g}": {"MIN_SCORE": bar} for bar in (5.0, 6.0, 8.0)},
    "poisson": {"_nb_size": _infinite_size},
    "phi=1": {"clustering": _no_clustering},
    "falls' spread on the guarded expectation": {"SPREAD_ON_MID": False},
    "young: parent's shape only": {"BORROW_BEST": False},
    "before (both off)": {"BORROW_BEST": False, "SPREAD_ON_MID": False},
    "silence always Poisson": {"SILENCE_HABIT": False},
    "rises: same-type days only": {"RISE_ANY_DAY": False},
    # the counts from every call of llm_calls (exact thresholds) instead of the 5-minute rollup's bins
    "counts from raw calls": {"levels.rollup_answers": lambda by, step: False},
}


def target(name: str) -> tuple[Any, str]:
    """The module and attribute a variant's key names: ``levels.<name>`` is ``anomalies_levels``'s."""
    module, _, attr = name.rpartition(".")
    return {"": scan, "scan": scan, "levels": anomalies_levels}[module], attr


@contextlib.contextmanager
def replaced(**constants: Any) -> Iterator[None]:
    """``anomalies_scan``'s module attributes (``levels.<name>``: ``anomalies_levels``'s) replaced for
    one ``detect`` (read at run time)."""
    targets = {name: target(name) for name in constants}
    old = {name: getattr(module, attr) for name, (module, attr) in targets.items()}
    for name, value in constants.items():
        setattr(*targets[name], value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(*targets[name], value)


def judge_seed(
    bench: h.Bench, seed: int, keep: str | None = None, variants: dict[str, dict[str, Any]] = VARIANTS
) -> dict[str, dict[str, float]]:
    """Per variant: eligible incidents found (all, young, volume kinds) and false episodes."""
    sc = bench.gen.build(seed)
    episodes: dict[str, list[Any]] = {}
    with h.store(bench, sc, keep=keep) as (client, _):
        week = Filter(start=sc.end - timedelta(days=7), end=sc.end)
        for name, constants in {"as shipped": {}, **variants}.items():
            with replaced(**constants):
                episodes[name] = anomalies.detect(client, week, now=sc.end).episodes()
    rows = [h.row(bench, sc, inc, episodes["as shipped"]) for inc in sc.incidents]
    judged = [(inc, r) for inc, r in zip(sc.incidents, rows, strict=True) if h.eligible(bench, r)]
    out: dict[str, dict[str, float]] = {}
    for name, found in episodes.items():
        hit = [any(h.finds(a, sc, inc, bench.family, bench.gen.PERMANENT) for a in found) for inc, _ in judged]
        false = [a for a in found if not h.explained(bench, a, sc)]
        out[name] = {
            "eligible": len(judged),
            "found": sum(hit),
            "young": sum(1 for (_, r) in judged if r["young"]),
            "young_found": sum(f for f, (_, r) in zip(hit, judged, strict=True) if r["young"]),
            "volume": sum(1 for (_, r) in judged if r["kind"] in bench.gen.VOLUME_KINDS),
            "volume_found": sum(
                f for f, (_, r) in zip(hit, judged, strict=True) if r["kind"] in bench.gen.VOLUME_KINDS
            ),
            "false": len(false),
            "unlabelled": sum(1 for a in false if h.cause(bench, sc, a).startswith("unlabelled")),
            "series_weeks": h.series_weeks(sc, bench.gen.MINUTES),
        }
    return out


def _ratio(found: float, total: float) -> str:
    return f"{found / total:.2f} ({found:.0f}/{total:.0f})" if total else "-"


def report(totals: dict[str, dict[str, float]]) -> None:
    print("| variant | eligible | young | volume kinds | false / series-week | unlabelled |")
    print("|---|---|---|---|---|---|")
    for name, t in totals.items():
        weeks = t["series_weeks"] or math.nan
        print(
            f"| {name} | {_ratio(t['found'], t['eligible'])} | {_ratio(t['young_found'], t['young'])} "
            f"| {_ratio(t['volume_found'], t['volume'])} | {t['false'] / weeks:.2f} | {t['unlabelled'] / weeks:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="detection_v7", help="a runner module: detection_v6, _v7, _v8")
    parser.add_argument("--seeds", default="700-701", help="e.g. 700-709 or 700,701")
    parser.add_argument("--stores", help="keep each seed's store (and effect sizes) here and reuse them")
    parser.add_argument("--variants", nargs="*", help="only these variants (names as in the table)")
    args = parser.parse_args()
    bench: h.Bench = importlib.import_module(args.runner).BENCH
    variants = {k: v for k, v in VARIANTS.items() if args.variants is None or k in args.variants}
    effects = os.path.join(args.stores, "effects.pickle") if args.stores else None
    if effects:
        os.makedirs(args.stores, exist_ok=True)
        h.load_effects(effects)
    totals: dict[str, dict[str, float]] = {}
    for seed in h.seeds(args.seeds):
        started = time.perf_counter()
        judged = judge_seed(bench, seed, args.stores, variants)
        if effects:
            h.save_effects(effects)
        for name, counts in judged.items():
            into = totals.setdefault(name, dict.fromkeys(counts, 0.0))
            for key, value in counts.items():
                into[key] += value
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    report(totals)


if __name__ == "__main__":
    main()

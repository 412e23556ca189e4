"""Anomaly detection judged on the held-out v4 generator (``detection_scenarios_v4``), many seeds.

    python benchmarks/detection_v4.py --seeds 400-409 [--verbose]

v4 was written apart from the detector (whose code its author never read) as the judge nobody
tuned on. Per seed: nine days of a stranger's production (two of history, then the judged
week: time zones, cron bursts, rate limits with retried 429s, model migrations, prompt
releases, a holiday; see the generator's docstring) go as spans into ``otel_traces`` of a fresh
chDB store; ``anomalies.detect`` runs over the week with its defaults (``by="auto"``, call-level
findings on) and ``now`` = the end; its episodes are matched to the labelled incidents with
``detection_v3``'s matching (metric family, time [start - 5 min, end + 30 min] or [start - 5 min,
start + 6 h] for permanent shifts, a compatible series; app-wide episodes fit everything). An
episode is *false* when it neither finds nor is explained by an incident (``CONSEQUENCES``: a
429 storm's retries raise volume, failed calls have no tokens, a latency incident also delays
the first token, ...). *Benign alerts* are false episodes overlapping a labelled benign change
on its series.

Effect sizes come from the generator itself, never from the detector: ``REPS`` paired Monte
Carlo replicates of the incident window (its first 2 hours at most; permanent shifts: 2 hours)
drawn with :func:`detection_scenarios_v4.calls` and fresh normal noise (hourly latency and rate
wobble, gamma volume factor, retries), with and without the incident. The window statistic is
the count of events (failed calls for 429 storms and 5xx bursts, as ``error_rate`` counts
them together; cut or empty answers), the count of calls (volume), the log p95
of successful durations or streams' TTFT, or the log mean output tokens or cost per successful
call. *size* = mean paired shift / standard deviation of the statistic without the incident;
*extra* = mean paired shift of the count (rates, volume). *Eligible* (the issue's target):
>= 10 minutes (permanent shifts count as 120), size >= 3 and, for rates and volume, >= 10 extra
(or missing) events. *Young*: the series is < 2 days old at the incident (new series and
migrations get incidents 12-48 h after their first call).

Results, seeds 400-409 (``--seeds 400-409``), generator at ebfa443, detector at main 04a5881 (13:47
UTC 2026-12-04; the working tree of 13:22, main 23e30d1 + 6efcde9, gave the same episodes on every
seed); 420 incidents, 231 eligible, 118.3 series-weeks, 0.42-1.73M calls per seed (9 days stored):

| kind          |            all |       eligible | eligible young |
|---------------|----------------|----------------|----------------|
| latency       |   0.65 (34/52) |   0.89 (24/27) |     0.83 (5/6) |
| latency_ramp  |   0.51 (19/37) |   0.83 (15/18) |     1.00 (1/1) |
| ttft          |   0.57 (23/40) |   0.71 (15/21) |     0.60 (3/5) |
| errors_429    |   0.69 (27/39) |   0.96 (22/23) |     1.00 (4/4) |
| errors_5xx    |   0.62 (24/39) |   0.95 (18/19) |     1.00 (2/2) |
| truncation    |   0.48 (22/46) |   0.95 (19/20) |     1.00 (4/4) |
| empty_output  |   0.62 (21/34) |   1.00 (18/18) |     1.00 (5/5) |
| volume_drop   |   0.26 (11/43) |    0.42 (8/19) |     0.25 (1/4) |
| volume_spike  |   0.46 (16/35) |   0.63 (12/19) |     0.50 (2/4) |
| tokens_shift  |   0.72 (21/29) |   0.87 (20/23) |     1.00 (5/5) |
| cost          |   0.85 (22/26) |   0.92 (22/24) |     0.67 (4/6) |
| ALL           | 0.57 (240/420) | 0.84 (193/231) |   0.78 (36/46) |

By effect size (>= 10 min, sd units): [0, 3) 0.15 (11/72), [3, 6) 0.41 (23/56), [6, 10) 0.73 (44/60),
>= 10 0.94 (131/139); rates and volume with size >= 3 by extra events: [0, 10) 0.21, [10, 30) 0.79
(30/38), >= 30 0.84 (67/80). By duration (all sizes): < 10 min 0.33, 10-30 0.60, 30-60 0.52, 60-120
0.71, permanent shifts 0.78. By scope (eligible): series 0.80, service 0.89, provider 1.00 (17/17);
overlapping incidents 0.81. Time to detect (eligible): median 11 min, p90 43 min.
False episodes: 690 = **5.83 per series per week**, of which 49 (0.41 per series-week) overlap no
labelled benign change; the rest are alerts on benign changes (one episode may touch several):
cron 513 (``calls`` down between bursts, ``error_rate`` up at the provider level from the bursts'
rate-limit 429s), prompt_release 128, release 106, weekend 88, holiday 54, migration 42,
new_series 40, evening_peak 12, morning_rise 3. ``detect``: median 5.5 s wall / 2.7 s CPU over a
median 0.65M calls (1.4-3.6 s in a rerun at 14:01, same episodes). A whole seed (insert, detect,
effect sizes) took 19-58 s in that rerun (all ten: 5 min), 29-47 s at a load average of ~5 on the
2-core machine, but 122-238 s at ~20 (seed 402, 1.73M calls: the insert through
``otel_traces`` and its views dominates, 190 s of it at that load).

Worst eligible misses: volume spikes on a whole consumer service (recipes, x3.4 for 54 min, size
27.7, 1,010 extra calls; x2.2 on a young series), a x2.2 output-token shift (recipes/claude-haiku,
size 12.6), a x1.8 spike on a 31/min office series on a Sunday night, a -90% drop for 84 min on
crm-assist/gpt-4o-mini on a Saturday morning (size 9.1), truncation on a rate-limited batch series.
Caveat: the old series have 2 days of history before the judged week; the detector's seasonal
profile now reads up to 8 days, so its weekly profile is thinner here than in a long-running store.
Rerun at main a179f3a (minute-of-hour volume shape + recurring-window filter), 16:40-17:29 UTC,
load average 15-35 (two halves in parallel): eligible 0.82 (190/231; young 0.78, 36/46),
false 275 over 118.3 series-weeks = 2.32 per series per week (was 5.83; 0.41 on no benign change),
cron alerts 105 (was 513); volume_drop eligible 7/19, volume_spike 11/19, ttft 15/21; TTD median
11 min, p90 42-49 min. Per-half raw output is not kept in the repository.
Rerun at main db59dd6 (rates: minute-of-hour baseline 8caffb7 and same hours of previous days
a3dd8bc; volume falls capped by previous days' same hours and volume score 5 fba513e; change
labels db59dd6), 19:55-19:57 UTC, load ~12, stores inserted once and detect rerun: eligible 0.81
(188/231; young 0.72, 33/46); latency 24/27, latency_ramp 15/18, ttft 16/21, errors_429 22/23,
errors_5xx 17/19, truncation 18/20, empty_output 18/18, volume_drop 7/19, volume_spike 12/19,
tokens_shift 17/23, cost 22/24. False 196 of 593 = 1.66 per series-week (was 2.32; 0.33 on no
benign change): cron 38, release 36, prompt_release 34, holiday 22, weekend 16, migration 10; 33
of the 196 carry a change label (``Anomaly.change``: a release or prompt version first seen on the
series within the hour before), and would be 1.38 per series-week if a labelled change were not
counted as false. TTD median 11, p90 51 min.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_scenarios_v4 as gen

UP, DOWN = h.UP, h.DOWN
LAT_UP, ERR_UP = ("latency_p95_ms", UP), ("error_rate", UP)
FAMILY = {
    "latency": {LAT_UP},
    "latency_ramp": {LAT_UP},
    "ttft": {("ttft_p95_ms", UP)},
    "errors_429": {ERR_UP},
    "errors_5xx": {ERR_UP},
    "truncation": {("truncation_rate", UP)},
    "empty_output": {("empty_output_rate", UP)},
    "volume_drop": {("calls", DOWN)},
    "volume_spike": {("calls", UP)},
    "tokens_shift": {("tokens_per_call", UP), ("cost_per_call_usd", UP)},
    "cost": {("cost_per_call_usd", UP)},
}
_NO_ANSWER = {("tokens_per_call", DOWN), ("cost_per_call_usd", DOWN), ("empty_output_rate", UP)}
CONSEQUENCES = {
    "latency": {("ttft_p95_ms", UP)},
    "latency_ramp": {("ttft_p95_ms", UP)},
    "ttft": {LAT_UP},
    "errors_429": _NO_ANSWER | {("calls", UP), ("latency_p95_ms", DOWN)},
    "errors_5xx": _NO_ANSWER | {LAT_UP, ("latency_p95_ms", DOWN)},
    "truncation": {("tokens_per_call", UP), LAT_UP, ("cost_per_call_usd", UP)},
    "empty_output": {("tokens_per_call", DOWN), ("cost_per_call_usd", DOWN), ("latency_p95_ms", DOWN)},
    "volume_spike": {ERR_UP},  # rate-limited series answer a surge with 429s
    "tokens_shift": {LAT_UP},
}
EXPLAINS = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
BENIGN_KINDS = ("release", "prompt_release", "migration", "holiday", "weekend", "morning_rise", "evening_peak",
                "cron", "new_series")  # fmt: skip
SD_BINS, EVENT_BINS = h.SD_BINS, h.EVENT_BINS
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 121))
REPS = 40


COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate (see the module docstring)."""
    return h.window_stat(kind, c, gen.OK, gen.VOLUME_KINDS)


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.Noise.draw, label=lambda s: f"{s.service.name}/{s.model}", prefix="llmtrace-det4-", reps=REPS,
)  # fmt: skip


def run_seed(seed: int) -> dict[str, Any]:
    return h.run_seed(BENCH, seed)


def effect(sc: gen.Scenario, inc: gen.Incident) -> tuple[float, float]:
    return h.effect(BENCH, sc, inc)


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    print(f"\nincidents: {len(rows)}, eligible: {len(el)}")
    print(f"| {'kind':13} | {'all':>14} | {'eligible':>14} | {'eligible young':>14} |")
    print(f"|{'-' * 15}|{'-' * 16}|{'-' * 16}|{'-' * 16}|")
    for kind in [*gen.KINDS, "ALL"]:
        of = [r for r in rows if kind in ("ALL", r["kind"])]
        e = [r for r in of if eligible(r)]
        y = [r for r in e if r["young"]]
        print(f"| {kind:13} | {h.recall(of):>14} | {h.recall(e):>14} | {h.recall(y):>14} |")
    long = [r for r in rows if r["minutes"] >= 10]
    print("\nrecall by effect size (sd units), incidents >= 10 min: " + h.bins(long, "size", SD_BINS))
    counted = [r for r in long if r["kind"] in COUNTED and r["size"] >= 3]
    print("  rates and volume by extra events (size >= 3, >= 10 min): " + h.bins(counted, "extra", EVENT_BINS))
    temporary = [r for r in rows if r["kind"] not in gen.PERMANENT]
    print(f"recall by duration (all sizes): {h.bins(temporary, 'minutes', DURATION_BINS)}"
          f"; permanent {h.recall([r for r in rows if r['kind'] in gen.PERMANENT])}")  # fmt: skip
    for scope in ("series", "service", "provider"):
        print(f"  scope {scope}: all {h.recall([r for r in rows if r['scope'] == scope])}, "
              f"eligible {h.recall([r for r in el if r['scope'] == scope])}")  # fmt: skip
    print(f"  overlapping incidents: eligible {h.recall([r for r in el if r['overlap']])}")
    ttd = [r["ttd"] for r in el if r["ttd"] is not None]
    print(f"time to detect (eligible, detected_at - start): median {h.pct(ttd, 50):.0f} min, "
          f"p90 {h.pct(ttd, 90):.0f} min")  # fmt: skip
    h.false_report(BENCH, results)
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)
    if verbose:
        for res in results:
            for a in res["false"]:
                print(f"  false: seed {res['seed']} {a.level} {a.summary}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", default="400-409", help="e.g. 400-409 (the reported run) or 500,501")
    parser.add_argument("--verbose", action="store_true", help="every missed eligible incident and false episode")
    args = parser.parse_args()
    results = []
    for seed in h.seeds(args.seeds):
        started = time.perf_counter()
        res = run_seed(seed)
        print(h.seed_line(res, started), flush=True)
        results.append(res)
    report(results, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

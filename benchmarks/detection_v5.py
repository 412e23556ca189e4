"""Anomaly detection judged on the held-out v5 generator (``detection_scenarios_v5``), many seeds.

    python benchmarks/detection_v5.py --seeds 500-509 [--verbose]

v5 was written apart from the detector and from the v2-v4 generators (its author read neither) as
the final judge nobody tuned on. How it differs from v2-v4: a long-running store (14 days of
history before the judged week, 21 days stored), brand-new series (a feature launch and a model
migration; incidents 6-48 h after their first call), one service dominated by a single large
customer in another time zone, week-over-week growth (0-12%), heavy-tailed latency with single
60-120 s outliers that are not incidents, streaming-only / batch-only / mixed series, a third of
the series sparse (0.05-1 call/min), incidents of 5-180 min at uniform random times (nights and
weekends included), overlapping ones, provider outages (5xx AND a volume drop on every series of
one provider), and labelled benign changes (growth, a planned marketing day, a migration, a prompt
release that changes output tokens, new series, slow outliers); see the generator's docstring.

Per seed: the 21 days go as spans into ``otel_traces`` of a fresh chDB store (the project's views
fill ``llm_calls``); ``anomalies.detect`` runs over the judged week with its defaults (``by="auto"``,
call-level findings on) and ``now`` = the end. Matching is ``detection_v3.finds`` with
``detection_v4``'s metric families and consequences (episode metric family, time [start - 5 min,
end + 30 min], or [start - 5 min, start + 6 h] for permanent shifts, a compatible series; app-wide
episodes fit everything). *False*: an episode that neither finds nor is explained by an incident.
*Benign alerts*: false episodes overlapping a labelled benign change on its series and metric.

Effect sizes come from the generator's parameters, never from the detector, by v4's paired Monte
Carlo: ``REPS`` replicates of the incident window (its first 2 hours at most; permanent shifts: 2
hours) drawn with :func:`detection_scenarios_v5.calls` and fresh noise (provider latency wobble,
10-minute volume factor, hourly error overdispersion, tails, retries), with and without the
incident (other incidents stay). Statistic: the count of failed calls (429 storms and 5xx, as
``error_rate`` counts them together), cut or empty answers, or calls (volume); the log p95 of
successful durations or streams' TTFT; the log mean output tokens or cost per successful call.
*size* = mean paired shift / sd of the statistic without the incident (floor 0.5 for counts);
*extra* = mean paired shift of the count. *Eligible* (the issue's target): >= 10 minutes
(permanent shifts count as 120), size >= 3 and, for rates and volume, >= 10 extra (or missing)
events. *Young*: a series < 2 days old at the incident. *Sparse*: a series at < 1 call/min.

Results, seeds 500-509 (``--seeds 500-509``), generator and detector at main b627663 (a clean
``git archive`` of HEAD, 16:37-17:05 UTC 2026-12-04; the detector's last change then was 5b36608);
356 incidents, 195 eligible, 116.1 series-weeks, 0.34-0.62M calls per seed (21 days stored). *young*
= series < 2 days old, *sparse* = series at 0.05-1 call/min:

| kind          |            all |       eligible |  elig. young | elig. sparse |
|---------------|----------------|----------------|--------------|--------------|
| latency       |   0.53 (16/30) |   0.82 (14/17) |   0.67 (2/3) |   0.50 (3/6) |
| latency_ramp  |   0.40 (12/30) |   0.75 (12/16) |   0.50 (2/4) |   0.33 (1/3) |
| ttft          |   0.83 (25/30) |   0.92 (23/25) |   0.88 (7/8) |   0.75 (3/4) |
| errors_429    |   0.40 (12/30) |     1.00 (8/8) |            - |            - |
| errors_5xx    |   0.52 (23/44) |   0.94 (15/16) |   0.00 (0/1) |            - |
| truncation    |    0.23 (7/30) |     0.62 (5/8) |   0.50 (1/2) |   1.00 (1/1) |
| empty_output  |   0.40 (12/30) |     1.00 (8/8) |   1.00 (2/2) |            - |
| volume_drop   |   0.23 (10/43) |    0.47 (9/19) |   0.00 (0/1) |   0.00 (0/1) |
| volume_spike  |   0.45 (13/29) |   0.48 (11/23) |   0.50 (1/2) |   0.50 (2/4) |
| tokens_shift  |   0.73 (22/30) |   0.85 (22/26) |   0.67 (4/6) |   0.83 (5/6) |
| cost          |   0.83 (25/30) |   0.86 (25/29) |   1.00 (5/5) |   0.60 (3/5) |
| ALL           | 0.50 (177/356) | 0.78 (152/195) | 0.71 (24/34) | 0.60 (18/30) |

By effect size (>= 10 min, sd units): [0, 3) 0.08 (5/64), [3, 6) 0.30 (16/54), [6, 10) 0.63 (38/60),
>= 10 0.90 (111/124); rates and volume with size >= 3 by extra events: [0, 10) 0.30, [10, 30) 0.68
(19/28), >= 30 0.69 (37/54). By duration (all sizes): < 10 min 0.13, 10-30 0.39, 30-60 0.48, 60-180
0.68, permanent shifts 0.78. Eligible by scope: series 0.79, service 0.79 (11/14), provider 0.69
(11/16); by mode: stream 0.84, batch 0.68, mixed 0.81; overlapping 0.76 (102/135: permanent shifts
and service/provider incidents overlap much, so this flag is broad). Provider outages: 14, seen
(5xx or volume) 12, both halves 4. Time to detect (eligible): median 16 min, p90 88 min.
False episodes: 50 of 271 = **0.43 per series per week**; 13 (0.11) on no labelled benign change
(tokens_per_call up 5 / down 2, calls down 4 / up 2), the rest on benign changes: growth 11,
marketing_day 11 (0.34 per series-week without it), migration 10, new_series 2, release 2, outlier 1.
``detect``: median 8.9 s wall / 2.4 s CPU over a median 0.45M calls; a seed took 92-305 s at load
averages of 18-39 on the 2-core machine (insert through ``otel_traces`` 60-228 s of it, 27 s CPU).

Worst eligible misses: volume spikes (x2.5 for 39 min on sales-email/gpt-4.1-mini, size 13.6, 186
extra calls; x3.8 at Monday 00:01; x2.1 on a sparse batch series), truncation on a batch series (32%
for 31 min, size 11.7) and on a young series, the volume-drop half of provider outages (x0.36 for 42
min over two series, 158 missing calls; 10 of 14 outages were seen only through their errors).
A rerun at main 95cd793 (detector with a179f3a, 17:06-17:26 UTC, seeds 500-503 then 504-509, load
8-15) found the same incidents count and the same false episodes on every seed; 43-145 s per seed.
Rerun at main db59dd6 (detector with 8caffb7 rate minute-of-hour baseline, fba513e volume falls
capped by the same hours of previous days + volume score 5, a3dd8bc rates' time-of-day baseline
from the same hours of previous days instead of the last 3 h, db59dd6 change labels), 19:52-19:55
UTC, load 11-19, the same stores and effect sizes (inserted once, detect rerun): eligible 0.79
(154/195; young 0.71, 24/34; sparse 0.60, 18/30), all 0.49 (176/356); per kind eligible: latency
14/17, latency_ramp 12/16, ttft 23/25, errors_429 8/8, errors_5xx 15/16, truncation 5/8,
empty_output 8/8, volume_drop 8/19 (was 9), volume_spike 13/23 (was 11), tokens_shift 22/26, cost
26/29 (was 25); batch series 41/60; provider outages seen 9 of 14 (was 12: fewer small 5xx/429
halves, errors_429 all 10/30, errors_5xx all 21/44), both halves 3. False 52 of 274 = 0.45 per
series-week (0.13 on no labelled benign change): growth 16, migration 10, marketing_day 8; none
carries a change label (no v5 episode did). TTD median 16, p90 102 min.
Main e52d232 (clustered volume, environment level, holiday lull, rises floored by the same hours
within an hour) against main b528f86, both clean archives, seeds 500-504 only (time), 22:31-22:45 UTC,
load 2-15: eligible 0.78 (75/96) -> 0.77 (74/96; volume_spike 7 -> 6 of 12, volume_drop 4/9 both);
false 30 -> 20 over 59.8 series-weeks (0.50 -> 0.33 per series-week; 8 on no labelled benign change).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_scenarios_v5 as gen
import detection_v4 as v4

assert set(v4.FAMILY) == set(gen.KINDS), "v5's kinds must be those detection_v4 has metric families for"

REPS = 40
COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)
BENIGN_KINDS = ("marketing_day", "migration", "release", "new_series", "outlier", "growth")  # most specific first


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate (see the module docstring)."""
    return h.window_stat(kind, c, gen.OK, gen.VOLUME_KINDS)


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    return {"sparse": all(m.rate < 1 for m in members), "group": inc.group, "mode": members[0].mode}


BENCH = h.Bench(
    gen=gen, family=v4.FAMILY, explains=v4.EXPLAINS, benign_kinds=BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.wobble, label=lambda s: f"{s.service}/{s.model}", prefix="llmtrace-det5-", reps=REPS,
    row_extras=_extras,
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
    h.recall_head(BENCH, rows, 13, ((0, 10), (10, 30), (30, 60), (60, 181)))
    for scope in ("series", "service", "provider"):
        print(f"  scope {scope}: all {h.recall([r for r in rows if r['scope'] == scope])}, "
              f"eligible {h.recall([r for r in el if r['scope'] == scope])}")  # fmt: skip
    for mode in ("stream", "batch", "mixed"):
        print(f"  {mode} series: eligible {h.recall([r for r in el if r['mode'] == mode])}")
    print(f"  overlapping incidents: eligible {h.recall([r for r in el if r['overlap']])}")
    _outages(rows)
    h.ttd_line(el)
    h.false_report(BENCH, results, planned=("marketing_day", "planned marketing day"))
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _outages(rows: list[dict[str, Any]]) -> None:
    halves: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["group"] == "outage":
            halves[(r["seed"], r["at"])].append(r)
    either = sum(any(r["found"] for r in pair) for pair in halves.values())
    both = sum(all(r["found"] for r in pair) for pair in halves.values())
    print(f"  provider outages: {len(halves)}, seen (errors or volume) {either}, both halves {both}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", default="500-509", help="e.g. 500-509 (the reported run) or 500,501")
    parser.add_argument("--verbose", action="store_true", help="every missed eligible incident and false episode")
    args = parser.parse_args()
    results = []
    for seed in h.seeds(args.seeds):
        started = time.perf_counter()
        res = run_seed(seed)
        print(h.seed_line(res, started), flush=True)
        if args.verbose:
            for a in res["false"]:
                print(f"  false: {a.level} {a.metric} {a.direction} {a.series} {a.start:%a %H:%M}-{a.end:%H:%M}")
        results.append(res)
    report(results, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Anomaly detection judged on the held-out v8 generator (``detection_scenarios_v8``), many seeds.

    python benchmarks/detection_v8.py --seeds 800-809 [--verbose]
    python benchmarks/detection_v8.py --seeds 800-809 --watch [--sample 3]

v8 was written blind (its author read neither the detector nor the v2-v7 generators, only the
shared harness and the v7 runner) while the detector was tuned on v2-v7. What it covers and which
changes are incidents or benign is in the generator's docstring, fixed before any judged run:
regions in three time zones with two daily peaks, a weekly trend, the US daylight-saving shift,
B2B weekends, provider-wide Anthropic 529 / OpenAI 503 incidents, stream-only outages, TTFT creeping
up over hours, a quiet series' outage, the busy series' 2x latency for 20 min, a cache regression
raising cost, a young series with incidents in its first 12-24 h, error bursts at the minute of a
release; benign: a planned A/B model ramp, a planned backfill at night, releases, DST, weekends.

Per seed (:mod:`detection_harness`): 9 days as spans into ``otel_traces`` of a fresh chDB store;
``anomalies.detect`` over the last 7 days with its defaults and ``now`` = the end; episodes matched
by metric family (``FAMILY``), time ([start - 5, end + 30] min; ``cache_miss`` [start - 5 min,
start + 6 h]) and a compatible series (a provider-wide incident: any of its series or the
provider). *False*: an episode neither finding nor explained (``CONSEQUENCES``). Effect sizes: the
harness's paired Monte Carlo over :func:`detection_scenarios_v8.calls` (40 replicates of the window,
at most 2 h). Statistic: failed calls (error kinds), calls (volume); log p95 of successful
durations or TTFT; log mean cost (cache_miss) or output tokens (output_blowup) per successful call.
*Eligible*: >= 10 min, size >= 3 sd and, for counts, >= 10 extra events; *young*: < 2 days after
the series' first call; *sparse*: < 1 call/min.

Baseline, seeds 800-809 (``--seeds 800-809 --watch --sample 3 --verbose``), the detector of main
c63d46b (its last detector commit 1b2b82a; run from a worktree of 313446d, the generator's commit,
``PYTHONPATH`` checked to import it), 02:12-02:20 UTC 2026-12-05, niced, load 0.4-1.6 on 2 CPUs;
300 incidents, 232 eligible, 118.3 series-weeks, 0.64-0.74M calls per seed:

| kind              |            all |       eligible |  elig. young | elig. sparse |
|-------------------|----------------|----------------|--------------|--------------|
| provider_overload |   1.00 (20/20) |   1.00 (20/20) |            - |            - |
| stream_outage     |   0.97 (29/30) |   1.00 (28/28) |            - |   1.00 (1/1) |
| error_burst       |   0.40 (24/60) |   1.00 (19/19) |   1.00 (3/3) |            - |
| quiet_outage      |   1.00 (20/20) |   1.00 (14/14) |            - | 1.00 (14/14) |
| latency_spike     |   0.88 (44/50) |   0.91 (41/45) |  0.90 (9/10) |   0.33 (1/3) |
| ttft_creep        |   0.97 (29/30) |   1.00 (27/27) |            - |   1.00 (6/6) |
| volume_drop       |    0.15 (6/40) |    0.21 (6/29) |  0.00 (0/10) |   0.00 (0/1) |
| cache_miss        |   1.00 (20/20) |   1.00 (20/20) |            - |   1.00 (6/6) |
| output_blowup     |   0.97 (29/30) |   0.97 (29/30) |            - |   1.00 (3/3) |
| ALL               | 0.74 (221/300) | 0.88 (204/232) | 0.52 (12/23) | 0.91 (31/34) |

By effect size (>= 10 min, sd units): < 3 0.16 (4/25), [3, 6) 0.33 (15/45), [6, 10) 0.75 (33/44),
>= 10 0.97 (167/173); rates and volume of size >= 3 by extra events: < 10 0.37, [10, 30) 0.82,
>= 30 0.78 (the misses there are volume drops). By duration: < 10 min 0.15, 10-30 0.59, 30-60
0.76, 60-120 0.74, longer 0.97, permanent (cache_miss) 1.00. Near-edge sizes: eligible 0.62
(13/21), others 0.91. Provider-wide (20/20) reported at service x model 9, service + service x
model 6, provider 2, app 2, service 1. Error bursts at the minute of a release (2 per seed): 4 of
20 eligible, all 4 found (the release is never blamed: 0 alerts on releases). The young series
(``onboarding``, incidents in its first 12-26 h): eligible 12/23, its volume drops 0/10. Time to
detect (eligible): median 10 min, p90 80 min.

**False episodes: 32 of 382 = 0.27 per series per week**, 0 on no labelled benign change; without
the planned backfill 0.18. By cause: backfill 11 (``summarize`` ``calls`` up, scores 277-733, once
at the app level, 6.8: the judgement call, see the generator), weekend 9 (``writer/gpt-4o`` and
``copilot`` ``calls`` down from Sat 04:00-05:00 UTC, US midnight, scores 5.2-9.4: the first weekend
in the store, which starts on a Wednesday), dst 9 (``onboarding`` ``calls`` up, the young series,
scores 6.0-7.3; ``writer/gpt-4.1`` ``calls`` up on Monday 6.2-9.3, which is really the A/B ramp's
lasting shift after its 12 labelled hours), ab_ramp 3 (``writer/gpt-4.1`` up, 6.5-14.9). So every
false alarm is ``calls`` at service x model on a planned or calendar change.

``detect``: median 1.5 s wall / 1.8 s CPU over a median 0.68M calls; insert 43 s wall / 48 s CPU per
seed; a seed 40-54 s wall. Watch (3 sampled eligible incidents per seed, ``now`` every 5 min):
23 of 30 found within 60 min, **13 of 30 (0.43) within 10 min**, median 15 min (provider overloads
5 min; error bursts and quiet outages 10-40; output blow-ups 10-50; TTFT creeps 55 or > 60, by
design slow; volume drops 0 of 3 within 60 min); detect per step 0.78 s CPU.

Watch over every eligible incident (``benchmarks/detection_watch.py --steps 2``: ``now`` at +5 and
+10 min on the kept stores, which answers as a store filled in arrival order: the 15 sampled times
above come out identical), detector of main cc23916, 17:16-17:28 UTC 2026-12-05, niced, load 12-23
on 2 CPUs, ~1.1 s CPU per detect. v8 800-802, **31 of 67 eligible (0.46) within 10 min**, 13 within
5: latency_spike 12/14, provider_overload 6/6, stream_outage 7/9, error_burst 2/5, output_blowup
2/9, quiet_outage 1/3, volume_drop 1/6, cache_miss 0/6, ttft_creep 0/9 (by design slow). The tuning
set v7 700-703: 29 of 64 (0.45). Why not sooner (``--diagnose``: buckets, scores and gates at +5
and +10 min): mostly too little evidence at the 1e-7 bar: 2-16 calls of a sparse series in the
judged minutes (0/0 to 10/16 above the usual p90, plain binomial scores 1-6), and an incident that
starts 4 minutes into a bucket has 1 and 6 of its minutes judged at +5 and +10; a cache miss at
24/60 (score 8.1 as a plain binomial) is held below 7 by the rate's own wobble; a v7 runaway loop
(72 calls for 43 expected at +10) only lengthened a 3-hour rise whose episode is trimmed to end
before it. Of 14 diagnosed (4 of v8 800-801 sampled, 10 of v7 700) none was dropped as recurring, held by
warm-up or by a gate other than the score. Judging through the end of the bucket in progress
(``--bucket-end``, an upper bound on judging it as it fills: it reads up to 4 minutes past ``now``)
would make v7's 29/64 at most 33/64 and v8's 31/67 at most 37/67 (sparse output blow-ups and
cache misses starting 2-4 minutes into a bucket, one error burst, one stream outage, one latency
spike); the rate bar at 6 instead of 7 (``--set MIN_SCORE=6``, v7 only) adds none of 64.

Worst eligible misses: a x3.3 latency spike for 41 min on the young ``onboarding/gpt-4.1``
(seed 804, Sun 03:50, size 9.2); volume drops on it (808 Sat 01:10, x0.24 for 83 min, -79 calls,
size 7.2; 802 Sat 09:46, -141 calls, 6.6; 809, 804, 803, 806, 801 sizes 4.5-6.2); a x1.97 spike for
11 min on ``support-chat/claude-haiku-4-5`` (808 Sun 20:53, 7.1); volume drops on mature series
(``copilot`` x0.37 for 65 min, -154 calls, 6.3; ``support-chat/claude-haiku`` 5.4, 5.3; ``writer/gpt-4o``
5.0; the busy ``search-assist`` x0.33 for 35 min at Sat 01:08 UTC, -658 calls, 4.7); an output
blow-up x1.8 for 2 h on ``writer/gpt-4o`` (802 Thu 04:30, 5.6).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_scenarios_v8 as gen

UP, DOWN = h.UP, h.DOWN
_m = h.family

LAT, TTFT, ERR = ("latency_p95_ms", UP), ("ttft_p95_ms", UP), ("error_rate", UP)
COST, TOK = ("cost_per_call_usd", UP), ("tokens_per_call", UP)
FAMILY = {
    **{k: _m(ERR) for k in gen.ERROR_KINDS},
    "latency_spike": _m(LAT),
    "ttft_creep": _m(TTFT),
    "volume_drop": _m(("calls", DOWN)),
    "cache_miss": _m(COST),
    "output_blowup": _m(TOK, COST),
}
_LESS = _m(("tokens_per_call", DOWN), ("tokens_per_call_low", UP), ("cost_per_call_usd", DOWN))
# failed calls answer nothing (fewer tokens, less cost, shorter or longer durations); a creeping
# TTFT lengthens the call; a verbose model takes longer
CONSEQUENCES = {
    **{k: _LESS | _m(LAT, TTFT, ("latency_p95_ms", DOWN), ("calls", DOWN)) for k in gen.ERROR_KINDS},
    "latency_spike": _m(TTFT),
    "ttft_creep": _m(LAT),
    "output_blowup": _m(LAT, TTFT),
}
EXPLAINS = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 121), (121, 601))
WATCH_STEPS = 12  # 5-minute steps: an hour


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate (see the module docstring)."""
    ok = c["status"] == gen.OK
    if kind in gen.ERROR_KINDS:
        return float((~ok).sum())
    if kind in gen.VOLUME_KINDS:
        return float(len(c["t"]))
    if kind in ("cache_miss", "output_blowup"):
        v = (c["cost"] if kind == "cache_miss" else c["out_tok"])[ok]
        return float(np.log(v.mean())) if len(v) >= 3 and v.mean() > 0 else float("nan")
    v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft_creep" else c["dur_ms"][ok]
    return float(np.log(np.percentile(v, 95))) if len(v) >= 3 else float("nan")


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    release = any(b.kind == "release" and b.start == inc.start and b.series == inc.series for b in sc.benign)
    return {"sparse": all(m.rate < 1 for m in members), "edge": inc.edge, "group": members[0].group,
            "levels": sorted({str(a.level) for a in hits}), "hits": len(hits), "at_release": release}  # fmt: skip


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=gen.BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.noise, label=lambda s: f"{s.service}/{s.model}", prefix="llmtrace-det8-", row_extras=_extras,
)  # fmt: skip


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


def run_seed(seed: int, sample: int = 0) -> dict[str, Any]:
    """One seed; with ``sample``, watch's time to detect of that many eligible incidents first."""
    return h.run_watched(BENCH, seed, sample, WATCH_STEPS, 80)


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    h.recall_head(BENCH, rows, 17, DURATION_BINS)
    short = [r for r in rows if r["minutes"] < 10 and r["size"] >= 3]
    print(f"  bursts < 10 min of size >= 3 (not in the target): {h.recall(short)}")
    h.recall_by(rows, el, (("scope", ("series", "provider")), ("edge", (True, False))))
    groups = sorted({r["group"] for r in rows})
    print("  eligible by service: " + "; ".join(f"{g} {h.recall([r for r in el if r['group'] == g])}" for g in groups))
    print(f"  overlapping incidents: eligible {h.recall([r for r in el if r['overlap']])}; at the minute of a "
          f"release: all {h.recall([r for r in rows if r['at_release']])}, eligible "
          f"{h.recall([r for r in el if r['at_release']])}")  # fmt: skip
    found = [r for r in rows if r["scope"] == "provider" and r["found"]]
    levels: dict[str, int] = defaultdict(int)
    for r in found:
        levels["+".join(r["levels"])] += 1
    print(f"  provider-wide incidents found: {len(found)}; reported at levels {dict(levels)}")
    h.ttd_line(el)
    h.false_report(BENCH, results, ("backfill", "planned backfill"))
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _false_line(res: dict[str, Any], a: Any) -> str:
    score = getattr(a, "score", float("nan"))
    return f"{h.false_line(res, a)} score {score:.1f} cause {h.cause(BENCH, res['sc'], a)}"


def main() -> int:
    return h.cli(__doc__, "800-809", run_seed, report, WATCH_STEPS, _false_line)


if __name__ == "__main__":
    raise SystemExit(main())

"""Anomaly detection judged on the held-out v7 generator (``detection_scenarios_v7``), many seeds.

    python benchmarks/detection_v7.py --seeds 700-709 [--verbose]
    python benchmarks/detection_v7.py --seeds 700-709 --watch [--sample 3]

v7 was written blind (its author read neither the detector nor the v2-v6 generators, only the
shared harness and the v6 runner) while the detector was tuned on v2-v6: it is the judge nobody
tuned on. It differs from them the way production does (details in the generator's docstring):
RAG traces (embeddings + rerank + streamed chat in one trace; embeddings and rerank answer no
output tokens by design; a failed embeddings call aborts the chat call), retries *inside* the SDK
(a call fails only when three attempts do; 429 storms show as q^3 errors plus a latency tail),
business-hours B2B services with weekends at 10-30 %, consumer chat in sessions, an hourly ETL
job and a nightly one flooding their series for 10-20 min, a big tenant's nightly sync in a
Zipf-distributed multi-tenant service, a 24 h gpt-4o -> gpt-4.1 migration, a launch growing
30-60 % a day, a planned release, and a marketing e-mail blast (x2.5-5 for about an hour).

Decisions: the blast is **benign** (planned, nothing broken): alerts on it are false episodes with
their own cause, and the false rate is also given without them. Error incidents are found by
``error_rate`` only (the retries' latency tail is a consequence, not a finding). A runaway loop
(one user id adding calls) is an incident (``calls`` up); a tenant's nightly sync is not.

Per seed (:mod:`detection_harness`): 9 days go as spans into ``otel_traces`` of a fresh chDB
store; ``anomalies.detect`` runs over the last 7 days with its defaults and ``now`` = the end;
episodes are matched by metric family (``FAMILY``), time ([start - 5, end + 30] min; the
permanent prompt change [start - 5 min, start + 6 h]) and a compatible series. *False*: an
episode neither finding nor explained by an incident (``CONSEQUENCES``, incl. the chat calls an
embeddings failure aborts). Effect sizes: the harness's paired Monte Carlo over
:func:`detection_scenarios_v7.calls` (40 replicates of the window, at most 2 h). Statistic: failed
calls (error kinds), cut or filtered answers, calls (volume); the log p95 of successful
durations or TTFT; the log mean cost per successful call (prompt change). *Eligible*: >= 10 min,
size >= 3 sd and, for counts, >= 10 extra events; *young*: < 2 days after the series' first call;
*sparse*: < 1 call/min. ``--watch``: :func:`detection_harness.watch_fill`.

Baseline, seeds 700-709 (``--seeds 700-709 --watch --sample 3 --verbose``), the detector of main
b528f86 (a worktree, ``PYTHONPATH`` checked to import it) with these benchmark files as committed in
d78e7b6, 22:10-22:21 UTC 2026-12-04, niced, load 5.6-8.9 on 2 CPUs; 310 incidents, 155 eligible,
118.8 series-weeks, 0.23-0.37M calls per seed:

| kind            |            all |       eligible |  elig. young | elig. sparse |
|-----------------|----------------|----------------|--------------|--------------|
| rate_limit      |   0.85 (17/20) |   1.00 (14/14) |   1.00 (7/7) |            - |
| server_errors   |   0.55 (22/40) |   1.00 (17/17) |   1.00 (8/8) |   1.00 (4/4) |
| model_outage    |   0.95 (19/20) |   1.00 (14/14) |            - |            - |
| slow_region     |   0.33 (13/40) |   0.65 (11/17) |   0.83 (5/6) |   0.50 (4/8) |
| latency_ramp    |   0.85 (17/20) |     1.00 (7/7) |   1.00 (4/4) |   1.00 (1/1) |
| ttft_regression |   0.80 (24/30) |   1.00 (19/19) | 1.00 (10/10) |   1.00 (4/4) |
| truncation      |    0.20 (6/30) |     0.57 (4/7) |   0.60 (3/5) |   1.00 (1/1) |
| content_filter  |   0.43 (13/30) |     0.89 (8/9) |   0.83 (5/6) |   1.00 (2/2) |
| volume_drop     |    0.27 (8/30) |    0.43 (6/14) |   0.57 (4/7) |   0.00 (0/3) |
| runaway_loop    |   0.50 (15/30) |   0.55 (11/20) |  0.60 (6/10) |  0.57 (8/14) |
| prompt_bloat    |   0.60 (12/20) |   0.65 (11/17) |   0.33 (3/9) |   0.17 (1/6) |
| ALL             | 0.54 (166/310) | 0.79 (122/155) | 0.76 (55/72) | 0.58 (25/43) |

By effect size (>= 10 min, sd units): < 3 0.24, [3, 6) 0.31, [6, 10) 0.58, >= 10 0.90; rates and
volume of size >= 3 by extra events: < 10 0.22, [10, 30) 0.77, >= 30 0.78; bursts < 10 min of size
>= 3: 0.62. Eligible by scope: series 0.78, service (broken client releases) 0.43, model and
provider 1.00 (model-wide ones reported at service x model 12, provider 7; provider-wide at
service x model 8, provider 6, app 2); near-edge sizes 0.73, large 0.82; overlapping 0.77. Volume
drops found naming the broken release (``Anomaly.change``): 5 of 8. Time to detect (eligible):
median 10 min, p90 57 min. **False episodes: 323 = 2.72 per series per week**, 86 (0.72) on no
labelled benign change; by cause: batch jobs 162 (by series, false episodes are mostly the
hourly ETL's ends as ``calls`` down at service x model, 39; the nightly digest as ``calls`` up, 37,
and again at the anthropic provider level, 36, with its cost/tokens mix there), weekends 37, tenant sync 16,
migration 16, campaign (the blast) 3, release 2, launch 1; unlabelled: ``calls`` down at
service x model 32 and service 26 (docs-qa's service level: a RAG trace is three calls, so its
counts vary 3x more than Poisson), ``calls`` up 26 (e.g. docs-qa's Monday mornings).
Without the blast: 2.69. ``detect``: median 1.5 s CPU over a median 0.31M calls. Watch (3 sampled
eligible incidents per seed, ``now`` every 5 min, spans stored when they end): 18 of 30 found
within 60 min, **10 of 30 (0.33) within 10 min** (errors, rate limits, an outage, TTFT: 5-15 min;
prompt changes 10-55 min or not at all, 5 of 9; runaway loops on the young launch-copilot, a
truncation at 6 %, a slow region on rerank: not within 60 min; this run's script printed the p90
as "nan": read "> 60"). One seed: 46-108 s wall at load 5.6-8.9 (insert 33 s CPU). Worst eligible
misses: runaway loops on the young, growing launch-copilot (size 31.5, +397 calls over 115 min;
17.9), a 4 % content filter on the young gpt-4.1 (13.2), volume drops on saas-assistant (x0.26
for 81 min, size 10.2, -368 calls; 6.7; 5.2), a slow region on docs-qa's rerank (9.5), prompt
changes on young series (9.1, 8.4), truncation at 11 % on docs-qa chat (8.8, 8.3).

Session 9's detector, main abf8639 (the clustering factor, the environment level and the holiday / DST
rules of 18b2d4b, 3a3ff0a and e52d232, tuned on v2-v6; a clean ``git archive``, the same command,
23:59-00:08 UTC, load 0.5-1.2), against the baseline above: eligible recall 0.79 -> **0.75**
(116/155), young 0.76 -> 0.69, sparse 0.58 -> 0.53; volume_drop 0.43 -> 0.21 (3/14), runaway_loop
0.55 -> 0.40 (8/20), every other kind unchanged. **False episodes 2.72 -> 1.13 per series per week**
(134), on no labelled benign change 0.72 -> **0.10**; by cause: batch jobs 103 (the hourly ETL's
ends and the nightly digest, recurring, still alerting), migration 7, weekend 4, tenant sync 3,
campaign 3. Time to detect median 10 min, p90 64 min. Watch: 9 of 30 within 10 min (was 10),
median 50 min. So the clustering factor traded volume recall for false alarms on this judge too:
the spread it now allows hides runaway loops and client-release drops on clustered RAG series.
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
import detection_scenarios_v7 as gen

UP, DOWN = h.UP, h.DOWN


_m = h.family

LAT, TTFT, ERR = ("latency_p95_ms", UP), ("ttft_p95_ms", UP), ("error_rate", UP)
FAMILY = {
    **{k: _m(ERR) for k in gen.ERROR_KINDS},
    **{k: _m(LAT) for k in gen.LATENCY_KINDS},
    "ttft_regression": _m(TTFT),
    "truncation": _m(("truncation_rate", UP)),
    "content_filter": _m(("empty_output_rate", UP)),
    "volume_drop": _m(("calls", DOWN)),
    "runaway_loop": _m(("calls", UP)),
    "prompt_bloat": _m(("cost_per_call_usd", UP), ("tokens_per_call", UP)),
}
_LESS = _m(("tokens_per_call", DOWN), ("tokens_per_call_low", UP), ("cost_per_call_usd", DOWN))
# failed calls answer nothing and retried ones are slower; an aborted RAG trace takes its chat call
# (Incident.spill) with it
CONSEQUENCES = {
    **{k: _LESS | _m(LAT, TTFT, ("calls", DOWN)) for k in gen.ERROR_KINDS},
    **{k: _m(TTFT) for k in gen.LATENCY_KINDS},
    "truncation": _LESS | _m(("latency_p95_ms", DOWN)),
    "content_filter": _LESS | _m(("latency_p95_ms", DOWN), ("ttft_p95_ms", DOWN)),
    "prompt_bloat": _m(LAT, TTFT),
}
EXPLAINS = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
BENIGN_KINDS = ("migration", "release", "campaign", "tenant_sync", "batch_job", "launch", "weekend")
COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 121), (121, 481))
WATCH_STEPS = 12  # 5-minute steps: an hour


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate (see the module docstring)."""
    ok = c["status"] == gen.OK
    counts = {"truncation": c["cut"], "content_filter": c["empty"], **{k: ~ok for k in gen.ERROR_KINDS}}
    if kind in counts:
        return float(counts[kind].sum())
    if kind in gen.VOLUME_KINDS:
        return float(len(c["t"]))
    if kind == "prompt_bloat":
        v = c["cost"][ok]
        return float(np.log(v.mean())) if len(v) >= 3 else float("nan")
    v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft_regression" else c["dur_ms"][ok]
    return float(np.log(np.percentile(v, 95))) if len(v) >= 3 else float("nan")


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    return {"sparse": all(m.rate < 1 for m in members), "edge": inc.edge, "group": members[0].group,
            "mode": members[0].mode, "levels": sorted({str(a.level) for a in hits}), "hits": len(hits),
            "change": next((str(a.change) for a in hits if getattr(a, "change", None)), "")}  # fmt: skip


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.noise, label=lambda s: f"{s.service}/{s.model}", prefix="llmtrace-det7-", row_extras=_extras,
)  # fmt: skip


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


def run_seed(seed: int, sample: int = 0) -> dict[str, Any]:
    """One seed; with ``sample``, watch's time to detect of that many eligible incidents first."""
    res = h.run_watched(BENCH, seed, sample, WATCH_STEPS, 70)
    sc = res["sc"]
    spills = [inc for inc in sc.incidents if inc.spill]
    res["spill_alerts"] = sum(
        any(h.finds(a, sc, inc, EXPLAINS, gen.PERMANENT, inc.spill) for inc in spills) for a in res["all_episodes"]
    )
    return res


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    h.recall_head(BENCH, rows, 15, DURATION_BINS)
    short = [r for r in rows if r["minutes"] < 10 and r["size"] >= 3]
    print(f"  bursts < 10 min of size >= 3 (not in the target): {h.recall(short)}")
    h.recall_by(
        rows,
        el,
        (("scope", ("series", "service", "model", "provider")), ("mode", ("stream", "batch")), ("edge", (True, False))),
    )
    groups = sorted({r["group"] for r in rows})
    print("  eligible by service: " + "; ".join(f"{g} {h.recall([r for r in el if r['group'] == g])}" for g in groups))
    print(f"  overlapping incidents: eligible {h.recall([r for r in el if r['overlap']])}")
    changes = [r for r in rows if r["kind"] == "volume_drop" and r["found"]]
    print(f"  volume drops found naming the broken release (Anomaly.change): "
          f"{sum('release' in r['change'] for r in changes)} of {len(changes)}")  # fmt: skip
    _levels(rows)
    print(
        f"  aborted RAG chat calls alerted (labelled consequence, not false): {sum(r['spill_alerts'] for r in results)}"
    )
    h.ttd_line(el)
    h.false_report(BENCH, results, ("campaign", "marketing blast"))
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _levels(rows: list[dict[str, Any]]) -> None:
    """Model-, provider- and service-wide incidents: at which levels they were reported."""
    for scope in ("model", "provider", "service"):
        found = [r for r in rows if r["scope"] == scope and r["found"]]
        levels: dict[str, int] = defaultdict(int)
        for r in found:
            levels["+".join(r["levels"])] += 1
        print(f"  {scope}-wide incidents found: {len(found)}; reported at levels {dict(levels)}")


def main() -> int:
    return h.cli(__doc__, "700-709", run_seed, report, WATCH_STEPS, h.false_line)


if __name__ == "__main__":
    raise SystemExit(main())

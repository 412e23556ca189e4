"""Anomaly detection judged on the held-out v6 generator (``detection_scenarios_v6``), many seeds.

    python benchmarks/detection_v6.py --seeds 600-609 [--verbose]
    python benchmarks/detection_v6.py --seeds 600-609 --watch [--sample 3]

v6 was written blind (its author read neither the detector nor the v2-v5 generators) while the
detector was being changed, as the judge nobody tuned on. It differs from v2-v5 the way
production does: agent workflows (planner + tool-loop traces under ``invoke_agent`` roots),
app-level retries with backoff that multiply volume in error incidents, a model fallback
(Anthropic -> OpenAI) whose volume jump is a labelled consequence, prompt caching and
cache-hit collapses, baseline error rates from 0.1% to 5%, staging next to production, time
zones from UTC-8 to UTC+9 with a DST-like shift, day/night ratios from 2x to 50x, model-wide
incidents (one model failing for every service that uses it), 6-12 h slowdowns next to 5-minute
bursts, half the incidents sized near the eligibility edge, young and sparse series, and
labelled benign changes (a release raising tokens, a staging load test, a holiday, growth, the
DST shift, a canary taking 20% of a service's traffic); see the generator's docstring.

Per seed (:mod:`detection_harness`): the 10 days go as spans into ``otel_traces`` of a fresh
chDB store; ``anomalies.detect`` runs over the last 7 days with its defaults and ``now`` = the
end; episodes are matched to incidents by metric family (``FAMILY``), time ([start - 5 min,
end + 30 min], permanent token shifts [start - 5 min, start + 6 h]) and a compatible series.
*False*: an episode neither finding nor explained by an incident (``CONSEQUENCES``: retries raise
``calls``, failed calls have no tokens, fallback traffic lands on the fallback series, ...).
Effect sizes: the harness's paired Monte Carlo over :func:`detection_scenarios_v6.calls` (40
replicates of the incident window, at most 2 h, with and without the incident). Statistic:
failed calls (every error kind: ``error_rate`` counts 429s and 5xx together), cut or empty
answers, calls (volume); the log p95 of successful durations or streams' TTFT; the log mean
output tokens (token shift) or cost (cache collapse) per successful call. *Eligible*: >= 10 min,
size >= 3 sd and, for rates and volume, >= 10 extra events. *Young*: a series < 2 days old at the
incident; *sparse*: < 1 call/min.

``--watch``: for ``--sample`` eligible incidents per seed, a fresh store is filled as the spans
would arrive (a span arrives when it ends) and detection runs as ``llmtrace watch`` runs it
(``anomalies.detect`` over the last 24 h, ``by="auto"``, call-level findings on) with ``now``
stepping every 5 minutes from the incident's start for up to ``WATCH_STEPS`` steps; the time to
detect is the first ``now`` at which one of the report's anomalies finds the incident.

Results at main e52d232 (``--seeds 600-609 --watch --verbose`` from a clean ``git archive``, 22:18-22:31
UTC 2026-12-04, niced, load 1.6-8.7): clustered volume (each series' clustering factor), the environment
level where a service has staging next to production, a holiday's app-wide lull dropped, rises floored
by the same hours within an hour either side. 350 incidents, 238 eligible, 121.8 series-weeks:

| kind            |            all |       eligible |  elig. young | elig. sparse |
|-----------------|----------------|----------------|--------------|--------------|
| latency         |   0.45 (18/40) |   0.68 (13/19) |   0.71 (5/7) |   0.71 (5/7) |
| slowdown        |   0.65 (13/20) |   1.00 (12/12) |   1.00 (6/6) |   1.00 (1/1) |
| latency_ramp    |   0.70 (14/20) |   0.83 (10/12) |   1.00 (4/4) |            - |
| ttft            |   0.60 (18/30) |   0.71 (15/21) |   0.71 (5/7) |   0.62 (5/8) |
| errors          |   0.75 (30/40) |   1.00 (19/19) |   1.00 (7/7) |   1.00 (3/3) |
| rate_limit      |   0.85 (17/20) |   1.00 (17/17) |   1.00 (5/5) |   1.00 (2/2) |
| model_outage    |   1.00 (20/20) |   1.00 (19/19) |            - |            - |
| provider_outage |   1.00 (10/10) |   1.00 (10/10) |   1.00 (8/8) |            - |
| truncation      |   0.83 (25/30) |   0.87 (20/23) |   1.00 (6/6) |   1.00 (3/3) |
| empty_output    |   0.95 (19/20) |   1.00 (14/14) |   1.00 (7/7) |   1.00 (5/5) |
| volume_drop     |    0.20 (6/30) |    0.40 (6/15) |   0.67 (4/6) |   0.00 (0/2) |
| volume_spike    |   0.33 (10/30) |   0.42 (10/24) |   0.33 (2/6) |  0.62 (8/13) |
| tokens_shift    |   0.55 (11/20) |   0.77 (10/13) |   0.57 (4/7) |   0.75 (3/4) |
| cache_collapse  |   0.90 (18/20) |   0.90 (18/20) |   0.86 (6/7) |   1.00 (5/5) |
| ALL             | 0.65 (229/350) | 0.81 (193/238) | 0.83 (69/83) | 0.75 (40/53) |

Eligible by environment: production 0.83 (180/218), staging 0.65 (13/20) (was 0.84 / 0.35). False
episodes: 63 = **0.52 per series per week** (was 1.81), 15 (0.12) on no labelled benign change (was
0.58: calls down 6 at service x model x environment and 3 at service x model, latency up 3, 3 others);
on benign changes: staging load test 24, release 18 (reported by design, with the change named),
DST 2, growth 2, holiday 1, new series 1 (were holiday 58, DST 47, load test 20, release 18). Time
to detect (eligible): median 12 min, p90 83 min. Volume is still the weak kind: drops 6 of 15 (were
8; the misses: two on the young gpt-5-mini canary at x0.18-0.31, 97% drops of 36 and 66 min on
support-agent on Saturday mornings (agent traces: a large clustering factor), 97% drops of 74-112 min
on sparse series (0.1-0.7 calls/min), x0.7-0.8 dips of 77-95 min), spikes 10 of 24; on seed 604 the
support-agent drop (36 min, size 3.7) and an ineligible agent-v2 one are found with the clustering
factor forced to 1 and missed with it (support-agent's factors there: 1.3-4.5, agent-v2's 4.7): the
factor is the spread agent traffic really has, and it puts a 3.7-sd drop under the bar. Watch:
unchanged, 9 of 30 within 10 min, 21 within 60, median 25 min (the bucket in progress is not judged;
the newest complete one is, at all four scales, with the same evidence as any other: p <= 1e-7 for
rates, 1e-5 for volume, so only large effects are found in the first two buckets). ``detect``: median
1.77 s CPU over a median 0.35M calls (was 1.6 s).

Before (the blind run of last session):

Results, seeds 600-609 (``--seeds 600-609 --watch``), generator and detector at main bf7b062 (a clean
``git archive``, 20:46-21:02 UTC 2026-12-04, niced, load 5-20; the detector's last change then was
db59dd6); a plain rerun at main fe780cc (21:01-21:06, load 4-9) gave the same found counts and false
episodes on every seed. 350 incidents, 238 eligible, 121.8 series-weeks, 0.28-0.39M calls per seed:

| kind            |            all |       eligible |  elig. young | elig. sparse |
|-----------------|----------------|----------------|--------------|--------------|
| latency         |   0.45 (18/40) |   0.68 (13/19) |   0.71 (5/7) |   0.71 (5/7) |
| slowdown        |   0.70 (14/20) |   1.00 (12/12) |   1.00 (6/6) |   1.00 (1/1) |
| latency_ramp    |   0.70 (14/20) |   0.83 (10/12) |   1.00 (4/4) |            - |
| ttft            |   0.57 (17/30) |   0.67 (14/21) |   0.71 (5/7) |   0.50 (4/8) |
| errors          |   0.75 (30/40) |   1.00 (19/19) |   1.00 (7/7) |   1.00 (3/3) |
| rate_limit      |   0.85 (17/20) |   1.00 (17/17) |   1.00 (5/5) |   1.00 (2/2) |
| model_outage    |   1.00 (20/20) |   1.00 (19/19) |            - |            - |
| provider_outage |   1.00 (10/10) |   1.00 (10/10) |   1.00 (8/8) |            - |
| truncation      |   0.77 (23/30) |   0.83 (19/23) |   1.00 (6/6) |   0.67 (2/3) |
| empty_output    |   0.90 (18/20) |   1.00 (14/14) |   1.00 (7/7) |   1.00 (5/5) |
| volume_drop     |   0.47 (14/30) |   0.53 (8/15)  |   0.83 (5/6) |   0.00 (0/2) |
| volume_spike    |   0.33 (10/30) |   0.42 (10/24) |   0.50 (3/6) |  0.46 (6/13) |
| tokens_shift    |   0.50 (10/20) |   0.69 (9/13)  |   0.57 (4/7) |   0.50 (2/4) |
| cache_collapse  |   0.85 (17/20) |   0.85 (17/20) |   0.86 (6/7) |   0.80 (4/5) |
| ALL             | 0.66 (232/350) | 0.80 (191/238) | 0.86 (71/83) | 0.64 (34/53) |

By effect size (>= 10 min, sd units): < 3 0.24, [3, 6) 0.35, [6, 10) 0.71, >= 10 0.93; rates and
volume with size >= 3 by extra events: [10, 30) 0.78, >= 30 0.85; 5-minute bursts 0.83. Eligible by
environment: production 0.84, staging 0.35 (the default levels have no environment, so a staging
incident is diluted in its service x model series with production). Model and provider outages: all
found, reported at service x model (14) or provider (6) level, never at a model level. Time to detect
(eligible): median 12 min, p90 78 min. False episodes: 221 = **1.81 per series per week**, 71 (0.58) on
no labelled benign change; on benign changes: holiday 58, DST 47, staging load test 20, release 18, new
series 4, growth 3. Unlabelled ones are mostly ``calls`` down at service x model (55): 67 of all false
episodes on support-agent/gpt-4.1-mini and 25 on agent-v2, 5-25 minute windows at night: agent traces
arrive as clusters of calls, so counts vary more than the volume model's expectation allows. Labelled
consequences that alerted and are not counted false: fallback traffic 7, retry volume 9. ``detect``:
median 1.6 s CPU over a median 0.35M calls. Watch (``--watch``, 3 sampled eligible incidents per seed,
``now`` stepping every 5 minutes, spans stored when they end): 21 of 30 found within 60 min, median 25
min, **9 of 30 (0.30) within 10 min**; errors, rate limits and provider outages in 5-25 min; ramps,
volume drops, a slowdown and a cache collapse not within 60 min (the script prints "nan" for a p90
beyond the 60-minute horizon: read it as "> 60"). One seed: 52-184 s wall at load 5-20 (insert ~35 s
CPU). Worst eligible misses: staging incidents (x9.7 volume on code-review@staging, size 27.5; 83%
truncation on search@staging, size 23.7), a x10 spike on the sparse finance-reports (0.1 call/min, size
16.9), token shifts on the young gpt-5-mini canary (sizes 12.7, 6.0), truncation on translate (12.0).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_scenarios_v6 as gen

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter

UP, DOWN = h.UP, h.DOWN


_m = h.family

LAT, TTFT, ERR = ("latency_p95_ms", UP), ("ttft_p95_ms", UP), ("error_rate", UP)
FAMILY = {
    **{k: _m(LAT) for k in gen.LATENCY_KINDS},
    "ttft": _m(TTFT),
    **{k: _m(ERR) for k in gen.ERROR_KINDS},
    "truncation": _m(("truncation_rate", UP)),
    "empty_output": _m(("empty_output_rate", UP)),
    "volume_drop": _m(("calls", DOWN)),
    "volume_spike": _m(("calls", UP)),
    "tokens_shift": _m(("tokens_per_call", UP), ("cost_per_call_usd", UP)),
    "cache_collapse": _m(("cost_per_call_usd", UP)),
}
_NO_ANSWER = _m(("tokens_per_call", DOWN), ("tokens_per_call_low", UP), ("cost_per_call_usd", DOWN),
                ("empty_output_rate", UP))  # fmt: skip
# retries raise calls; failed calls answer nothing, fast (429) or slowly (5xx); the fallback series
# (Incident.spill) gets the planner's traffic at its own latency, tokens and cost
_FAILURES = _NO_ANSWER | _m(("calls", UP), ("calls", DOWN), LAT, ("latency_p95_ms", DOWN), TTFT)
CONSEQUENCES = {
    **{k: _m(TTFT) for k in gen.LATENCY_KINDS},
    "ttft": _m(LAT),
    **{k: _FAILURES for k in gen.ERROR_KINDS},
    "provider_outage": _FAILURES | _m(("tokens_per_call", UP), ("cost_per_call_usd", UP)),
    "truncation": _m(("tokens_per_call", UP), LAT, ("cost_per_call_usd", UP)),
    "empty_output": _NO_ANSWER | _m(("latency_p95_ms", DOWN)),
    "tokens_shift": _m(LAT),
}
EXPLAINS = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
BENIGN_KINDS = ("load_test", "release", "new_series", "migration", "holiday", "dst", "growth")  # most specific first
COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 360), (360, 721))
WATCH_STEPS = 12  # 5-minute steps: an hour


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate (see the module docstring)."""
    ok = c["status"] == gen.OK
    if kind in gen.ERROR_KINDS:
        return float((~ok).sum())
    if kind == "truncation":
        return float(c["cut"].sum())
    if kind == "empty_output":
        return float((ok & (c["out_tok"] == 0)).sum())
    if kind in gen.VOLUME_KINDS:
        return float(len(c["t"]))
    if kind in (*gen.LATENCY_KINDS, "ttft"):
        v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft" else c["dur_ms"][ok]
        return float(np.log(np.percentile(v, 95))) if len(v) >= 3 else float("nan")
    v = (c["out_tok"] if kind == "tokens_shift" else c["cost"])[ok]
    return float(np.log(v.mean())) if len(v) >= 3 and v.mean() > 0 else float("nan")


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    return {"sparse": all(m.rate < 1 for m in members), "group": inc.group, "mode": members[0].mode,
            "env": members[0].environment, "levels": sorted({str(a.level) for a in hits}),
            "hits": len(hits)}  # fmt: skip


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.wobble, label=lambda s: f"{s.service}/{s.model}" + ("@staging" if s.environment == "staging" else ""),
    prefix="llmtrace-det6-", row_extras=_extras,
)  # fmt: skip


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


def run_seed(seed: int, sample: int = 0) -> dict[str, Any]:
    """One seed; with ``sample``, watch's time to detect of that many eligible incidents first
    (the store is filled as spans arrive, checking at each 5-minute step, then completed)."""
    watched: list[dict[str, Any]] = []
    res = h.run_seed(BENCH, seed, (lambda client, sc: _watch_fill(client, sc, sample, watched)) if sample else None)
    res["watch"] = watched
    sc = res["sc"]
    spills = [inc for inc in sc.incidents if inc.spill]
    # episodes on a fallback series explained by its primary's outage (labelled consequences, not false)
    res["spill_alerts"] = sum(
        any(h.finds(a, sc, inc, EXPLAINS, gen.PERMANENT, inc.spill) for inc in spills) for a in res["all_episodes"]
    )
    # episodes that only retries explain: calls up on a series with an error incident
    res["retry_alerts"] = sum(_retry_only(a, sc) for a in res["all_episodes"])
    return res


def _retry_only(a: Any, sc: gen.Scenario) -> bool:
    if (a.metric, a.direction) != ("calls", UP) or any(h.finds(a, sc, i, FAMILY, gen.PERMANENT) for i in sc.incidents):
        return False
    return any(h.finds(a, sc, i, EXPLAINS, gen.PERMANENT) for i in sc.incidents if i.kind in gen.ERROR_KINDS)


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    h.recall_head(BENCH, rows, 15, DURATION_BINS)
    short = [r for r in rows if r["minutes"] < 10 and r["size"] >= 3]
    print(f"  5-minute bursts of size >= 3 (not in the target): {h.recall(short)}")
    h.recall_by(
        rows,
        el,
        (
            ("scope", ("series", "service", "model", "provider")),
            ("env", ("production", "staging")),
            ("mode", ("stream", "batch", "mixed")),
        ),
    )
    print(f"  overlapping incidents: eligible {h.recall([r for r in el if r['overlap']])}")
    _levels(rows)
    print(f"  labelled consequences alerted (not false): fallback traffic {sum(r['spill_alerts'] for r in results)}, "
          f"retry volume {sum(r['retry_alerts'] for r in results)}")  # fmt: skip
    h.ttd_line(el)
    h.false_report(BENCH, results)
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _levels(rows: list[dict[str, Any]]) -> None:
    """Model-wide and provider incidents: at which levels they were reported, and how many episodes."""
    for scope in ("model", "provider"):
        found = [r for r in rows if r["scope"] == scope and r["found"]]
        levels: dict[str, int] = defaultdict(int)
        for r in found:
            levels["+".join(r["levels"])] += 1
        hits = [r["hits"] for r in found]
        print(f"  {scope}-wide incidents found: {len(found)}; reported at levels {dict(levels)}; episodes per "
              f"incident median {h.pct(hits, 50):.0f}, max {max(hits, default=0)}")  # fmt: skip


# --------------------------------------------------------------------------- watch's time to detect
def _watch_fill(client: Any, sc: gen.Scenario, sample: int, out: list[dict[str, Any]]) -> int:
    """Insert the spans in order of arrival; at each sampled incident, step ``now`` every 5 minutes
    from its start and detect as ``llmtrace watch`` does, until one of the report's anomalies finds it."""
    el = [inc for inc in sc.incidents if eligible(h.row(BENCH, sc, inc, []))]
    rng = np.random.default_rng([sc.seed, 60])
    picked = sorted((el[k] for k in rng.choice(len(el), min(sample, len(el)), replace=False)), key=lambda i: i.start)
    arrive, rows, calls = gen.span_rows(sc)
    done = 0
    for inc in picked:
        first, cpu = None, []
        for step in range(1, WATCH_STEPS + 1):
            now = inc.start + 5 * step
            upto = int(np.searchsorted(arrive, now, side="right"))
            gen.insert_rows(client, rows[done:upto])
            done = upto
            started, end = time.process_time(), sc.at(now)
            report = anomalies.detect(client, Filter(start=end - timedelta(hours=24), end=end), "auto", now=end)
            cpu.append(time.process_time() - started)
            if any(h.finds(a, sc, inc, FAMILY, gen.PERMANENT) for a in report.anomalies):
                first = 5 * step
                break
        label = BENCH.label(sc.series[inc.series[0]]) + (f" +{len(inc.series) - 1}" if len(inc.series) > 1 else "")
        out.append({"seed": sc.seed, "kind": inc.kind, "ttd": first, "minutes": inc.end - inc.start,
                    "series": label, "at": f"{sc.at(inc.start):%a %H:%M}", "cpu": float(np.median(cpu))})  # fmt: skip
        print(f"  watch seed {sc.seed}: {inc.kind} on {label} at {sc.at(inc.start):%a %H:%M} -> "
              f"{first if first is not None else f'> {5 * WATCH_STEPS}'} min", flush=True)  # fmt: skip
    gen.insert_rows(client, rows[done:])
    return calls


def main() -> int:
    return h.cli(__doc__, "600-609", run_seed, report, WATCH_STEPS, h.false_line)


if __name__ == "__main__":
    raise SystemExit(main())

"""Anomaly detection judged on the held-out v3 generator (``detection_scenarios_v3``), many seeds.

    python benchmarks/detection_v3.py --seeds 200-209 [--verbose]

Per seed: fifteen days of traffic (eight of history, then the judged week) with labelled incidents
and benign changes go into a fresh chDB store through ``otel_traces`` (the project's views fill
``llm_calls``); ``anomalies.detect`` runs over the week with its defaults; its episodes are
matched to incidents. An episode *finds* an incident when it has the incident's metric family
(below), overlaps [start - 5 min, end + 30 min] (permanent changes: [start - 5 min, start + 6 h])
and is on a compatible series (every label of the episode's series equals that of a series the
incident hit; app-wide episodes are compatible with everything). An episode is *false* when it
neither finds nor is *explained* by an overlapping incident (consequences count: a TTFT spike
slows whole calls, truncation and longer answers raise tokens, latency and cost, failed calls
have no tokens). Benign alerts are false episodes overlapping a benign change on its series.

Effect (from the generator's own parameters, never from the detector):
* error/truncation rates: extra events = sum over the window's minutes of expected calls x
  (incident rate - base rate); normal variation = sqrt(n p (1 - p) + (0.3 n p)^2), the binomial
  spread plus the generator's hourly overdispersion of the rate;
* volume: |factor - 1| x expected calls, over sqrt(E + 0.15^2 sum of squared 10-minute
  expectations) (Poisson plus the generator's gamma spread per 10 minutes);
* latency, TTFT, tokens, cost: Monte Carlo with the generator's own ``draw`` (100 paired
  replicates of the incident window's calls, at most its first 2 hours): shift of the log of
  the window's p95 (latency, TTFT of successful streams) or mean per successful call (output
  tokens, cost), over the standard deviation of that log in normal windows (with the hourly
  provider latency wobble).
*Eligible*: >= 10 minutes (permanent changes count as 120) and effect >= 3x normal variation;
for error/truncation rates and volume also >= 10 extra (or missing) events: with a base rate of
0.5%, one extra failure in five calls is "8x normal variation", which no detector can tell from
chance. The events-only reading for rates (v2's definition) is printed too.
"Young": the series is < 2 days old at the incident (the generator puts incidents 12-20 h after
a new series appears).

Results, seeds 200-209 (``--seeds 200-209``, detector at main 9e302b9 + the tree of 09:16 UTC,
2026-12-04; 307 incidents, 153 eligible, 183 series-weeks, 1.0-1.8M calls per seed):

| kind          |            all |       eligible | eligible young |
|---------------|----------------|----------------|----------------|
| latency       |   0.43 (12/28) |    0.70 (7/10) |     0.00 (0/1) |
| latency_ramp  |   0.45 (15/33) |   0.79 (11/14) |     1.00 (1/1) |
| ttft          |   0.60 (12/20) |     0.89 (8/9) |     0.00 (0/1) |
| errors        |   0.47 (20/43) |   1.00 (12/12) |     1.00 (2/2) |
| error_ramp    |   0.39 (11/28) |     1.00 (5/5) |              - |
| truncation    |    0.33 (9/27) |     0.83 (5/6) |              - |
| volume_drop   |   0.31 (11/36) |    0.50 (9/18) |     0.25 (1/4) |
| volume_spike  |   0.50 (19/38) |   0.56 (19/34) |     0.00 (0/8) |
| tokens_shift  |   0.64 (18/28) |   0.86 (18/21) |     0.67 (2/3) |
| cost          |   0.88 (23/26) |   0.96 (23/24) |     1.00 (2/2) |
| ALL           | 0.49 (150/307) | 0.76 (117/153) |    0.36 (8/22) |

By effect size (>= 10 min), sd units (volume, latency, TTFT, tokens, cost): [0, 3) 0.16 (8/51),
[3, 6) 0.48 (16/33), [6, 10) 0.76 (25/33), >= 10 0.84 (54/64); rates by extra events: [0, 5) 0.12,
[5, 10) 0.54, [10, 30) 0.86 (6/7), >= 30 1.00 (16/16). By duration: < 10 min 0.26, 10-30 0.35,
30-60 0.54, 60-120 0.61, permanent changes 0.76. By scope (eligible): series 0.72, service 0.81,
provider 0.94; overlapping incidents 0.85. Time to detect (eligible): median 12 min, p90 66 min.
False episodes: 557 over 183.0 series-weeks = **3.04 per series per week** (mostly ``calls``
up/down at series and service level). Alerts on benign changes: release 3, nightly peak 115,
weekend 162, Monday rush 69, new series 25. ``detect`` (median): 5.8 s CPU / 22.8 s wall with
call-level findings, 4.6 s CPU / 17.3 s wall episodes only, over a median 1.34M stored calls, at a
load average of ~12 on the 2-core machine (wall times are dominated by other jobs).
Rerun at main a179f3a, seeds 200-203 only (load ~20-35, no time for ten): eligible 0.74 (46/62;
young 3/7), false 0.34 per series per week (was 3.04 over 200-209), volume_drop 3/6, volume_spike
9/14, TTD median 7, p90 54 min; detect 3.5-4.6 s CPU over 1.35-1.81M calls (call-level findings on).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_scenarios_v3 as gen

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter

UP, DOWN = h.UP, h.DOWN
FAMILY = {
    "latency": {("latency_p95_ms", UP)},
    "latency_ramp": {("latency_p95_ms", UP)},
    "ttft": {("ttft_p95_ms", UP)},
    "errors": {("error_rate", UP)},
    "error_ramp": {("error_rate", UP)},
    "truncation": {("truncation_rate", UP)},
    "volume_drop": {("calls", DOWN)},
    "volume_spike": {("calls", UP)},
    "tokens_shift": {("tokens_per_call", UP), ("cost_per_call_usd", UP)},
    "cost": {("cost_per_call_usd", UP)},
}
_FAILED_CALLS = {("tokens_per_call", DOWN), ("cost_per_call_usd", DOWN), ("empty_output_rate", UP)}
CONSEQUENCES = {
    "ttft": {("latency_p95_ms", UP)},
    "truncation": {("tokens_per_call", UP), ("latency_p95_ms", UP), ("cost_per_call_usd", UP)},
    "tokens_shift": {("latency_p95_ms", UP)},
    "errors": _FAILED_CALLS,
    "error_ramp": _FAILED_CALLS,
}
RATES = ("errors", "error_ramp", "truncation")
VOLUME = ("volume_drop", "volume_spike")
SD_BINS = ((0, 3), (3, 6), (6, 10), (10, math.inf))
EVENT_BINS = ((0, 5), (5, 10), (10, 30), (30, math.inf))
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 121))
REPS = 100


# --------------------------------------------------------------------------- effect sizes
def _window(inc: gen.Incident) -> tuple[int, int]:
    return inc.start, min(inc.end, inc.start + 120)


def _expected(sc: gen.Scenario, inc: gen.Incident) -> dict[int, np.ndarray]:
    """Expected calls per minute of each affected series in the incident window, without the
    incident's own volume effect."""
    lo, hi = _window(inc)
    return {i: gen.expected_per_minute(sc, i, with_incidents=True, skip=inc)[lo:hi] for i in inc.series}


def _block_squares(v: np.ndarray) -> float:
    """Sum of squared expectations per 10-minute block (the gamma spread's variance, over cv^2)."""
    n = -(-len(v) // gen.BLOCK_MIN) * gen.BLOCK_MIN
    blocks = np.pad(v, (0, n - len(v))).reshape(-1, gen.BLOCK_MIN).sum(1)
    return float(blocks @ blocks)


def effect(sc: gen.Scenario, inc: gen.Incident) -> tuple[float, float]:
    """(size in normal variations, extra events); extra events only for rates and volume."""
    lam = _expected(sc, inc)
    if inc.kind in VOLUME:
        e = sum(float(v.sum()) for v in lam.values())
        var = e + gen.VOLUME_CV**2 * sum(_block_squares(v) for v in lam.values())
        extra = abs(inc.factor - 1) * e
        return extra / math.sqrt(max(var, 1e-9)), extra
    if inc.kind in RATES:
        return _rate_effect(sc, inc, lam)
    return _mc_effect(sc, inc, lam), 0.0


def _rate_effect(sc: gen.Scenario, inc: gen.Incident, lam: dict[int, np.ndarray]) -> tuple[float, float]:
    extra = var = 0.0
    lo, hi = _window(inc)
    t = np.arange(lo, hi) + 0.5
    for i, v in lam.items():
        s = sc.series[i]
        base = s.p_err if inc.kind != "truncation" else s.p_trunc
        mods = gen.Mods.neutral(len(t), s.p_err, s.p_trunc)
        gen.apply(inc, t, mods)
        p = mods.p_trunc if inc.kind == "truncation" else mods.p_err
        n = v.sum() * (1 - s.p_err if inc.kind == "truncation" else 1)
        extra += float((v * (p - base)).sum())
        var += n * base * (1 - base) + (gen.ERROR_CV * n * base) ** 2
    return extra / math.sqrt(max(var, 1e-9)), extra


def _metric(kind: str, cols: dict[str, np.ndarray], rep: np.ndarray) -> np.ndarray:
    """The window metric per replicate: log p95 (latency, TTFT) or log mean (tokens, cost)."""
    ok = ~cols["failed"]
    if kind in ("latency", "latency_ramp"):
        values, keep = cols["dur_ms"], ok
    elif kind == "ttft":
        values, keep = cols["ttft_ms"], ok & ~np.isnan(cols["ttft_ms"])
    else:
        values, keep = (cols["out_tok"] if kind == "tokens_shift" else cols["cost"]), ok
    out = np.full(REPS, np.nan)
    for r in range(REPS):
        v = values[keep & (rep == r)]
        if len(v) >= 3:
            out[r] = math.log(np.percentile(v, 95) if kind in ("latency", "latency_ramp", "ttft") else v.mean())
    return out


def _mc_effect(sc: gen.Scenario, inc: gen.Incident, lam: dict[int, np.ndarray]) -> float:
    """Paired Monte Carlo: the same random draws with and without the incident."""
    rng = np.random.default_rng([sc.seed, 11, inc.start])
    lo, _ = _window(inc)
    base_parts, inc_parts, reps = [], [], []
    wobble = np.exp(rng.normal(0, gen.LAT_WOBBLE, REPS))
    for i, v in lam.items():
        s = sc.series[i]
        counts = rng.poisson(np.tile(v, REPS))
        minute = np.repeat(np.tile(np.arange(len(v)), REPS), counts)
        rep = np.repeat(np.repeat(np.arange(REPS), len(v)), counts)
        t = lo + minute + rng.random(len(minute))
        speed = gen.speed(sc, s, t) * wobble[rep]
        mods = gen.Mods.neutral(len(t), s.p_err, s.p_trunc)
        seed = int(rng.integers(1 << 62))
        base_parts.append(gen.draw(s, t, mods, speed, np.random.default_rng(seed)))
        gen.apply(inc, t, mods)
        inc_parts.append(gen.draw(s, t, mods, speed, np.random.default_rng(seed)))
        reps.append(rep)
    rep = np.concatenate(reps)
    base = _metric(inc.kind, _concat(base_parts), rep)
    hit = _metric(inc.kind, _concat(inc_parts), rep)
    good = ~np.isnan(base) & ~np.isnan(hit)
    if good.sum() < REPS / 2 or np.std(base[good]) == 0:
        return 0.0
    return float(np.mean(hit[good] - base[good]) / np.std(base[good]))


_concat = h.concat


# --------------------------------------------------------------------------- matching
_compatible, _span, _benign_hits, _overlapped = h.compatible, h.span, h.benign_hits, h.overlapped


def finds(a: Any, sc: gen.Scenario, inc: gen.Incident, families: dict[str, set[tuple[str, str]]] = FAMILY) -> bool:
    """Whether episode ``a`` reports incident ``inc`` (metric family, time, series)."""
    return h.finds(a, sc, inc, families, gen.PERMANENT)


def explained(a: Any, sc: gen.Scenario) -> bool:
    both = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
    return any(finds(a, sc, inc, both) for inc in sc.incidents)


# --------------------------------------------------------------------------- one seed
def run_seed(seed: int) -> dict[str, Any]:
    sc = gen.build(seed)
    tmp = tempfile.mkdtemp(prefix="llmtrace-det3-")
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(f"chdb://{tmp}")
    try:
        apply_migrations(client_runner(client), ttl_days=30)
        calls = gen.insert(client, sc)
        week = Filter(start=sc.end - timedelta(days=7), end=sc.end)
        started, cpu = time.perf_counter(), time.process_time()
        anomalies.detect(client, week, now=sc.end)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        report = anomalies.detect(client, week, now=sc.end, include_calls=False)
        episode_seconds, episode_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)
    episodes = report.episodes()
    rows = [_row(sc, inc, episodes) for inc in sc.incidents]
    false = [a for a in episodes if not explained(a, sc)]
    weeks = sum((gen.MINUTES - max(s.first_minute, sc.judged_from)) / (7 * 1440) for s in sc.series)
    return {
        "seed": seed,
        "rows": rows,
        "false": false,
        "benign": _benign_hits(sc, false),
        "benign_windows": len(sc.benign),
        "series_weeks": weeks,
        "seconds": seconds,
        "episode_seconds": episode_seconds,
        "cpu": cpu_seconds,
        "episode_cpu": episode_cpu,
        "calls": calls,
    }


def _row(sc: gen.Scenario, inc: gen.Incident, episodes: list[Any]) -> dict[str, Any]:
    size, extra = effect(sc, inc)
    hits = [a for a in episodes if finds(a, sc, inc)]
    detected = [sc.minute(a.detected_at) - inc.start for a in hits if a.detected_at]
    s = sc.series[inc.series[0]]
    return {
        "seed": sc.seed,
        "kind": inc.kind,
        "size": size,
        "extra": extra,
        "minutes": 120 if inc.kind in gen.PERMANENT else inc.end - inc.start,
        "found": bool(hits),
        "young": any(
            sc.series[i].first_minute > 0 and inc.start - sc.series[i].first_minute < 2 * 1440 for i in inc.series
        ),
        "overlap": _overlapped(sc, inc),
        "scope": inc.scope,
        "ttd": min(detected) if detected else None,
        "at": f"{sc.at(inc.start):%a %H:%M}",
        "factor": round(inc.factor, 3),
        "rate": round(s.rate, 2),
        "series": f"{s.service.name}/{s.model}" + (f" +{len(inc.series) - 1}" if len(inc.series) > 1 else ""),
    }


def eligible(row: dict[str, Any], events_only: bool = False) -> bool:
    if row["minutes"] < 10:
        return False
    if row["kind"] in RATES:
        return row["extra"] >= 10 and (events_only or row["size"] >= 3)
    if row["kind"] in VOLUME:
        return row["extra"] >= 10 and row["size"] >= 3
    return row["size"] >= 3


# --------------------------------------------------------------------------- report
_recall, _pct = h.recall, h.pct


def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    print(
        f"\nincidents: {len(rows)}, eligible: {len(el)} (events-only reading: {sum(eligible(r, True) for r in rows)})"
    )
    print(f"| {'kind':13} | {'all':>14} | {'eligible':>14} | {'eligible young':>14} | {'events-only elig.':>17} |")
    print(f"|{'-' * 15}|{'-' * 16}|{'-' * 16}|{'-' * 16}|{'-' * 19}|")
    for kind in [*gen.KINDS, "ALL"]:
        of = [r for r in rows if kind in ("ALL", r["kind"])]
        e = [r for r in of if eligible(r)]
        y = [r for r in e if r["young"]]
        eo = [r for r in of if eligible(r, True)]
        print(f"| {kind:13} | {_recall(of):>14} | {_recall(e):>14} | {_recall(y):>14} | {_recall(eo):>17} |")
    print("\nrecall by effect size, incidents >= 10 min")
    for label, pick, bins in (
        ("sd (volume, latency, ttft, tokens, cost)", lambda r: r["kind"] not in RATES and r["size"], SD_BINS),
        ("sd (error/truncation rates)", lambda r: r["kind"] in RATES and r["size"], SD_BINS),
        ("extra events (error/truncation rates)", lambda r: r["kind"] in RATES and r["extra"], EVENT_BINS),
    ):
        cells = []
        for lo, hi in bins:
            of = [r for r in rows if r["minutes"] >= 10 and pick(r) is not False and lo <= pick(r) < hi]
            cells.append(f"[{lo}, {hi}): {_recall(of)}")
        print(f"  {label}: " + "; ".join(cells))
    print("recall by duration (all sizes): " + "; ".join(
        f"[{lo}, {hi}) min {_recall([r for r in rows if r['kind'] not in gen.PERMANENT and lo <= r['minutes'] < hi])}"
        for lo, hi in DURATION_BINS
    ) + f"; permanent {_recall([r for r in rows if r['kind'] in gen.PERMANENT])}")  # fmt: skip
    for scope in ("series", "service", "provider"):
        print(f"  scope {scope}: all {_recall([r for r in rows if r['scope'] == scope])}, "
              f"eligible {_recall([r for r in el if r['scope'] == scope])}")  # fmt: skip
    print(f"  overlapping incidents: eligible {_recall([r for r in el if r['overlap']])}")
    ttd = [r["ttd"] for r in el if r["ttd"] is not None]
    print(
        f"time to detect (eligible, detected_at - start): median {_pct(ttd, 50):.0f} min, p90 {_pct(ttd, 90):.0f} min"
    )
    false = sum(len(res["false"]) for res in results)
    weeks = sum(res["series_weeks"] for res in results)
    print(f"false episodes: {false} over {weeks:.1f} series-weeks = {false / weeks:.2f} per series per week")
    benign: dict[str, int] = defaultdict(int)
    for res in results:
        for k, v in res["benign"].items():
            benign[k] += v
    kinds = ("release", "daily_peak", "weekend", "monday", "new_series")
    print("alerts on benign changes: " + ", ".join(f"{k} {benign.get(k, 0)}" for k in kinds))
    med = {
        k: statistics.median(res[k] for res in results) for k in ("seconds", "episode_seconds", "cpu", "episode_cpu")
    }
    print(
        f"detect, median over seeds: {med['seconds']:.2f} s wall / {med['cpu']:.2f} s CPU with call-level findings, "
        f"{med['episode_seconds']:.2f} s wall / {med['episode_cpu']:.2f} s CPU episodes only, "
        f"over a median {statistics.median(res['calls'] for res in results):,.0f} calls "
        f"({gen.DAYS} days stored, 7 judged); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if verbose:
        _details(results, rows)


def _details(results: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    by_metric: dict[str, int] = defaultdict(int)
    for res in results:
        for a in res["false"]:
            by_metric[f"{a.level}:{a.metric}:{a.direction}"] += 1
    print("false episodes by level:metric:direction:", dict(sorted(by_metric.items(), key=lambda x: -x[1])))
    for res in results:
        for a in res["false"]:
            print(f"  false: seed {res['seed']} {a.level} {a.summary}")
    for r in rows:
        if eligible(r) and not r["found"]:
            print("  missed:", {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()})


_seeds = h.seeds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", default="200-209", help="e.g. 200-209 (the reported run) or 300,301")
    parser.add_argument("--verbose", action="store_true", help="list false episodes and missed eligible incidents")
    args = parser.parse_args()
    results = []
    for seed in _seeds(args.seeds):
        res = run_seed(seed)
        found = sum(r["found"] for r in res["rows"])
        print(
            f"seed {seed}: {res['calls']:,} calls, {len(res['rows'])} incidents, {found} found, "
            f"{len(res['false'])} false, detect {res['seconds']:.2f} s wall, {res['cpu']:.2f} s CPU",
            flush=True,
        )
        results.append(res)
    report(results, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

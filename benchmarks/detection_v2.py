"""Detection quality on the independent v2 generator (``detection_scenarios_v2``), many seeds.

    python benchmarks/detection_v2.py --seeds 100-109 [--series 10] [--verbose] [--cache DIR]

Per seed: a week (plus one day of history) of traffic with labelled incidents is written to
a fresh chDB store, ``anomalies.detect`` runs over the week with its defaults (``by="auto"``),
and episodes are matched to incidents: same metric family, overlapping in time (from 5
minutes before the incident to 30 minutes after it ends), on a compatible series (the
episode's series values all belong to an affected series). Printed:

* recall per incident kind, per effect size and per duration, and on *eligible* incidents
  (>= 10 minutes and effect >= 3x normal variation, or >= 10 extra events for rates),
  also for young series (< 2 days old at the incident);
* false episodes per series per week (an episode matching no incident);
* time to detect: end of the first flagged window minus the incident start (median, p90);
* wall time of ``detect`` (with call-level findings) on each seed's ~1M calls.

Effect size: rates -> extra events (new rate - base rate) x expected calls; volume ->
|factor - 1| x sqrt(expected calls) (Poisson); latency/TTFT/tokens/cost -> log(factor) over
the normal variation of the incident window's log p95: sqrt((2.1 sigma / sqrt(calls))^2 +
level noise^2), from the generator's own parameters (ramps: their mean factor).
Thresholds were tuned on seeds 0-4 only; report seeds 100-109.

Measured 2026-12-04 13:27 UTC at commit 6efcde9 (seasonal volume ratios by day type, young
series borrowing their parent's, one-sided rate wobble, level picking by excess events;
2-core machine shared with other jobs at load 15, so wall times are not reported here):

seeds 100-109 (held out): 337 incidents, 240 eligible

    kind           eligible recall    eligible young
    latency        0.88 (37/42)       1.00 (2/2)
    latency_ramp   0.87 (27/31)       0.80 (4/5)
    errors         0.96 (23/24)       1.00 (1/1)
    volume_drop    0.71 (22/31)       -
    volume_spike   0.82 (18/22)       0.75 (3/4)
    ttft           0.90 (9/10)        1.00 (1/1)
    truncation     0.95 (18/19)       1.00 (1/1)
    tokens_shift   1.00 (35/35)       1.00 (3/3)
    cost           0.85 (22/26)       1.00 (2/2)
    ALL            0.88 (211/240)     0.89 (17/19)   (all incidents, any size: 0.67)

    by size (>= 10 min): x normal variation [3, 6) 0.66, [6, 10) 0.83, >= 10 0.96;
    rates: 10-30 extra events 0.87, >= 30 1.00
    false episodes: 34 over 83.2 series-weeks = 0.41 per series per week (target <= 0.5):
    calls up 14, calls down 6, tokens_per_call down 10, latency 3, truncation 1
    time to detect (eligible): median 7 min, p90 45 min

seeds 0-4 (tuning): eligible recall 0.88 (118/134), false 0.40 per series-week, time to
detect median 8 min, p90 51 min.

The previous detector (commit "a rate's baseline uncertainty in the test"): held-out
eligible recall 0.87 (209/240), false 0.28 per series-week, TTD median 7 / p90 46 min;
tuning 0.86 and 0.26. This session's changes were driven by the v3 generator (weekly
seasonality, nightly batches, young series); here they cost 0.13 false episodes per
series-week (not attributed change by change; on the tuning seeds the extra ones were mostly
rate episodes, after the rate wobble was measured on the judged side only and leaf episodes
were no longer folded into a coincident coarser one).

Not met: recall 0.95 (volume drops and spikes are the gap: the generator's business-hours
ramps leave the trailing-and-profile expectation a wobble the negative binomial has to
allow for, so a 10-30 minute change of 2-4x Poisson noise stays under the bar), and a
time to detect of two 5-minute buckets (the p90 is the 3-hour window's).
Rerun at 5b36608 (minute-of-hour volume shape, before the recurring-window filter), seeds
100-109, load ~20-35: eligible 0.87 (211/243; young 0.95, 18/19), false 0.47 per series-week,
volume_drop 18/31, volume_spike 16/21, TTD median 7 / p90 37 min.
Rerun at main db59dd6 (rates' same-hours and minute-of-hour baselines, volume falls capped by
previous days' same hours, volume score 5, change labels), seeds 100-109, 19:56-20:11 UTC, load
~12-20: eligible 0.87 (213/244; young 0.94, 17/18), false 40 over 83.2 series-weeks = 0.48 per
series-week; volume_drop 23/31, volume_spike 16/21, latency_ramp 25/32, errors 27/28, truncation
21/22, cost 21/25; TTD median 8 / p90 39 min.
Main e52d232 (clustered volume, environment level, holiday lull, rises floored by the same hours
within an hour) against main b528f86, both clean archives, seeds 100-104 only (time), 22:34-22:40 UTC,
load 3-4: eligible 0.81 (91/113) both, volume_drop 11/19 and volume_spike 10/14 both; false 23 -> 14
over 40.1 series-weeks (0.57 -> 0.35 per series-week); TTD median 7 / p90 34 min both.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_scenarios_v2 as gen

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter

FAMILY = {
    "latency": {("latency_p95_ms", "up")},
    "latency_ramp": {("latency_p95_ms", "up")},
    "ttft": {("ttft_p95_ms", "up")},
    "errors": {("error_rate", "up")},
    "truncation": {("truncation_rate", "up")},
    "volume_drop": {("calls", "down")},
    "volume_spike": {("calls", "up")},
    "tokens_shift": {("tokens_per_call", "up"), ("cost_per_call_usd", "up")},
    "cost": {("cost_per_call_usd", "up")},
}
SIZE_BINS = ((0, 3), (3, 6), (6, 10), (10, math.inf))
EVENT_BINS = ((0, 5), (5, 10), (10, 30), (30, math.inf))
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 10_000))
LEVEL_NOISE = {"latency": 0.06, "latency_ramp": 0.06, "ttft": 0.06, "tokens_shift": 0.03, "cost": 0.03}


def effect(sc: gen.ScenarioV2, inc: gen.Incident) -> tuple[float, str]:
    """(size, unit): extra events for rates, multiples of normal variation otherwise."""
    calls = sum(gen.expected_calls(sc, i, inc.start, min(inc.end, inc.start + timedelta(hours=2))) for i in inc.series)
    first = sc.series[inc.series[0]]
    if inc.kind in ("errors", "truncation"):
        base = first.err if inc.kind == "errors" else first.trunc
        return max(0.0, inc.factor - base) * calls, "events"
    if inc.kind in ("volume_drop", "volume_spike"):
        return abs(inc.factor - 1) * math.sqrt(max(calls, 1e-9)), "sd"
    factor = (1 + inc.factor) / 2 if inc.kind == "latency_ramp" else inc.factor
    sigma = first.lat_sigma if inc.kind in ("latency", "latency_ramp", "ttft") else 0.4
    n = calls * (first.stream_share if inc.kind == "ttft" else 1.0)
    if n < 1:
        return 0.0, "sd"
    noise = math.sqrt((2.1 * sigma / math.sqrt(n)) ** 2 + LEVEL_NOISE[inc.kind] ** 2)
    return math.log(factor) / noise, "sd"


def _compatible(series: dict[str, str], sc: gen.ScenarioV2, inc: gen.Incident) -> bool:
    for i in inc.series:
        s = sc.series[i]
        attrs = {"service": s.service, "model": s.model, "provider": s.provider}
        if all(attrs.get(k) == v for k, v in series.items()):
            return True
    return False


def _matches(a: anomalies.Anomaly, sc: gen.ScenarioV2, inc: gen.Incident) -> bool:
    if (a.metric, a.direction) not in FAMILY[inc.kind]:
        return False
    late = timedelta(hours=3) if inc.kind == "tokens_shift" else timedelta(minutes=30)
    end = inc.start + timedelta(hours=6) if inc.kind == "tokens_shift" else inc.end
    if a.end < inc.start - timedelta(minutes=5) or a.start > end + late:
        return False
    return _compatible(a.series, sc, inc)


def _store(seed: int, series: int, cache: str | None) -> tuple[Path, datetime, bool]:
    """The seed's chDB directory, the scenario's end, and whether it already holds the calls.

    With ``cache`` the store is kept as ``cache/seed-N`` (the end beside it), so tuning runs
    reuse the generated week instead of writing a million calls again.
    """
    if cache is None:
        return Path(tempfile.mkdtemp(prefix="llmtrace-det2-")), gen.default_end(), False
    path = Path(cache) / f"seed-{seed}-{series}"
    marker = path.with_suffix(".end")
    if marker.exists():
        return path, datetime.fromisoformat(marker.read_text().strip()), True
    shutil.rmtree(path, ignore_errors=True)
    return path, gen.default_end(), False


def run_seed(seed: int, series: int, cache: str | None = None, by: str = "auto") -> dict[str, object]:
    tmp, end, filled = _store(seed, series, cache)
    sc = gen.build(seed, end, series=series)
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(f"chdb://{tmp}")
    try:
        apply_migrations(client_runner(client), ttl_days=30)  # a kept store gets the schema files added since
        if filled:
            calls = int(client.query("SELECT count() FROM llm_calls").result_rows[0][0])
        else:
            calls = gen.insert(client, sc)
            if cache is not None:
                tmp.with_suffix(".end").write_text(end.isoformat())
        week = Filter(start=sc.end - timedelta(days=7), end=sc.end)
        started = time.perf_counter()
        anomalies.detect(client, week, by, now=sc.end)
        seconds = time.perf_counter() - started
        report = anomalies.detect(client, week, by, now=sc.end, include_calls=False)
    finally:
        client.close()
        if cache is None:
            shutil.rmtree(tmp, ignore_errors=True)
    episodes = report.episodes()
    rows = []
    for inc in sc.incidents:
        size, unit = effect(sc, inc)
        hits = [a for a in episodes if _matches(a, sc, inc)]
        young = any(sc.minute(inc.start) - sc.series[i].first_minute < 2 * 1440 for i in inc.series) and any(
            sc.series[i].first_minute > 0 for i in inc.series
        )
        ttd = min((a.detected_at - inc.start for a in hits if a.detected_at), default=None)
        minutes = (inc.end - inc.start).total_seconds() / 60
        rows.append(
            {
                "seed": seed,
                "kind": inc.kind,
                "size": size,
                "unit": unit,
                "minutes": minutes,
                "found": bool(hits),
                "young": young,
                "ttd": ttd,
                "scope": inc.scope,
                "start": f"{inc.start:%m-%d %H:%M}",
                "factor": round(inc.factor, 2),
                "rate": round(sc.series[inc.series[0]].rate, 2),
                "series": f"{sc.series[inc.series[0]].service}/{sc.series[inc.series[0]].model}",
            }
        )
    false = [a for a in episodes if not any(_matches(a, sc, inc) for inc in sc.incidents)]
    judged_weeks = sum(min(7 * 1440, sc.days * 1440 - s.first_minute) / (7 * 1440) for s in sc.series)
    return {"rows": rows, "false": false, "series_weeks": judged_weeks, "seconds": seconds, "calls": calls, "sc": sc}


def eligible(row: dict[str, object]) -> bool:
    big = row["size"] >= (10 if row["unit"] == "events" else 3)  # type: ignore[operator]
    return bool(big and row["minutes"] >= 10)  # type: ignore[operator]


def _recall(rows: list[dict[str, object]]) -> str:
    return (
        f"{sum(r['found'] for r in rows) / len(rows):.2f} ({sum(r['found'] for r in rows)}/{len(rows)})"
        if rows
        else "-"
    )


def report(results: list[dict[str, object]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]  # type: ignore[attr-defined]
    false = sum(len(res["false"]) for res in results)  # type: ignore[arg-type]
    weeks = sum(res["series_weeks"] for res in results)  # type: ignore[misc]
    print(f"incidents: {len(rows)}, eligible: {sum(eligible(r) for r in rows)}")
    print(f"{'kind':14} {'all':>16} {'eligible':>16} {'eligible young':>16}")
    for kind in gen.KINDS:
        of = [r for r in rows if r["kind"] == kind]
        el = [r for r in of if eligible(r)]
        print(f"{kind:14} {_recall(of):>16} {_recall(el):>16} {_recall([r for r in el if r['young']]):>16}")
    el_all = [r for r in rows if eligible(r)]
    print(f"{'ALL':14} {_recall(rows):>16} {_recall(el_all):>16} {_recall([r for r in el_all if r['young']]):>16}")
    print("\nrecall by effect size (rates: extra events; others: x normal variation), incidents >= 10 min")
    for unit, bins in (("sd", SIZE_BINS), ("events", EVENT_BINS)):
        for lo, hi in bins:
            of = [r for r in rows if r["unit"] == unit and lo <= r["size"] < hi and r["minutes"] >= 10]
            print(f"  {unit:6} [{lo}, {hi}): {_recall(of)}")
    print("recall by duration (all sizes)")
    for lo, hi in DURATION_BINS:
        print(f"  [{lo}, {hi}) min: {_recall([r for r in rows if lo <= r['minutes'] < hi])}")
    ttd = [r["ttd"].total_seconds() / 60 for r in el_all if r["ttd"] is not None]  # type: ignore[union-attr]
    if ttd:
        q = statistics.quantiles(ttd, n=10)
        print(f"time to detect (eligible): median {statistics.median(ttd):.0f} min, p90 {q[-1]:.0f} min")
    print(f"false episodes: {false} over {weeks:.1f} series-weeks = {false / weeks:.2f} per series per week")
    secs = [res["seconds"] for res in results]
    calls = [res["calls"] for res in results]
    print(
        f"detect wall time: median {statistics.median(secs):.2f} s (max {max(secs):.2f}) "  # type: ignore[type-var]
        f"over {statistics.median(calls):,.0f} calls"
    )  # type: ignore[arg-type]
    if verbose:
        by_metric: dict[str, int] = defaultdict(int)
        for res in results:
            for a in res["false"]:  # type: ignore[attr-defined]
                by_metric[f"{a.level}:{a.metric}:{a.direction}"] += 1
        print("false episodes by level:metric:", dict(sorted(by_metric.items(), key=lambda x: -x[1])))
        for res in results:
            for a in res["false"]:  # type: ignore[attr-defined]
                print(f"  false: seed {res['sc'].seed} {a.level} {a.summary}")  # type: ignore[attr-defined]
        for r in rows:
            if eligible(r) and not r["found"]:
                print("  missed:", {k: v for k, v in r.items() if k != "ttd"})


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="100-109", help="e.g. 100-109 (report) or 0-4 (tuning)")
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--cache", help="keep each seed's store here and reuse it on later runs")
    parser.add_argument("--by", default="auto", help="the grouping judged: auto (default) or e.g. service,model")
    args = parser.parse_args()
    results = []
    for seed in _seeds(args.seeds):
        res = run_seed(seed, args.series, args.cache, args.by)
        print(
            f"seed {seed}: {res['calls']:,} calls, {len(res['rows'])} incidents, "  # type: ignore[arg-type]
            f"{sum(r['found'] for r in res['rows'])} found, {len(res['false'])} false, {res['seconds']:.2f} s",
            flush=True,
        )
        results.append(res)
    report(results, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Detection quality and speed on a fresh randomized scenario.

    python benchmarks/detection.py [--seed N] [--series 24] [--calls 1000000] [--data-dir DIR]

Generates ten days of traffic (three days of warm-up history, then the judged week) for
many series with daily peaks, injects anomaly events of random kind, time, duration (2-6
hours) and size, plus persistent drift in the last day of some series, and prints:

* anomaly episodes: recall per event size and overall, and false episodes per series per
  simulated week (targets: recall >= 0.9 for events of 3x normal variation or more, at most
  one false episode per series per week);
* drift verdicts (last day against the seven before): recall on injected drifts and the
  share of flagged (series, metric) pairs on series without any injected drift;
* wall time of the drift and anomaly queries over the whole store (target < 2 s each).

"Normal variation" is the standard deviation of the metric's hourly value for that series
at that hour of the day, simulated from the generator's own distributions (Poisson volume,
binomial rates, lognormal durations and costs), independently of the detector. An event of
size k moves the metric by k of those.

Measured 2026-12-04 with the v2 detector (count tests; commit "a rate's baseline
uncertainty in the test"), seeds 1-3, 24 series, 1M calls each:

    recall on events >= 3x: 0.50 (32/64)   (target >= 0.90: NOT met; the hourly detector had 0.91)
      1.5-3x 0.00 (0/21), 3-4x 0.11 (1/9), 4-6x 0.25 (5/20), 6-9x 0.74 (26/35)
    false episodes: 0 (0.00 per series per week)
    drift (seed 1): recall 1.00 over 8 drifts, no flag on series without drift
    anomalies.detect with call-level findings, 1,001,231 calls, 7 days: median of 3 2.04 s;
    of 5 runs min 1.88 s, median 2.23 s (load average 8-11 on 2 shared cores: not a clean
    measurement; the numpy scan is ~1 s of it after this session's changes, was ~3.8 s)

Why the v2 detector scores lower here (diagnosed 2026-12-04):
* two real bugs, fixed: the quasi-binomial ``phi`` per scale grew with a window's trials
  (11 on a busy series' 3-hour windows, which drowned a x2.2 latency spike: now a
  beta-binomial design effect), and the "recent 3 hours" rate was taken as a maximum
  without shrinkage (it picked up noise, and the spread estimate with it);
* an evaluation mismatch, by design: sizes here are multiples of the *hourly statistic's*
  spread (the p95, the *mean* cost per call, the hourly volume) for events of 2-6 hours,
  while the v2 detector counts calls past the usual p90 (about 0.6 of a mean test's z for a
  small mean shift such as cost x1.06), holds every window to p <= 1e-7 over 4 scales x 13
  metrics x 4 levels, and flags volume only below half or above 1.8x the expectation (the
  misses are mostly x0.6-0.75 and x1.35-1.8 volume changes, 1.5-4 percentage-point rate
  shifts over hours, and 6-24% latency/cost shifts). Matching is the same as for v2 (metric
  family, overlap, an episode of any level containing the event's series).
Tried and rejected (they raised v2 false episodes above target without v2 recall): a 6-hour
scale, same-time-yesterday baselines for the shares above the p90, milder volume ratios for
windows of 3 hours and more, a 0.5-point minimum rate change.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmtrace.analytics import anomalies, drift, synthetic
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.groups import label

HOUR = timedelta(hours=1)
ANOMALY_KINDS = ("latency", "errors", "cost", "volume", "truncation")
EPISODE_METRIC = {
    "latency": {"latency_p95_ms", "ttft_p95_ms"},
    "errors": {"error_rate"},
    "cost": {"cost_per_call_usd"},
    "volume": {"calls"},
    "truncation": {"truncation_rate"},
}
DRIFT_KINDS = ("output_tokens", "latency", "cost", "errors", "truncation")
DRIFT_METRIC = {
    "output_tokens": "output_tokens",
    "latency": "latency_ms",
    "cost": "cost_per_call_usd",
    "errors": "error_rate",
    "truncation": "truncation_rate",
}
SIZE_BINS = ((1.5, 3.0), (3.0, 4.0), (4.0, 6.0), (6.0, 9.0))


# --------------------------------------------------------------------------- normal variation
def _season(s: synthetic.Scenario, t: datetime) -> float:
    hour = t.hour + t.minute / 60
    return 1 + s.seasonality * math.cos(2 * math.pi * (hour - s.peak_hour) / 24)


def _calls_in_hour(s: synthetic.Scenario, series: synthetic.Series, t: datetime) -> float:
    return series.calls_per_hour * _season(s, t)


def _log_sd(draw, rng: np.random.Generator, sims: int = 400) -> float:
    values = [draw(rng) for _ in range(sims)]
    return float(np.std(np.log(np.maximum(values, 1e-12))))


def _p95_latency(series: synthetic.Series, n: int):
    def draw(rng: np.random.Generator) -> float:
        out = np.exp(0.35 * rng.standard_normal(n))
        duration = np.sort((0.4 + 0.6 * out) * np.exp(0.25 * rng.standard_normal(n)))
        return float(duration[min(n - 1, int(0.95 * n))])  # ClickHouse's quantile: an order statistic

    return draw


def _cost_per_call(series: synthetic.Series, lam: float):
    def draw(rng: np.random.Generator) -> float:
        n = max(int(rng.poisson(lam)), 1)
        cost_in = series.input_tokens * series.price_in * np.exp(0.3 * rng.standard_normal(n))
        cost_out = series.output_tokens * series.price_out * np.exp(0.35 * rng.standard_normal(n))
        return float(np.mean(cost_in + cost_out))

    return draw


def anomaly_event(
    s: synthetic.Scenario, index: int, kind: str, start: datetime, hours: int, k: float, rng: np.random.Generator
) -> synthetic.Event | None:
    """An event of ``kind`` moving the metric by ``k`` times its normal hourly variation."""
    series = s.series[index]
    lam = _calls_in_hour(s, series, start)
    end = start + hours * HOUR
    n = max(int(lam), 2)
    if kind == "volume":
        direction = 1 if rng.random() < 0.6 else -1
        factor = 1 + direction * k / math.sqrt(lam)
        return synthetic.Event("volume", index, start, end, factor=factor) if factor >= 0.05 else None
    if kind in ("errors", "truncation"):
        p = series.error_rate if kind == "errors" else series.truncation_rate
        rate = p + k * math.sqrt(max(p, 0.005) * (1 - p) / lam)
        return synthetic.Event(kind, index, start, end, factor=min(rate, 0.95))
    if kind == "latency":
        factor = math.exp(k * _log_sd(_p95_latency(series, n), rng))
        return synthetic.Event("latency", index, start, end, factor=factor)
    factor = math.exp(k * _log_sd(_cost_per_call(series, lam), rng))
    return synthetic.Event("cost", index, start, end, factor=factor)


def drift_event(s: synthetic.Scenario, index: int, kind: str, start: datetime, rng: random.Random) -> synthetic.Event:
    """A persistent change from ``start``: numeric ones shift the log-mean by 0.5-2 of its sd,
    rates grow by 3-15 percentage points."""
    series = s.series[index]
    d = rng.uniform(0.5, 2.0)
    if kind == "output_tokens":
        return synthetic.Event(kind, index, start, factor=math.exp(0.35 * d))
    if kind == "latency":
        return synthetic.Event(kind, index, start, factor=math.exp(0.3 * d))
    if kind == "cost":
        return synthetic.Event(kind, index, start, factor=math.exp(0.3 * d))
    base = series.error_rate if kind == "errors" else series.truncation_rate
    return synthetic.Event(kind, index, start, factor=base + rng.uniform(0.03, 0.15))


# --------------------------------------------------------------------------- scenario
MODELS = (
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-3-5-haiku-latest", "anthropic"),
    ("o3-mini", "openai"),
)


def random_series(rng: random.Random, count: int) -> tuple[synthetic.Series, ...]:
    """``count`` series over a few services and models with varied volumes and profiles."""
    return tuple(
        synthetic.Series(
            service=f"svc-{i // len(MODELS):02d}",
            model=MODELS[i % len(MODELS)][0],
            provider=MODELS[i % len(MODELS)][1],
            calls_per_hour=rng.choice((1, 2, 4, 8)),
            latency_ms=rng.uniform(400, 3000),
            input_tokens=rng.uniform(200, 3000),
            output_tokens=rng.uniform(40, 600),
            price_in=rng.uniform(0.1, 3.0),
            price_out=rng.uniform(0.4, 15.0),
            error_rate=rng.uniform(0.005, 0.03),
            stream_share=rng.uniform(0.1, 0.9),
            tool_share=rng.uniform(0.0, 0.3),
            truncation_rate=rng.uniform(0.0, 0.03),
        )
        for i in range(count)
    )


def build(seed: int, series_count: int, calls: int, end: datetime):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    days = 10
    series = random_series(rng, series_count)
    scale = calls / (sum(x.calls_per_hour for x in series) * 24 * days)
    series = tuple(replace(x, calls_per_hour=x.calls_per_hour * scale) for x in series)
    base = synthetic.Scenario(end=end, days=days, series=series, seed=seed)
    judged_start = end - timedelta(days=7)
    anomaly_truth: list[tuple[synthetic.Event, float]] = []
    for index in range(series_count):
        busy: list[tuple[datetime, datetime]] = []
        for _ in range(rng.choice((0, 1, 1, 2, 2))):
            kind = rng.choice(ANOMALY_KINDS)
            hours = rng.randint(2, 6)
            start = judged_start + timedelta(hours=rng.randrange(6, 6 * 24 - hours))
            if any(start < b + 12 * HOUR and a < start + (hours + 12) * HOUR for a, b in busy):
                continue
            k = rng.uniform(1.5, 9.0)
            event = anomaly_event(base, index, kind, start, hours, k, nrng)
            if event is not None:
                anomaly_truth.append((event, k))
                busy.append((start, start + hours * HOUR))
    drift_truth = [
        drift_event(base, index, rng.choice(DRIFT_KINDS), end - timedelta(days=1), rng)
        for index in rng.sample(range(series_count), series_count // 3)
    ]
    events = tuple(e for e, _ in anomaly_truth) + tuple(drift_truth)
    return replace(base, events=events), anomaly_truth, drift_truth


# --------------------------------------------------------------------------- scoring
def _series_at(s: synthetic.Scenario, index: int) -> dict[str, str]:
    return {"service": s.series[index].service, "model": s.series[index].model}


def _attributes(s: synthetic.Scenario, index: int) -> dict[str, str]:
    """Every column an episode of any level (service x model, service, provider, app) may name."""
    return {**_series_at(s, index), "provider": s.series[index].provider}


def _within(episode_series: dict[str, str], attributes: dict[str, str]) -> bool:
    return all(attributes.get(k) == v for k, v in episode_series.items())


def _series_of(s: synthetic.Scenario, e: synthetic.Event) -> dict[str, str]:
    return _series_at(s, e.series)


def score_anomalies(s, report, truth, drift_truth, step: timedelta) -> dict[str, object]:
    episodes = report.episodes()
    found_by_bin = {b: [0, 0] for b in SIZE_BINS}
    detected_big = total_big = 0
    missed = []
    for event, k in truth:
        attributes = _attributes(s, event.series)
        hit = any(
            _within(a.series, attributes)
            and a.metric in EPISODE_METRIC[event.kind]
            and a.start < event.end + step
            and a.end > event.start
            for a in episodes
        )
        for b in SIZE_BINS:
            if b[0] <= k < b[1]:
                found_by_bin[b][0] += hit
                found_by_bin[b][1] += 1
        if k >= 3:
            detected_big += hit
            total_big += 1
            if not hit:
                missed.append((event, k))
    windows: list[tuple[dict[str, str], datetime, datetime]] = []
    for event in [e for e, _ in truth] + list(drift_truth):
        end = event.end or s.end
        windows.append((_attributes(s, event.series), event.start - step, end + 2 * step))
    false = [
        a for a in episodes if not any(_within(a.series, at) and a.start < hi and a.end > lo for at, lo, hi in windows)
    ]
    weeks = (report.end - report.start) / timedelta(days=7)
    return {
        "recall_3x": detected_big / total_big if total_big else float("nan"),
        "events_3x": total_big,
        "by_size": found_by_bin,
        "false": false,
        "false_per_series_week": len(false) / len(s.series) / weeks,
        "episodes": len(episodes),
        "missed": missed,
    }


def score_drift(s, report, truth) -> dict[str, object]:
    drifted = [_series_at(s, e.series) for e in truth]
    hits = 0
    for event in truth:
        series = _series_of(s, event)
        result = next((r for r in report.results if r.group == series and r.metric == DRIFT_METRIC[event.kind]), None)
        hits += bool(result and result.flagged)
    clean_flags = [r for r in report.flagged() if r.group not in drifted]
    clean_pairs = [r for r in report.results if r.verdict != "insufficient_data" and r.group not in drifted]
    return {
        "recall": hits / len(truth) if truth else float("nan"),
        "drifts": len(truth),
        "false_flags": clean_flags,
        "false_rate": len(clean_flags) / max(len(clean_pairs), 1),
        "flagged": len(report.flagged()),
    }


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--data-dir", help="chDB directory to use (default: a temporary one, deleted after)")
    parser.add_argument("--reuse", action="store_true", help="--data-dir already holds this seed's data")
    parser.add_argument("--verbose", action="store_true", help="list missed events and false findings")
    args = parser.parse_args()

    tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="llmtrace-detection-"))
    marker = tmp.parent / f"{tmp.name}.end"  # the scenario's end, so --reuse rebuilds the same truth
    if args.reuse:
        end = datetime.fromisoformat(marker.read_text().strip())
    else:
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        if args.data_dir:
            marker.write_text(end.isoformat())
    scenario, anomaly_truth, drift_truth = build(args.seed, args.series, args.calls, end)
    print(
        f"seed {args.seed}: {len(scenario.series)} series, {len(anomaly_truth)} anomaly events, "
        f"{len(drift_truth)} drifts, ~{scenario.expected_calls():,} calls over {scenario.days:g} days"
    )
    try:
        started = time.perf_counter()
        if args.reuse:
            from llmtrace.store.client import connect

            client = connect(f"chdb://{tmp}")
        else:
            client = synthetic.seed_store(f"chdb://{tmp}", scenario)
        rows = client.query("SELECT count() FROM llm_calls").result_rows[0][0]
        print(f"generated {rows:,} calls in {time.perf_counter() - started:.1f} s")

        week = Filter(start=end - timedelta(days=7), end=end)
        anomaly_s, report = timed(lambda: anomalies.detect(client, week, now=end))
        comparison = drift.Comparison.previous_period(timedelta(days=1), timedelta(days=7), now=end)
        drift_s, drift_report = timed(lambda: drift.compare(client, comparison, ("service", "model")))
        _print(scenario, report, drift_report, anomaly_truth, drift_truth, anomaly_s, drift_s, args.verbose)
        client.close()
    finally:
        if not args.data_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _print(scenario, report, drift_report, anomaly_truth, drift_truth, anomaly_s, drift_s, verbose) -> None:
    a = score_anomalies(scenario, report, anomaly_truth, drift_truth, timedelta(seconds=report.step))
    d = score_drift(scenario, drift_report, drift_truth)
    print("\nanomaly episodes (judged week; default detect: 5-minute buckets, 5 min to 3 h windows, by=auto)")
    for (lo, hi), (found, total) in a["by_size"].items():
        rate = f"{found / total:.2f}" if total else "  - "
        print(f"  events of {lo:g}-{hi:g}x normal variation: recall {rate} ({found}/{total})")
    print(f"  recall on events >= 3x: {a['recall_3x']:.2f} over {a['events_3x']} events   (target >= 0.90)")
    print(
        f"  false episodes: {len(a['false'])} of {a['episodes']}; "
        f"{a['false_per_series_week']:.2f} per series per week   (target <= 1)"
    )
    print(f"  call-level findings: {sum(1 for x in report.anomalies if x.kind != 'episode')}")
    print("\ndrift verdicts (last day vs the 7 days before, by service, model)")
    print(f"  recall on injected drifts: {d['recall']:.2f} over {d['drifts']} drifts")
    print(
        f"  flags on series without drift: {len(d['false_flags'])} "
        f"({d['false_rate']:.3f} of their judged metrics); flagged in all: {d['flagged']}"
    )
    print("\nquery time over the store (median of 3)")
    print(f"  anomalies.detect (7 days, all series): {anomaly_s:.2f} s   (target < 2 s)")
    print(f"  drift.compare (1 day vs 7 days):       {drift_s:.2f} s   (target < 2 s)")
    if verbose:
        for x in a["false"]:
            print("  false:", x.summary)
        for event, k in a["missed"]:
            print(
                f"  missed: {event.kind} x{event.factor:.3g} (size {k:.1f}) on {label(_series_of(scenario, event))} "
                f"{event.start:%m-%d %H:%M} → {event.end:%H:%M}"
            )
        for r in d["false_flags"]:
            print("  false drift:", label(r.group), r.metric, r.verdict, r.reason)


if __name__ == "__main__":
    raise SystemExit(main())

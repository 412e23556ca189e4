"""Judge 14: blind held-out anomaly detection, end to end over OTLP and the CLI.

Per seed: a week (8 days ending at the run's present minute) from ``detection_scenarios_v14`` is
sent over OTLP/HTTP protobuf to a fresh ``llmtrace server`` (judge 13's plumbing, imported: free
ports, fresh data dir, back-off on 429/503, wait until ``otel_traces`` holds every span), the stored
``llm_calls`` are checked field by field against what was sent, then ``llmtrace anomalies --since 8d
--until END --format json`` runs with ``--by service,model`` and with the default grouping, from
the seed's work folder (no ``llmtrace/`` there). Each seed's labels, eligibility, field check and
both CLI outputs go to ``r{seed}.json`` in its folder, so ``--score-only`` re-scores them.

    python benchmarks/detection_v14.py --seeds 1400-1409 --work /work/s27/v14 --keep

Scoring (judge 13's rules): an episode finds an incident if its metric family matches the kind,
it overlaps [start - 5 min, end + 30 min] ([start - 5 min, start + 6 h] for a permanent shift)
and its series is one of the incident's series or contains one (service, provider, whole app).
An episode that finds nothing and is not a labelled consequence of an incident (same window, a
consequence family, on the incident's series or one it touches: a fallback model, a RAG request
re-asked) is false, and is attributed to the first benign change it meets (release, canary,
onboarding, holiday, weekly_burst, young_start, store_start, weekend, friday_pm, daily_peak,
batch_schedule) or "none". Eligible: >= 10 minutes and the window's statistic >= 3 sd from the
median of comparable windows (same clock time on the other days, the windows just before), rates
and volume also >= 10 extra or missing events (see ``detection_scenarios_v14.eligibility``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_scenarios_v14 as gen
import detection_v13 as d13  # (plumbing only: server, OTLP post, CLI, episode parsing)

_ratio = d13._ratio  # "found/all (share)"

FINDS: dict[str, set[str]] = {
    "latency_spike": {"latency"},
    "slow_ramp": {"latency"},
    "ttft_spike": {"ttft"},
    "error_burst": {"errors", "retries"},
    "volume_drop": {"calls"},
    "service_drop": {"calls"},
    "tenant_drop": {"calls"},
    "output_shift": {"tokens"},
}
CONSEQUENCES: dict[str, set[str]] = {
    "latency_spike": {"ttft", "throughput"},
    "slow_ramp": {"ttft", "throughput"},
    "ttft_spike": {"latency", "throughput"},
    # a failed call is short or times out, has no tokens, costs nothing; apps retry or give up
    "error_burst": {"latency", "ttft", "tokens", "cost", "calls", "empty", "throughput"},
    "volume_drop": set(),
    "service_drop": set(),
    "tenant_drop": set(),
    "output_shift": {"latency", "cost", "throughput", "truncated"},
}
TOUCHED = {"calls", "latency", "tokens", "cost", "throughput"}  # what a fallback or a re-ask moves elsewhere
BENIGN_ORDER = (
    "release",
    "canary",
    "onboarding",
    "holiday",
    "weekly_burst",
    "young_start",
    "store_start",
    "weekend",
    "friday_pm",
    "daily_peak",
    "batch_schedule",
)
Z_BINS = ((-math.inf, 3), (3, 5), (5, 10), (10, 30), (30, math.inf))


# ---------------------------------------------------------------- one seed


def expected_fields(week: Any, calls: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """What the spans said, per series, in judge 13's field-check shape (judge 15's weeks too: any
    week whose series carry ``key``, ``provider`` and ``op``)."""
    out = {}
    for s in week.series:
        c = calls[s.key]
        if c["t"].size == 0:
            continue
        ok = ~c["err"]
        out[s.key] = {
            "calls": int(c["t"].size),
            "errors": int(c["err"].sum()),
            "ttft": int((ok & ~np.isnan(c["ttft"])).sum()),
            "stream": int(c["stream"].sum()),
            "input": int(c["inp"].sum()),
            "output": int(c["out"].sum()),
            "cache_read": int(c["cache"].sum()),
            "reasoning": int(c["reasoning"].sum()),
            "provider": s.provider,
            "operation": s.op,
        }
    return out


def run_seed(seed: int, work: Path, keep: bool) -> dict[str, Any]:
    """Generate, send, wait, check fields, run both CLI groupings; write and return r{seed}.json's content."""
    wall0 = time.monotonic()
    seed_dir = work / f"seed{seed}"
    shutil.rmtree(seed_dir, ignore_errors=True)
    seed_dir.mkdir(parents=True)
    cpu0 = time.process_time()
    end = gen.end_now()
    week = gen.Week(seed, end)
    calls, g = gen.generate(week)
    labels = []
    for inc in week.incidents:
        el = gen.eligibility(week, inc, calls)
        primary = week.by_key[inc.series[0]]
        first = max(week.by_key[k].first for k in inc.series)
        hour, weekday = week.clock.local(np.array([inc.start]), primary.tz)
        labels.append(
            {
                **inc.label(),
                **el,
                "history_h": round((inc.start - first) / 60.0, 1),
                "young": (inc.start - first) < 48 * 60,
                "young_series": first > 0,
                "night": bool(hour[0] < 6 or hour[0] >= 22),
                "weekend": bool(weekday[0] >= 5),
                "start_iso": week.clock.iso(inc.start),
            }
        )
    server = d13.Server(seed_dir / "data", seed_dir).wait_ready()
    try:
        sent = 0
        for body, n in gen.requests(week, calls, g):
            d13.post(server, body)
            sent += n
        gen_cpu = time.process_time() - cpu0
        send_wall = time.monotonic() - wall0
        stored = d13.wait_stored(server, sent)
        fields = d13.field_findings(expected_fields(week, calls), d13.stored_fields(server))
        until = end.isoformat()
        results, cli_cpu = {}, {}
        for name, by in (("service_model", "service,model"), ("default", None)):
            results[name], cli_cpu[name] = d13.run_cli(server.url, until, by, seed_dir)
        server_cpu = server.cpu_seconds()
    finally:
        server.stop()
    record = {
        "seed": seed,
        "end": until,
        "end_minute": week.clock.end_minute,
        "sent_spans": sent,
        "stored_spans": stored,
        "llm_calls_sent": int(sum(c["t"].size for c in calls.values())),
        "series": d13.series_summary(week, calls),
        "incidents": labels,
        "benign": [vars(b) for b in week.benign],
        "fields": fields,
        "results": results,
        "cpu": {
            "generate_send": round(gen_cpu, 1),
            "server": round(server_cpu, 1),
            **{f"cli_{k}": round(v, 1) for k, v in cli_cpu.items()},
        },
        "wall": {"send": round(send_wall, 1), "total": round(time.monotonic() - wall0, 1)},
    }
    (seed_dir / f"r{seed}.json").write_text(json.dumps(record, indent=1, default=float))
    if not keep:
        shutil.rmtree(seed_dir / "data", ignore_errors=True)
    return record


# ---------------------------------------------------------------- scoring


def episodes(
    record: dict[str, Any], result: dict[str, Any], week: int = gen.WEEK
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Judge 13's episode parsing, shifted to this judge's week minutes (its WEEK may differ from ours)."""
    return d13.episodes(result, record["end_minute"] - week + d13.gen.WEEK)


def score(record: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Which incidents were found (and when), which episodes are false (and what benign change they meet)."""
    return score_with(record, result, gen.WEEK, FINDS, CONSEQUENCES, TOUCHED, BENIGN_ORDER)


def score_with(
    record: dict[str, Any],
    result: dict[str, Any],
    week: int,
    finds: dict[str, set[str]],
    consequences: dict[str, set[str]],
    touched: set[str],
    order: tuple[str, ...],
) -> dict[str, Any]:
    """:func:`score` by a judge's own rules (judge 15 shares it): which families find each kind,
    which are its consequences, which it moves onto the series it touches, the benign causes' order."""
    series = {s["key"]: s for s in record["series"]}
    eps, other = episodes(record, result, week)
    found: dict[int, float] = {}
    seen: dict[int, set[str]] = defaultdict(set)  # families of consequence episodes on the incident's series
    explained = [False] * len(eps)
    for j, ep in enumerate(eps):
        for i, inc in enumerate(record["incidents"]):
            lo, hi = d13._span(inc)  # [start - 5 min, end + 30 min], a permanent shift's first 6 h
            if ep["end"] <= lo or ep["start"] >= hi:
                continue
            on = any(d13.contains(ep["series"], series[k]) for k in inc["series"])
            if on and ep["family"] in finds[inc["kind"]]:
                explained[j] = True
                ttd = max(ep["detected"], ep["start"]) - inc["start"]
                found[i] = min(found.get(i, math.inf), ttd)
            elif on and ep["family"] in consequences[inc["kind"]]:
                explained[j] = True
                seen[i].add(ep["family"])
            elif ep["family"] in touched and any(d13.contains(ep["series"], series[k]) for k in inc["touched"]):
                explained[j] = True
    false = [{**ep, "cause": d13._cause(record, ep, series, order)} for j, ep in enumerate(eps) if not explained[j]]
    return {
        "found": found,
        "seen": seen,
        "false": false,
        "other": other,
        "episodes": len(eps),
        "error": result.get("error"),
    }


def score_all(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {g: [score(r, r["results"][g]) for r in records] for g in ("service_model", "default")}


# ---------------------------------------------------------------- report


def _ser(inc: dict[str, Any]) -> str:
    if inc["scope"] == "tenant":
        return f"tenant {inc['tenant']} of {inc['series'][0].split('|')[0]}"
    if inc["scope"] == "service":
        return f"service {inc['series'][0].split('|')[0]} ({len(inc['series'])} series)"
    return inc["series"][0]


def _why(inc: dict[str, Any]) -> str:
    """A data-side hint for a miss (from the labels only, never from the detector)."""
    hints = []
    if inc["z"] < 5:
        hints.append("z < 5: near the noise")
    if inc.get("n", 0) < 15:
        hints.append(f"only {inc.get('n', 0)} calls in the window")
    if inc["young"]:
        hints.append(f"{inc['history_h']} h of history")
    if inc["night"] or inc["weekend"]:
        hints.append("night" if inc["night"] else "weekend")
    if inc["kind"] in ("latency_spike", "ttft_spike") and (inc["effect"] or 0) < 2:
        hints.append(f"moderate x{inc['effect']}")
    if inc["note"] == "overlap":
        hints.append("overlaps another incident")
    return "; ".join(hints) or "clear in the data"


def listed(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    per_seed: list[dict[str, Any]],
    false: list[tuple[int, dict[str, Any]]],
    ser: Callable[[dict[str, Any]], str],
    why: Callable[[dict[str, Any]], str],
) -> list[str]:
    """A grouping's unscored findings, CLI failures, missed eligible incidents and false episodes,
    one line each (judges 14 and 15 list them alike; ``ser`` and ``why`` name and explain a miss)."""
    lines: list[str] = []
    other: dict[str, int] = defaultdict(int)
    for sc in per_seed:
        for k, v in sc["other"].items():
            other[k] += v
    if other:
        lines.append("  not scored (single-point findings): " + ", ".join(f"{k} {v}" for k, v in other.items()))
    for r, sc in pairs:
        if sc["error"]:
            lines.append(f"  CLI FAILED seed {r['seed']}: {sc['error'][:300]}")
    lines.append("missed eligible (seed kind series [start,end) start-UTC size effect z extra n cause note -- hint):")
    for r, sc in pairs:
        for i, inc in enumerate(r["incidents"]):
            if inc["eligible"] and i not in sc["found"]:
                lines.append(
                    f"  MISS {r['seed']} {inc['kind']} {ser(inc)} [{inc['start']},{inc['end']}) "
                    f"{inc['start_iso'][5:16]}Z size {inc['size']} effect {inc['effect']} z {inc['z']} "
                    f"extra {inc['extra']} n {inc.get('n')} {inc['cause']} {inc['note']} -- {why(inc)}"
                    + (f" [seen only as: {', '.join(sorted(sc['seen'][i]))}]" if sc["seen"].get(i) else "")
                )
    lines.append("false episodes (seed metric level series [start,end) direction cause):")
    for seed, f in false:
        where = " ".join(f"{k}={v}" for k, v in f["series"].items()) or "all"
        lines.append(
            f"  FALSE {seed} {f['metric']} {f['level']} {where} [{f['start']:.0f},{f['end']:.0f}) "
            f"{f['direction']} {f['cause']}"
        )
    return lines


def report(records: list[dict[str, Any]], scores: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    n_series = sum(len(r["series"]) for r in records)
    kinds = list(FINDS)
    for grouping, per_seed in scores.items():
        pairs = list(zip(records, per_seed, strict=True))
        lines.append(f"\n== grouping {grouping}: {len(records)} seeds, {n_series} series-weeks ==")
        lines.append(
            f"{'kind':14s} {'eligible':>15s} {'all':>15s} {'young <48h elig':>16s} {'young series':>14s} "
            f"{'night/wkend el':>15s} {'TTD med':>7s} {'TTD p90':>7s} {'TTD max':>7s}"
        )
        tot: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        all_ttd: list[float] = []
        for kind in kinds:
            c: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            ttd = []
            for r, sc in pairs:
                for i, inc in enumerate(r["incidents"]):
                    if inc["kind"] != kind:
                        continue
                    hit = int(i in sc["found"])
                    groups = ["all"]
                    if inc["eligible"]:
                        groups.append("el")
                        if inc["young"]:
                            groups.append("young")
                        if inc["young_series"]:
                            groups.append("yser")
                        if inc["night"] or inc["weekend"]:
                            groups.append("nw")
                        if hit:
                            ttd.append(sc["found"][i])
                    for grp in groups:
                        c[grp][0] += hit
                        c[grp][1] += 1
                        tot[grp][0] += hit
                        tot[grp][1] += 1
            all_ttd += ttd
            med = f"{np.median(ttd):.0f}" if ttd else "-"
            p90 = f"{np.percentile(ttd, 90):.0f}" if ttd else "-"
            mx = f"{max(ttd):.0f}" if ttd else "-"
            lines.append(
                f"{kind:14s} {_ratio(*c['el']):>15s} {_ratio(*c['all']):>15s} {_ratio(*c['young']):>16s} "
                f"{_ratio(*c['yser']):>14s} {_ratio(*c['nw']):>15s} {med:>7s} {p90:>7s} {mx:>7s}"
            )
        med = f"{np.median(all_ttd):.0f}" if all_ttd else "-"
        lines.append(
            f"{'TOTAL':14s} {_ratio(*tot['el']):>15s} {_ratio(*tot['all']):>15s} {_ratio(*tot['young']):>16s} "
            f"{_ratio(*tot['yser']):>14s} {_ratio(*tot['nw']):>15s} {med:>7s}"
        )
        for label, want in (("all incidents", None), ("eligible", True)):
            bins = []
            for lo, hi in Z_BINS:
                hits = [
                    i in sc["found"]
                    for r, sc in pairs
                    for i, inc in enumerate(r["incidents"])
                    if lo <= inc["z"] < hi and (want is None or inc["eligible"])
                ]
                bins.append(f"{lo:g}..{hi:g} {_ratio(sum(hits), len(hits))}")
            lines.append(f"recall by z ({label}): " + ", ".join(bins))
        false = [(r["seed"], f) for r, sc in pairs for f in sc["false"]]
        n_eps = sum(sc["episodes"] for sc in per_seed)
        lines.append(
            f"episodes scored: {n_eps}; false: {len(false)} = {len(false) / max(n_series, 1):.3f} per series per week"
        )
        by_fam: dict[str, int] = defaultdict(int)
        by_cause: dict[str, int] = defaultdict(int)
        by_series: dict[str, int] = defaultdict(int)
        by_level: dict[str, int] = defaultdict(int)
        for _s, f in false:
            by_fam[f["family"]] += 1
            by_cause[f["cause"]] += 1
            by_level[f["level"] or "?"] += 1
            by_series[" ".join(f"{v}" for v in f["series"].values()) or "all"] += 1
        srt = lambda d: sorted(d.items(), key=lambda x: -x[1])  # noqa: E731
        lines.append("  by family: " + ", ".join(f"{k} {v}" for k, v in srt(by_fam)))
        lines.append("  by cause:  " + ", ".join(f"{k} {v}" for k, v in srt(by_cause)))
        lines.append("  by level:  " + ", ".join(f"{k} {v}" for k, v in srt(by_level)))
        lines.append(
            "  worst series (per week): " + ", ".join(f"{k} {v / len(records):.2f}" for k, v in srt(by_series)[:8])
        )
        lines += listed(pairs, per_seed, false, _ser, _why)
    fields = [(r["seed"], f) for r in records for f in r["fields"]]
    lines.append(f"\nfield check: {len(fields)} mismatches between sent spans and stored llm_calls")
    for seed, f in fields[:60]:
        lines.append(f"  FIELD {seed} {f}")
    for r in records:
        if r["sent_spans"] != r["stored_spans"]:
            lines.append(f"  SPANS seed {r['seed']}: sent {r['sent_spans']} stored {r['stored_spans']}")
    lines.append("\nper seed: spans sent, LLM calls, incidents (eligible), wall s (to sent / total), cpu s")
    for r in records:
        el = sum(inc["eligible"] for inc in r["incidents"])
        lines.append(
            f"  seed {r['seed']}: {r['sent_spans']} spans, {r['llm_calls_sent']} calls, "
            f"{len(r['incidents'])} incidents ({el} eligible), wall {r['wall']['send']}/{r['wall']['total']}, "
            f"cpu {r['cpu']}"
        )
    return "\n".join(lines)


def detector() -> str:
    """Which llmtrace the CLI subprocesses import, and a digest of its analytics code (a run is one version)."""
    import hashlib
    import subprocess

    p = subprocess.run(
        [sys.executable, "-c", "import llmtrace, pathlib; print(pathlib.Path(llmtrace.__file__).parent)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    root = Path(p.stdout.strip())
    digest = hashlib.sha1()
    for f in sorted((root / "analytics").glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    return f"{root} analytics sha1 {digest.hexdigest()[:12]}"


def rejudge(record: dict[str, Any], work: Path) -> dict[str, Any]:
    """Re-run both CLI groupings over a kept store (whatever llmtrace is importable now)."""
    seed_dir = work / f"seed{record['seed']}"
    server = d13.Server(seed_dir / "data", seed_dir).wait_ready()
    try:
        for name, by in (("service_model", "service,model"), ("default", None)):
            record["results"][name], _cpu = d13.run_cli(server.url, record["end"], by, seed_dir)
    finally:
        server.stop()
    return record


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seeds", default="1400-1409")
    ap.add_argument("--work", default=os.environ.get("LLMTRACE_V14_WORK", "/tmp/llmtrace-v14"))
    ap.add_argument("--out", default="", help="report file (default: WORK/report.txt)")
    ap.add_argument("--keep", action="store_true", help="keep each seed's data dir")
    ap.add_argument("--score-only", action="store_true", help="score the r{seed}.json already in the work dir")
    ap.add_argument("--rejudge", action="store_true", help="re-run the CLI over kept stores (r{seed}.rejudge.json)")
    args = ap.parse_args()
    version = detector()
    print(f"detector: {version}", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in d13.parse_seeds(args.seeds):
        if args.score_only or args.rejudge:
            record = json.loads((work / f"seed{seed}" / f"r{seed}.json").read_text())
            if args.rejudge:
                record = rejudge(record, work)
                record["detector"] = version
                (work / f"seed{seed}" / f"r{seed}.rejudge.json").write_text(json.dumps(record, indent=1, default=float))
            records.append(record)
            continue
        r = run_seed(seed, work, args.keep)
        r["detector"] = version
        records.append(r)
        print(
            f"seed {seed}: {r['sent_spans']} spans sent, {r['stored_spans']} stored, cpu {r['cpu']}, "
            f"wall {r['wall']}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    text = f"detector: {version}" + report(records, score_all(records))
    print(text)
    Path(args.out or work / "report.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Judge 15: blind held-out anomaly detection, end to end over OTLP and the CLI, on new traffic.

Per seed: a week (8 days ending at the run's present minute) from ``detection_scenarios_v15``
(APAC and Sao Paulo office hours on one service, a growing consumer app, an agent with tool loops
over two models, a nightly batch, a very sparse chat, a busy gateway with a provider fallback,
embeddings, a young service; a planned model migration, a prompt release, a Friday marketing
email) is sent over OTLP/HTTP protobuf to a fresh ``llmtrace server`` (judge 13's plumbing,
imported: free ports, fresh data dir, back-off on 429/503, wait until ``otel_traces`` holds every
span), the stored ``llm_calls`` are checked field by field against what was sent (judge 13's
check, plus truncated and empty answers, error classes, TTFT and duration sums, response models,
pricing), then ``llmtrace anomalies --since 8d --until END --format json`` runs with ``--by
service,model`` and with the default grouping, from the seed's work folder. Each seed's labels,
eligibility, field check and both CLI outputs go to ``r{seed}.json`` in its folder, so
``--score-only`` re-scores them and ``--rejudge`` re-runs the CLI over kept stores.

    python benchmarks/detection_v15.py --seeds 1500-1509 --work /work/s28/v15 --keep

Scoring (judges 13 and 14's rules): an episode finds an incident if its metric family is one of
the kind's (``FINDS``: a cost spike is found by cost or tokens, a truncation burst by truncated,
empty answers by empty, a regional outage by errors, a timeout burst by errors or latency), it
overlaps [start - 5 min, end + 30 min] ([start - 5 min, start + 6 h] for a permanent shift) and
its series is one of the incident's series or contains one (service, provider, whole app). An
episode that finds nothing and is not a labelled consequence (``CONSEQUENCES``: same window, on
the incident's series; or a ``TOUCHED`` family on a series the incident moves elsewhere: the
gateway's fallback model) is false, and is attributed to the first benign change it meets
(``BENIGN_ORDER``) or "none". Eligible: ``detection_scenarios_v15.eligibility`` (>= 10 minutes,
>= 3 sd from the median of comparable windows, rates and volume also >= 10 events).

Lab notebook, session 28 (2026-12-07)
-------------------------------------
Written by a helper that never opened the detector or an earlier judge's generator (it imported
judge 13's plumbing). Its judged run (seeds 1500-1509, ~275k spans each, 5 min 39 s) met a
detector that changed under it halfway, so the figures below are ``--rejudge`` over its kept
stores (``/work/s28/v15``), eligible incidents found with ``--by service,model`` / the default
grouping, false episodes per series-week (120 series-weeks):
  session 27's code (main adf8194):       188/235 (0.80) / 189 (0.80); false 0.450 / 0.525
  + rate clustering without the window:   189/235 / 190;              false 0.450 / 0.525
  + rises held to the same minutes' raw:  189/235 / 189;              false 0.450 / 0.450
  + the same before two days of a type exist, and falls expecting none where no day had a call:
                                          189/235 / 189;              false 0.367 / 0.417
  (tried and dropped: rate baselines counting the same hours' trials, 0 found, false 0.500 / 0.583)
By kind (session 28's code, --by service,model): error bursts, rate-limit storms, timeouts,
regional outages and empty answers all found (79/79); TTFT 27/29, output shifts 18/19, latency
spikes 28/33; volume drops 8/17, model drops 4/13, regional drops 2/6, slow ramps 9/15 (2/7 young),
cost spikes 10/18. Recall by z: 3-5 0.37, 5-10 0.49, 10-30 0.87, >= 30 0.97. False episodes by
cause: weekend 20, migration 10, daily peak 6, none 4, young start 3. The benign prompt release
(answers x1.3) is >= 3 sd by the rule in 9 of 10 weeks, so flagging it is arguably right.
"""

from __future__ import annotations

import argparse
import json
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

import detection_scenarios_v15 as gen
import detection_v13 as d13  # (plumbing only: server, OTLP post, CLI, episode parsing, field check)
import detection_v14 as d14  # (plumbing only: the detector's version line, scoring, field counts, rejudging)

_ratio = d13._ratio  # "found/all (share)"

ERROR_CONSEQUENCES = {"latency", "ttft", "tokens", "cost", "calls", "empty", "throughput"}
FINDS: dict[str, set[str]] = {
    "latency_spike": {"latency"},
    "slow_ramp": {"latency"},
    "ttft_spike": {"ttft"},
    "error_burst": {"errors", "retries"},
    "rate_limit": {"errors", "retries"},
    "timeout": {"errors", "retries", "latency"},  # a timeout is a failure as long as the client's timeout
    "region_outage": {"errors", "retries"},
    "volume_drop": {"calls"},
    "model_drop": {"calls"},
    "region_drop": {"calls"},
    "output_shift": {"tokens"},
    "cost_spike": {"cost", "tokens"},
    "truncation": {"truncated"},
    "empty_output": {"empty"},
}
CONSEQUENCES: dict[str, set[str]] = {
    "latency_spike": {"ttft", "throughput"},
    "slow_ramp": {"ttft", "throughput"},
    "ttft_spike": {"latency", "throughput"},
    # a failed call has no tokens and costs nothing; a 429 is retried (calls up), a timeout is long
    "error_burst": ERROR_CONSEQUENCES,
    "rate_limit": ERROR_CONSEQUENCES,
    "timeout": ERROR_CONSEQUENCES - {"latency"},
    "region_outage": ERROR_CONSEQUENCES,
    # fewer calls: less spent and fewer tokens in the window
    "volume_drop": {"cost", "tokens", "throughput"},
    "model_drop": {"cost", "tokens", "throughput"},
    "region_drop": {"cost", "tokens", "throughput"},
    "output_shift": {"latency", "cost", "throughput", "truncated"},
    "cost_spike": {"latency", "ttft", "throughput"},
    "truncation": {"tokens", "cost", "latency", "throughput"},
    "empty_output": {"tokens", "cost", "latency", "throughput", "ttft"},
}
TOUCHED = {"calls", "latency", "tokens", "cost", "throughput"}  # what the fallback model shows of a primary's failures
BENIGN_ORDER = (
    "release",
    "migration",
    "marketing_email",
    "young_start",
    "batch_schedule",
    "weekend",
    "daily_peak",
    "growth",
    "fallback",
)
Z_BINS = d14.Z_BINS


# ---------------------------------------------------------------- one seed


def more_findings(
    week: gen.Week, calls: dict[str, dict[str, np.ndarray]], server: d13.Server, scenarios: Any = gen
) -> list[str]:
    """What judge 13's check does not read: finish reasons, empty answers, error classes, TTFT and
    duration sums, the response model, the server's pricing (every successful call priced, at the
    generator's cost from llmtrace's price table, which the cost spikes' eligibility reads); ``scenarios``: the
    generator module whose error classes and response models the week was drawn with (judge 16 passes its own)."""
    q = """SELECT ServiceName, RequestModel, countIf(FinishReason = 'length'),
                  countIf(IsError = 0 AND OutputTokens = 0 AND Operation != 'embeddings'),
                  countIf(ErrorType LIKE '%RateLimit%' OR ErrorType LIKE '%ClientError%'
                          OR (Provider = 'mistral_ai' AND ErrorType LIKE '%SDKError%')),
                  countIf(ErrorType LIKE '%Timeout%'), sum(TtftUs), sum(DurationUs),
                  groupUniqArray(ResponseModel), countIf(IsError = 0 AND CostUsd > 0), count(),
                  sumIf(CostUsd, IsError = 0)
           FROM llm_calls GROUP BY ServiceName, RequestModel"""
    rows = {f"{r[0]}|{r[1]}": r[2:] for r in server.client().query(q).result_rows}
    found = []
    for s in week.series:
        c = calls[s.key]
        if s.key not in rows or c["t"].size == 0:
            continue
        trunc, empty, rate, timeout, ttft_us, dur_us, models, priced, n, cost = rows[s.key]
        ok = ~c["err"]
        has = ok & ~np.isnan(c["ttft"])
        rate_sent = int((c["etype"] == scenarios.E_RATE).sum())
        if s.provider == "mistral_ai":  # its SDK names a 5xx and a 429 alike
            rate_sent += int((c["etype"] == scenarios.E_SERVER).sum())
        want = {
            "truncated": (int((ok & (c["finish"] == scenarios.LENGTH)).sum()), trunc),
            "empty": (int((ok & (c["out"] == 0)).sum()) if s.op != "embeddings" else 0, empty),
            "rate-limit errors": (rate_sent, rate),
            "timeout errors": (int((c["etype"] == scenarios.E_TIMEOUT).sum()), timeout),
            "priced ok calls": (int(ok.sum()), priced),
        }
        for name, (sent, stored) in want.items():
            if sent != stored:
                found.append(f"{s.key}: {name} sent {sent} stored {stored}")
        ttft_sent = float(np.round(c["ttft"][has], 4).sum() * 1e6)
        if abs((ttft_us or 0) - ttft_sent) > 2 * max(int(has.sum()), 1):
            found.append(f"{s.key}: TTFT sum sent {ttft_sent / 1e6:.1f} s stored {(ttft_us or 0) / 1e6:.1f} s")
        if abs(dur_us - float(c["dur"].sum() * 1e6)) > 2 * n:
            found.append(f"{s.key}: duration sum sent {c['dur'].sum():.1f} s stored {dur_us / 1e6:.1f} s")
        cost_sent = float(c["cost"].sum())
        if abs((cost or 0.0) - cost_sent) > 1e-3 * max(cost_sent, 1e-9):
            found.append(f"{s.key}: cost of the successful calls sent {cost_sent:.4f} USD stored {cost or 0.0:.4f} USD")
        if ok.any() and sorted(m for m in models if m) != [scenarios.RESPONSE_MODEL[s.model]]:
            found.append(f"{s.key}: response models stored {sorted(models)}")
    return found


def run_seed(seed: int, work: Path, keep: bool) -> dict[str, Any]:
    """Generate, send, wait, check fields, run both CLI groupings; write and return r{seed}.json's content."""
    return run_seed_with(seed, work, keep, gen, _planned)


def _planned(week: Any) -> dict[str, Any]:
    return {"migration": week.migration, "release": week.release, "email": week.email}


def run_seed_with(
    seed: int, work: Path, keep: bool, scenarios: Any, planned: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """:func:`run_seed` with a judge's generator module (``scenarios``) and its planned changes for the
    record (judge 16 runs its seeds so)."""
    wall0 = time.monotonic()
    seed_dir = work / f"seed{seed}"
    shutil.rmtree(seed_dir, ignore_errors=True)
    seed_dir.mkdir(parents=True)
    cpu0 = time.process_time()
    end = scenarios.end_now()
    week = scenarios.Week(seed, end)
    calls, extras = scenarios.generate(week)
    labels = []
    for inc in week.incidents:
        el = scenarios.eligibility(week, inc, calls)
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
    benign = [vars(b) for b in week.benign]
    rel = scenarios.release_eligibility(week, calls)
    for b in benign:
        if b["kind"] == "release":
            b["z"], b["eligible"] = rel["z"], rel["eligible"]
    server = d13.Server(seed_dir / "data", seed_dir).wait_ready()
    try:
        sent = 0
        for body, n in scenarios.requests(week, calls, extras):
            d13.post(server, body)
            sent += n
        gen_cpu = time.process_time() - cpu0
        send_wall = time.monotonic() - wall0
        stored = d13.wait_stored(server, sent)
        fields = d13.field_findings(d14.expected_fields(week, calls), d13.stored_fields(server))
        fields += more_findings(week, calls, server, scenarios)
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
        "benign": benign,
        "planned": planned(week),
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


def score(record: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Which incidents were found (and when), which episodes are false (and what benign change they meet):
    judge 14's scoring, by this judge's rules."""
    return d14.score_with(record, result, gen.WEEK, FINDS, CONSEQUENCES, TOUCHED, BENIGN_ORDER)


def score_all(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {g: [score(r, r["results"][g]) for r in records] for g in ("service_model", "default")}


# ---------------------------------------------------------------- report


def _ser(inc: dict[str, Any]) -> str:
    service = inc["series"][0].split("|")[0]
    if inc["scope"] == "region":
        return f"region {inc['region']} of {service}"
    if inc["scope"] == "service":
        return f"service {service} ({len(inc['series'])} series)"
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
    if inc["scope"] == "region":
        hints.append("one region of two")
    if inc["note"] == "overlap":
        hints.append("overlaps another incident")
    return "; ".join(hints) or "clear in the data"


def _zbin(z: float) -> str:
    for lo, hi in Z_BINS:
        if lo <= z < hi:
            return f"{lo:g}..{hi:g}"
    return "?"


def report(
    records: list[dict[str, Any]],
    scores: dict[str, list[dict[str, Any]]],
    kinds: list[str] | None = None,
    release: str = "prompt release (x1.3 answers)",
) -> str:
    """The judge's report; ``kinds`` (its incident kinds, this judge's by default) and ``release`` (what its
    benign release does) let a later judge with the same scoring print its own (judge 16)."""
    lines = []
    n_series = sum(len(r["series"]) for r in records)
    kinds = list(FINDS) if kinds is None else kinds
    for grouping, per_seed in scores.items():
        pairs = list(zip(records, per_seed, strict=True))
        lines.append(f"\n== grouping {grouping}: {len(records)} seeds, {n_series} series-weeks ==")
        lines.append(
            f"{'kind':14s} {'eligible':>15s} {'all':>15s} {'young <48h elig':>16s} {'settled elig':>14s} "
            f"{'young series':>14s} {'night/wkend el':>15s} {'TTD med':>7s} {'TTD p90':>7s} {'TTD max':>7s}"
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
                        groups += ["el", "young" if inc["young"] else "settled"]
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
                f"{_ratio(*c['settled']):>14s} {_ratio(*c['yser']):>14s} {_ratio(*c['nw']):>15s} "
                f"{med:>7s} {p90:>7s} {mx:>7s}"
            )
        med = f"{np.median(all_ttd):.0f}" if all_ttd else "-"
        p90 = f"{np.percentile(all_ttd, 90):.0f}" if all_ttd else "-"
        lines.append(
            f"{'TOTAL':14s} {_ratio(*tot['el']):>15s} {_ratio(*tot['all']):>15s} {_ratio(*tot['young']):>16s} "
            f"{_ratio(*tot['settled']):>14s} {_ratio(*tot['yser']):>14s} {_ratio(*tot['nw']):>15s} "
            f"{med:>7s} {p90:>7s}"
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
        by_scope: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r, sc in pairs:
            for i, inc in enumerate(r["incidents"]):
                if inc["eligible"]:
                    by_scope[inc["scope"]][0] += int(i in sc["found"])
                    by_scope[inc["scope"]][1] += 1
        lines.append("recall by scope (eligible): " + ", ".join(f"{k} {_ratio(*v)}" for k, v in by_scope.items()))
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
        lines.append(
            "  by cause:  " + ", ".join(f"{k} {v} ({v / max(n_series, 1):.3f}/series-week)" for k, v in srt(by_cause))
        )
        lines.append("  by level:  " + ", ".join(f"{k} {v}" for k, v in srt(by_level)))
        lines.append(
            "  worst series (per week): " + ", ".join(f"{k} {v / len(records):.2f}" for k, v in srt(by_series)[:8])
        )
        lines += d14.listed(pairs, per_seed, false, _ser, _why)
    releases = [b for r in records for b in r["benign"] if b["kind"] == "release"]
    if releases:
        lines.append(
            f"\nbenign {release} by the eligibility rule: "
            + ", ".join(f"z {b['z']}" for b in releases)
            + f" ({sum(bool(b['eligible']) for b in releases)}/{len(releases)} would be eligible as incidents)"
        )
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


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seeds", default="1500-1509")
    ap.add_argument("--work", default=os.environ.get("LLMTRACE_V15_WORK", "/tmp/llmtrace-v15"))
    ap.add_argument("--out", default="", help="report file (default: WORK/report.txt)")
    ap.add_argument("--keep", action="store_true", help="keep each seed's data dir")
    ap.add_argument("--score-only", action="store_true", help="score the r{seed}.json already in the work dir")
    ap.add_argument("--rejudge", action="store_true", help="re-run the CLI over kept stores (r{seed}.rejudge.json)")
    args = ap.parse_args()
    version = d14.detector()
    print(f"detector: {version}", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    records = []
    t0 = time.monotonic()
    for seed in d13.parse_seeds(args.seeds):
        if args.score_only or args.rejudge:
            record = json.loads((work / f"seed{seed}" / f"r{seed}.json").read_text())
            if args.rejudge:
                record = d14.rejudge(record, work)
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
    text += f"\n\ntotal wall {time.monotonic() - t0:.0f} s"
    print(text)
    Path(args.out or work / "report.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Anomaly detection judged on the held-out v9 generator (``detection_scenarios_v9``), many seeds.

    python benchmarks/detection_v9.py --seeds 900-909 --stores /work/v9-stores [--verbose]

v9 was written blind (session 16, issue #12): its author read neither the detector nor the v2-v8
generators, only the shared harness, the v8 runner's wiring and the ``otel_traces`` row layout.
What it covers and which changes are incidents or benign is in the generator's docstring, fixed
before any judged run: a tenant mix in two regions (EU, US east/west) with a lunch dip, B2B and
consumer weekly cycles, growth and day-to-day levels, 5-minute burst noise, agent traces of 1-40
calls; incidents latency_spike, error_burst, volume_drop, ttft_spike, output_shift (permanent,
with a release), provider_outage (every series of a provider), latency_ramp (slow, over hours),
truncation_up (max_tokens lowered); about 1 in 4 drawn below the issue's range; a young series
with an incident 12-24 h after its first call; one overlap per seed. Benign: releases, a planned
night batch, a gradual model migration, the daily rush, lunch, weekends.

Per seed (:mod:`detection_harness`): 9 days as spans into ``otel_traces`` of a fresh chDB store;
``anomalies.detect`` over the last 7 days with its defaults and ``now`` = the end; episodes matched
by metric family (``FAMILY``), time ([start - 5, end + 30] min; ``output_shift`` [start - 5 min,
start + 6 h]) and a compatible series (a provider-wide incident: any of its series or the
provider). *False*: an episode neither finding nor explained (``CONSEQUENCES``). Effect sizes: the
harness's paired Monte Carlo over :func:`detection_scenarios_v9.calls` (40 replicates of the
window, at most 2 h). Statistic: failed calls (error kinds), cut calls (truncation_up), calls
(volume); log p95 of successful durations (latency kinds) or TTFT; log mean output tokens per
successful call (output_shift). *Eligible*: >= 10 min, size >= 3 sd and, for counts, >= 10 extra
events; *young*: < 2 days after the series' first call; *sparse*: < 1 call/min.

RESULTS: see below (filled in after the first judged run).
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
import detection_scenarios_v9 as gen

UP, DOWN = h.UP, h.DOWN
_m = h.family

LAT, TTFT, ERR = ("latency_p95_ms", UP), ("ttft_p95_ms", UP), ("error_rate", UP)
COST, TOK, CUT = ("cost_per_call_usd", UP), ("tokens_per_call", UP), ("truncation_rate", UP)
FAMILY = {
    **{k: _m(ERR) for k in gen.ERROR_KINDS},
    "latency_spike": _m(LAT),
    "latency_ramp": _m(LAT),
    "ttft_spike": _m(TTFT),
    "volume_drop": _m(("calls", DOWN)),
    "output_shift": _m(TOK, COST),
    "truncation_up": _m(CUT),
}
_LESS = _m(("tokens_per_call", DOWN), ("tokens_per_call_low", UP), ("cost_per_call_usd", DOWN))
# failed calls answer nothing (fewer tokens, less cost, shorter or longer durations); a slow
# backend also answers later (TTFT x sqrt of the slow-down); a late first token lengthens the call;
# longer outputs take longer and hit max_tokens more often; a lowered max_tokens cuts answers short
CONSEQUENCES = {
    **{k: _LESS | _m(LAT, TTFT, ("latency_p95_ms", DOWN), ("calls", DOWN)) for k in gen.ERROR_KINDS},
    "latency_spike": _m(TTFT),
    "latency_ramp": _m(TTFT),
    "ttft_spike": _m(LAT),
    "output_shift": _m(LAT, CUT),
    "truncation_up": _LESS | _m(("latency_p95_ms", DOWN), TOK),
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
    if kind == "truncation_up":
        return float(c["cut"].sum())
    if kind in gen.VOLUME_KINDS:
        return float(len(c["t"]))
    if kind == "output_shift":
        v = c["out_tok"][ok]
        return float(np.log(v.mean())) if len(v) >= 3 and v.mean() > 0 else float("nan")
    v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft_spike" else c["dur_ms"][ok]
    return float(np.log(np.percentile(v, 95))) if len(v) >= 3 else float("nan")


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    return {"sparse": all(m.rate < 1 for m in members), "edge": inc.edge, "group": members[0].group,
            "levels": sorted({str(a.level) for a in hits}), "hits": len(hits)}  # fmt: skip


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=gen.BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.noise, label=lambda s: f"{s.service}/{s.model}", prefix="llmtrace-det9-", row_extras=_extras,
)  # fmt: skip


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


def run_seed(seed: int, sample: int = 0) -> dict[str, Any]:
    """One seed; with ``sample``, watch's time to detect of that many eligible incidents first."""
    watched: list[dict[str, Any]] = []
    fill = (lambda client, sc: h.watch_fill(BENCH, client, sc, sample, watched, WATCH_STEPS, 90)) if sample else None
    res = h.run_seed(BENCH, seed, fill)
    res["watch"] = watched
    return res


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    h.recall_head(BENCH, rows, 15, DURATION_BINS)
    h.recall_by(rows, el, (("scope", ("series", "provider")), ("edge", (True, False))))
    groups = sorted({r["group"] for r in rows})
    print("  eligible by service: " + "; ".join(f"{g} {h.recall([r for r in el if r['group'] == g])}" for g in groups))
    print(f"  overlapping incidents: all {h.recall([r for r in rows if r['overlap']])}, "
          f"eligible {h.recall([r for r in el if r['overlap']])}")  # fmt: skip
    found = [r for r in rows if r["scope"] == "provider" and r["found"]]
    levels: dict[str, int] = defaultdict(int)
    for r in found:
        levels["+".join(r["levels"])] += 1
    print(f"  provider-wide incidents found: {len(found)}; reported at levels {dict(levels)}")
    h.ttd_line(el)
    h.false_report(BENCH, results, ("batch", "planned batch"))
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _false_line(res: dict[str, Any], a: Any) -> str:
    score = getattr(a, "score", float("nan"))
    return f"{h.false_line(res, a)} score {score:.1f} cause {h.cause(BENCH, res['sc'], a)}"


def main() -> int:
    return h.cli(__doc__, "900-909", run_seed, report, WATCH_STEPS, _false_line)


if __name__ == "__main__":
    raise SystemExit(main())

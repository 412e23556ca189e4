"""Held-out detection benchmark v10 (issue #12): ``anomalies.detect`` on traffic written blind.

The generator is ``benchmarks/detection_scenarios_v10.py`` (its docstring holds the design: what
is an incident, what is benign, the sizes), written in session 17 without reading the detector or
the earlier generators, and run once on the detector as it stood (the result below). Judged by
``benchmarks/detection_harness.py``: an episode finds an incident if its metric family matches,
it overlaps [start - 5 min, end + 30 min] ([start - 5 min, start + 6 h] for the permanent output
shift) and its series is compatible; anything neither finding nor explained by an incident (its
family or a labelled consequence below) is false. Effect sizes come from the generator alone (40
paired replicates of the incident's first 2 hours).

Rerun (stores and effect sizes are kept under --stores and reused; delete them to insert anew)::

    PYTHONPATH=<checkout> nice -n 5 /work/venv/bin/python <checkout>/benchmarks/detection_v10.py \\
        --seeds 1000-1009 --stores /work/v10-stores --verbose

RESULT: (filled in after the judged run)
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
import detection_scenarios_v10 as gen

UP, DOWN = h.UP, h.DOWN
_m = h.family

LAT, TTFT, ERR = ("latency_p95_ms", UP), ("ttft_p95_ms", UP), ("error_rate", UP)
COST, TOK, CUT = ("cost_per_call_usd", UP), ("tokens_per_call", UP), ("truncation_rate", UP)
EMPTY = ("empty_output_rate", UP)
FAMILY = {
    **{k: _m(ERR) for k in gen.ERROR_KINDS},
    "latency_spike": _m(LAT),
    "ttft_spike": _m(TTFT),
    "volume_drop": _m(("calls", DOWN)),
    "output_shift": _m(TOK, COST),
    "cost_jump": _m(COST),
    "empty_output": _m(EMPTY),
}
_LESS = _m(("tokens_per_call", DOWN), ("tokens_per_call_low", UP), ("cost_per_call_usd", DOWN))
# failed calls answer nothing (fewer tokens, less cost, shorter or longer durations) and are
# retried (more calls); a slow backend also answers later (TTFT x sqrt of the slow-down); a late
# first token lengthens the call; longer outputs take longer and hit max_tokens more often; empty
# answers are short and cheap
CONSEQUENCES = {
    **{k: _LESS | _m(LAT, TTFT, ("latency_p95_ms", DOWN), ("calls", DOWN), ("calls", UP)) for k in gen.ERROR_KINDS},
    "latency_spike": _m(TTFT),
    "ttft_spike": _m(LAT),
    "output_shift": _m(LAT, CUT),
    "empty_output": _LESS | _m(("latency_p95_ms", DOWN), ("ttft_p95_ms", DOWN)),
}
EXPLAINS = {k: FAMILY[k] | CONSEQUENCES.get(k, set()) for k in FAMILY}
COUNTED = (*gen.RATE_KINDS, *gen.VOLUME_KINDS)
DURATION_BINS = ((0, 10), (10, 30), (30, 60), (60, 121), (121, 601))
WATCH_STEPS = 12  # 5-minute steps: an hour
WHEN = ("day", "night", "weekend", "holiday")


def _stat(kind: str, c: dict[str, np.ndarray]) -> float:
    """The incident window's statistic for one replicate: failures, empty answers or calls (counts);
    log mean output tokens or cost per successful call; log p95 of durations or TTFT."""
    ok = c["status"] == gen.OK
    if kind in gen.ERROR_KINDS:
        return float((~ok).sum())
    if kind == "empty_output":
        return float((ok & (c["out_tok"] == 0)).sum())
    if kind in gen.VOLUME_KINDS:
        return float(len(c["t"]))
    if kind in ("output_shift", "cost_jump"):
        v = (c["out_tok"] if kind == "output_shift" else c["cost"])[ok]
        return float(np.log(v.mean())) if len(v) >= 3 and v.mean() > 0 else float("nan")
    v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft_spike" else c["dur_ms"][ok]
    return float(np.log(np.percentile(v, 95))) if len(v) >= 3 else float("nan")


def _when(minute: int) -> str:
    day, hour = divmod(minute, 1440)
    if day in (2, 3):
        return "weekend"
    if day == gen.HOLIDAY:
        return "holiday"
    return "night" if hour >= 22 * 60 or hour < 6 * 60 else "day"


def _extras(sc: gen.Scenario, inc: gen.Incident, hits: list[Any]) -> dict[str, Any]:
    members = [sc.series[i] for i in inc.series]
    return {"sparse": all(m.rate < 1 for m in members), "edge": inc.edge, "group": members[0].group,
            "when": _when(inc.start), "levels": sorted({str(a.level) for a in hits}), "hits": len(hits)}  # fmt: skip


BENCH = h.Bench(
    gen=gen, family=FAMILY, explains=EXPLAINS, benign_kinds=gen.BENIGN_KINDS, counted=COUNTED, stat=_stat,
    noise=gen.noise, label=lambda s: f"{s.service}/{s.model}", prefix="llmtrace-det10-", row_extras=_extras,
)  # fmt: skip


def eligible(row: dict[str, Any]) -> bool:
    return h.eligible(BENCH, row)


def run_seed(seed: int, sample: int = 0) -> dict[str, Any]:
    """One seed; with ``sample``, watch's time to detect of that many eligible incidents first."""
    watched: list[dict[str, Any]] = []
    fill = (lambda client, sc: h.watch_fill(BENCH, client, sc, sample, watched, WATCH_STEPS, 100)) if sample else None
    res = h.run_seed(BENCH, seed, fill)
    res["watch"] = watched
    return res


# --------------------------------------------------------------------------- report
def report(results: list[dict[str, Any]], verbose: bool) -> None:
    rows = [r for res in results for r in res["rows"]]
    el = [r for r in rows if eligible(r)]
    h.recall_head(BENCH, rows, 15, DURATION_BINS)
    h.recall_by(rows, el, (("scope", ("series", "provider")), ("edge", (True, False)), ("when", WHEN)))
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
    h.false_report(BENCH, results)
    h.timing_report(BENCH, results)
    h.misses(BENCH, rows, verbose)


def _false_line(res: dict[str, Any], a: Any) -> str:
    score = getattr(a, "score", float("nan"))
    return f"{h.false_line(res, a)} score {score:.1f} cause {h.cause(BENCH, res['sc'], a)}"


def main() -> int:
    return h.cli(__doc__, "1000-1009", run_seed, report, WATCH_STEPS, _false_line)


if __name__ == "__main__":
    raise SystemExit(main())

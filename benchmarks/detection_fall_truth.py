"""Why a judge's eligible volume drops were missed: the detector's expectation against the generator's.

    python benchmarks/detection_fall_truth.py --stores /work/stores-v8 --seeds 800-809

For every eligible ``volume_drop`` the detector missed on the v8 judge's kept stores (the harness
decides eligible and found, as ``detection_v8.py --stores`` does), and for each scale: the best-
scoring fall window inside the incident among those the gate let through (a fall to at most
``VOLUME_DROP`` of the expectation, ``MIN_VOLUME_CHANGE`` calls below it), with its calls ``x``, the
expectation ``mu`` and spread ``c`` (1/sqrt r) it was judged with (in clusters: calls over the
series' clustering factor), and the generator's noise-free expected calls there (``truth``: the
daily shape times the planned changes, no hourly wobble, no incident). Then the score the same
window would get against the truth with the detector's spread (``@truth``) and with the
generator's own wobble as the only spread (``@truth,c=.12``, v8's 12% hourly noise): the first
says how much the expectation's own error cost, the second how much the spread did. Scales
without a line had no window through the gate.

Session 21 grouped v8's 16 missed drops (seeds 800-809) with it: 5 whose expectation was 13-27%
low at the window (3 pass against the truth, 2 reach 4.8-5.0): the expectation's own error is
~0.12-0.17 of a window's calls, as large as v8's wobble, and misses are where it fell low; 3 on
the young series whose spread (c 0.24-0.32, from the windows judged with a borrowed shape, which
hold its own first-day incident) hides them even against the truth; 3 with no window through the
gate (falls to 47-54%, or a sparse series' 15 minutes below ``MIN_VOLUME_CHANGE``); 5 too few calls
in the windows the scales offer (a 46-48 minute drop judged on 15 minutes, a 16-minute one on 5).
Needs a generator with ``shapes`` and ``_benign_rate`` (v8).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_harness as h
import detection_v8 as runner

from llmtrace.analytics import anomalies_scan as scan
from llmtrace.analytics.tails import nbinom_cdf, neg_log10

gen = runner.gen
WOBBLE = 0.12  # v8's hourly lognormal noise


def _score(x: float, mu: float, r: float) -> float:
    return neg_log10(nbinom_cdf(int(np.ceil(x - 1e-9)), mu, r))


def _windows(store: str, sc: Any) -> tuple[dict[tuple[int, int, int], tuple[float, ...]], Any, Any]:
    """Every gated fall window of the store's judged week: (scale, row, end) -> (x, mu, r, phi),
    x and mu in clusters (calls / phi), and the plan and prepared levels (rows of every level)."""
    seen: dict[str, Any] = {}
    out: dict[tuple[int, int, int], tuple[float, ...]] = {}
    side, flag = scan._volume_side, scan._flag_nb

    def watched_side(s: Any, judged: Any, width: int, up: bool, surged: Any, step: int, phi: Any, *rest: Any) -> Any:
        seen.update(width=width, falls=not up and surged is not None, phi=phi)
        return side(s, judged, width, up, surged, step, phi, *rest)

    def watched_flag(g: Any, e: Any, x: Any, mu: Any, r: Any, up: bool, *rest: Any) -> Any:
        if seen["falls"]:
            for k in range(len(g)):
                phi = float(seen["phi"][int(g[k])])
                out[(seen["width"], int(g[k]), int(e[k]))] = (float(x[k]), float(mu[k]), float(r[k]), phi)
        return flag(g, e, x, mu, r, up, *rest)

    p, prep = h.watched_week(store, sc, watched_side, watched_flag)
    return out, p, prep


def _leaf_row(prep: Any, service: str, model: str) -> int:
    offset = 0
    for name, data in prep.levels.items():
        for g, key in enumerate(data.groups):
            labels = dict(zip(data.level.keys, key, strict=True))
            if name == "service,model" and (labels["service"], labels["model"]) == (service, model):
                return offset + g
        offset += len(data.groups)
    raise KeyError((service, model))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", required=True, help="detection_v8's kept stores (--stores of its run)")
    parser.add_argument("--seeds", default="800-809")
    args = parser.parse_args()
    h.KEEP = args.stores
    b = runner.BENCH
    for seed in h.seeds(args.seeds):
        res = h.run_seed(b, seed)
        sc = res["sc"]
        missed = [
            (inc, r)
            for inc, r in zip(sc.incidents, res["rows"], strict=True)
            if inc.kind == "volume_drop" and h.eligible(b, r) and not r["found"]
        ]
        if not missed:
            continue
        store = os.path.join(args.stores, next(d for d in os.listdir(args.stores) if d.endswith(str(seed))))
        windows, p, prep = _windows(store, sc)
        per = p.step // 60
        off = (p.history.start - gen.T0).total_seconds() / 60
        for inc, r in missed:
            i = inc.series[0]
            service, model = sc.series[i].service, sc.series[i].model
            row = _leaf_row(prep, service, model)
            print(f"== {seed} {sc.at(inc.start):%a %H:%M} {inc.end - inc.start} min to {inc.factor:.2f}, size "
                  f"{r['size']:.1f}, {service}/{model}{' (young)' if r.get('young') else ''}")  # fmt: skip
            b0, b1 = int((inc.start - off) // per), int((inc.end - off) // per)
            for width in scan.SCALES:
                best = None
                for e in range(b0 + width - 1, b1 + 1):
                    if (width, row, e) not in windows:
                        continue
                    x, mu, size, phi = windows[(width, row, e)]
                    m = np.arange(int(off + (e - width + 1) * per), int(off + (e + 1) * per))
                    truth = float((sc.shapes[i][m] * gen._benign_rate(sc, i, m)).sum()) / phi
                    item = (_score(x, mu, size), x, mu, size, truth)
                    best = item if best is None or item[0] > best[0] else best
                if best:
                    score, x, mu, size, truth = best
                    print(f"  {width * per:4d} min  score {score:5.2f}  x {x:5.0f}  mu {mu:7.1f}  truth {truth:7.1f}"
                          f"  mu/truth {mu / truth:.2f}  c {size**-0.5:.3f}  @truth {_score(x, truth, size):5.2f}"
                          f"  @truth,c=.12 {_score(x, truth, WOBBLE**-2):5.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

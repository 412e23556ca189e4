"""Watch's time to detect on the blind judges' kept stores (v14, v15, v16), by each judge's own scoring.

    python benchmarks/detection_watch_judged.py --judge v16 --seeds 1600-1609 --stores /work/s32/v16 --steps 2
    python benchmarks/detection_watch_judged.py --judge v15 --seeds 1500-1509 --stores /work/s28/v15 --steps 2
    python benchmarks/detection_watch_judged.py --judge v14 --seeds 1400-1409 --stores /work/s28/v14 --steps 2
    python benchmarks/detection_watch_judged.py --judge v16 --seeds 1600-1609 --stores /work/s32/v16 --aligned

For every incident the judge calls eligible (``inc["eligible"]`` of ``r{seed}.json``, its report's
"eligible" column), ``now`` steps 5 minutes at a time from the incident's start (start + 5, + 10,
... up to ``--steps``) and the detection runs as ``llmtrace watch`` runs it (the last 24 h,
``by="auto"``, ``now``) in this process on the seed's kept chDB store. Its report, in the JSON
``llmtrace anomalies --format json`` prints (``AnomalyReport.to_json``), is scored by the judge's own
``score`` on a copy of the record holding only that incident; the first step that finds it is the
time to detect (the issue's target: within two 5-minute buckets, i.e. 10 minutes). Every query of a
detection reads only before ``now`` floored to the bucket, so detecting with ``now`` on the full
store answers as a store holding what had arrived by ``now`` (``detection_watch.py``'s docstring;
tests/test_anomalies_no_future.py).

The summary sets beside it how many of those incidents the judge's full-week run found at all (the
default grouping, as the judge scores it): the blind run's ``r{seed}.json`` and, where kept, the
``--rejudge`` run's ``r{seed}.rejudge.json``, and how many of the latter the judge times at <= 10
minutes (its TTD, from an episode's ``detected_at`` in the full-week report). Check (``--no-check``
skips it): per seed one detection over the CLI's window (``--since 8d --until END``, the default
grouping) in this process, scored for every incident and compared with the judge's scoring of the
stored CLI result (``r{seed}.rejudge.json`` if kept, else ``r{seed}.json``; another detector's
result may differ); the exit status is 1 if any incident is scored differently.
One process may open a chDB directory at a time: seeds run one after another.

``--aligned`` reads the issue's target as written: ``now`` steps to the end of the incident's first,
second, ... whole bucket (an incident starting at :04 has one whole bucket behind it at + 10 minutes),
and the incidents are those the judge's own rule (its generator's ``eligibility``, the week made again
from the seed and checked against the record) calls eligible on what watch has seen by the last step:
from the incident's start to the end of that bucket (10-14 minutes at ``--steps 2``), not over its
whole length (a 2-hour burst of a few extra errors is eligible over its length and invisible in its
first 10 minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_v13 as d13  # (seeds' parsing)
import detection_v14 as d14  # (the detector's version line)

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter
from llmtrace.store.chdb_client import ChdbClient

JUDGES = {"v14": "detection_v14", "v15": "detection_v15", "v16": "detection_v16"}
CLI_SINCE = timedelta(days=8)  # the judges' ``llmtrace anomalies --since 8d``
WATCH_SINCE = timedelta(hours=24)  # ``llmtrace watch``'s default ``--since``


def at(record: dict[str, Any], week: int, minute: float) -> datetime:
    """Minute ``minute`` of the judged week (the week ends at ``record["end"]``, ``week`` minutes long)."""
    return datetime.fromisoformat(record["end"]) - timedelta(minutes=week - minute)


def detect_json(
    client: Any, since: timedelta, now: datetime, history: timedelta | None = None
) -> tuple[dict[str, Any], float]:
    """The CLI's JSON of a detection over ``[now - since, now)`` (default grouping; ``history``: the
    detector's default when None), and its CPU seconds."""
    started = time.process_time()
    report = anomalies.detect(client, Filter(start=now - since, end=now), "auto", now=now, history=history)
    cpu = time.process_time() - started
    return json.loads(report.to_json()), cpu


def found(judge: ModuleType, record: dict[str, Any], result: dict[str, Any], i: int) -> float | None:
    """Minutes to detect of incident ``i`` by the judge's own scoring of ``result`` (None: not found)."""
    one = {**record, "incidents": [record["incidents"][i]]}
    return judge.score(one, result)["found"].get(0)


def whole_bucket(record: dict[str, Any], week: int, minute: int) -> int:
    """The week minute where the 5-minute bucket holding ``minute`` ends (``minute`` itself on a boundary)."""
    return minute + (-at(record, week, minute).minute) % 5


def watch(
    judge: ModuleType,
    client: Any,
    record: dict[str, Any],
    i: int,
    steps: int,
    aligned: bool = False,
    history: timedelta | None = None,
) -> tuple[int | None, float | None, list[float]]:
    """Minutes from incident ``i``'s start (``aligned``: whole buckets after the one it starts in) to the
    first watch report finding it (None: not within ``steps``), the judge's TTD in that report (negative:
    an episode detected before the start found it) and CPU seconds."""
    cpu = []
    start = record["incidents"][i]["start"]
    first = whole_bucket(record, judge.gen.WEEK, start) if aligned else start
    for step in range(1, steps + 1):
        result, used = detect_json(client, WATCH_SINCE, at(record, judge.gen.WEEK, first + 5 * step), history)
        cpu.append(used)
        ttd = found(judge, record, result, i)
        if ttd is not None:
            return 5 * step, ttd, cpu
    return None, None, cpu


# how each judge's rule reads a truncated copy of a permanent shift: v16 judges a permanent one on its
# first 6 hours whatever its end (a copy that is not permanent is judged on its end, nothing else
# differs); v15 reads its end and, permanent, compares with windows before it only (kept); v14 judges
# a permanent one on its first 6 hours and picks other windows for it: not judged early (None)
EARLY_PERMANENT = {"v14": None, "v15": True, "v16": False}


def seen_eligibility(
    judge_name: str, judge: ModuleType, record: dict[str, Any], buckets: int
) -> list[dict[str, Any] | None]:
    """Per incident, the judge's own eligibility rule applied to what watch has seen at the end of the
    incident's ``buckets``-th whole 5-minute bucket: its spans from the start to there (or to its end).
    The week is made again from the seed (the generators are deterministic); each incident must match
    the record's, or the run stops. None: the judge's rule cannot be read on part of this incident."""
    gen = judge.gen
    week = gen.Week(record["seed"], datetime.fromisoformat(record["end"]))
    calls = gen.generate(week)[0]
    keep = EARLY_PERMANENT[judge_name]
    out: list[dict[str, Any] | None] = []
    for inc, label in zip(week.incidents, record["incidents"], strict=True):
        if (inc.kind, inc.start, inc.series) != (label["kind"], label["start"], label["series"]):
            raise SystemExit(f"seed {record['seed']}: the generator no longer makes the recorded week")
        whole = gen.eligibility(week, inc, calls)
        if (whole["eligible"], whole["z"]) != (label["eligible"], label["z"]):
            raise SystemExit(f"seed {record['seed']}: the judge's rule no longer reads the record's {inc.kind} alike")
        if inc.permanent and keep is None:
            out.append(None)
            continue
        end = min(whole_bucket(record, gen.WEEK, inc.start) + 5 * buckets, inc.end)
        part = dataclasses.replace(inc, end=end, permanent=inc.permanent and bool(keep))
        out.append(gen.eligibility(week, part, calls))
    return out


def check(
    judge: ModuleType, client: Any, record: dict[str, Any], stored: dict[str, Any]
) -> tuple[int, list[str], bool]:
    """The CLI's full-week detection in this process against the stored CLI result, incident by incident:
    (incidents compared, disagreements, whether the two lists of anomalies are equal)."""
    end = datetime.fromisoformat(record["end"])
    mine, _cpu = detect_json(client, CLI_SINCE, end)
    ours, theirs = judge.score(record, mine)["found"], judge.score(record, stored)["found"]
    bad = []
    for i, inc in enumerate(record["incidents"]):
        if ours.get(i) != theirs.get(i):
            bad.append(
                f"{inc['kind']} {inc['series'][0]} at {inc['start']}: here {ours.get(i)}, stored {theirs.get(i)}"
            )
    same = mine.get("anomalies") == stored.get("anomalies")
    return len(record["incidents"]), bad, same


def _label(inc: dict[str, Any]) -> str:
    more = len(inc["series"]) - 1
    return inc["series"][0] + (f" +{more}" if more else "")


def _ratio(hits: int, n: int) -> str:
    return f"{hits}/{n} ({hits / n:.2f})" if n else "-"


def summary(rows: list[dict[str, Any]], steps: int, rejudged: bool, aligned: bool = False) -> list[str]:
    """Found within 5 and 10 minutes (``aligned``: 1 and 2 whole buckets; and ``steps``), per kind and
    overall, beside the full-week runs."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    unit = (
        (lambda n: f"within {n // 5} whole bucket{'s' if n > 5 else ''}") if aligned else (lambda n: f"within {n} min")
    )
    cols = [unit(5), unit(10)] + ([unit(5 * steps)] if steps > 2 else [])
    week = ["full week (blind run)"] + (["full week (rejudge)", "rejudge's detected_at <= 10 min"] if rejudged else [])
    lines = ["| kind | eligible | " + " | ".join(cols + week) + " |", "|---" * (2 + len(cols) + len(week)) + "|"]
    for kind, rs in [*sorted(by_kind.items()), ("ALL", rows)]:
        cells = [_ratio(sum(r["ttd"] is not None and r["ttd"] <= m for r in rs), len(rs)) for m in (5, 10)]
        if steps > 2:
            cells.append(_ratio(sum(r["ttd"] is not None for r in rs), len(rs)))
        cells.append(_ratio(sum(r["week"] is not None for r in rs), len(rs)))
        if rejudged:
            cells.append(_ratio(sum(r["rejudge"] is not None for r in rs), len(rs)))
            cells.append(_ratio(sum(r["rejudge"] is not None and r["rejudge"] <= 10 for r in rs), len(rs)))
        lines.append(f"| {kind} | {len(rs)} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--judge", choices=sorted(JUDGES), default="v16")
    ap.add_argument("--seeds", default="1600-1609")
    ap.add_argument("--stores", required=True, help="the judge's work folder (seed{N}/data and seed{N}/r{N}.json)")
    ap.add_argument("--steps", type=int, default=2, help="5-minute steps from the start (default 2: 10 minutes)")
    ap.add_argument("--no-check", action="store_true", help="skip the full-week check against the stored CLI result")
    ap.add_argument("--aligned", action="store_true", help=(
        "steps end the incident's whole buckets (not start + 5, + 10 min), and the incidents are those the "
        "judge's rule calls eligible on what watch has seen by the last step"))  # fmt: skip
    ap.add_argument("--history", type=float, help="days of history before watch's 24 h (default: the detector's)")
    args = ap.parse_args()
    history = timedelta(days=args.history) if args.history else None
    judge = importlib.import_module(JUDGES[args.judge])
    print(f"detector: {d14.detector()}; judge {args.judge}; load {_load()}", flush=True)
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    cpu: list[float] = []
    checked, disagreements, rejudged = 0, [], True
    unread = later_only = 0  # (--aligned) eligible in full: not readable early, not eligible early
    for seed in d13.parse_seeds(args.seeds):
        folder = Path(args.stores) / f"seed{seed}"
        record = json.loads((folder / f"r{seed}.json").read_text())
        again = folder / f"r{seed}.rejudge.json"
        rejudge = json.loads(again.read_text()) if again.exists() else None
        rejudged = rejudged and rejudge is not None
        blind = judge.score(record, record["results"]["default"])["found"]
        later = judge.score(rejudge, rejudge["results"]["default"])["found"] if rejudge else {}
        client = ChdbClient.open(str(folder / "data"))
        try:
            if not args.no_check:
                stored = (rejudge or record)["results"]["default"]
                n, bad, same = check(judge, client, record, stored)
                checked += n
                disagreements += [f"seed {seed}: {b}" for b in bad]
                which = "rejudge" if rejudge else "blind run"
                print(f"seed {seed}: check vs the {which}'s CLI result: {n - len(bad)}/{n} agree"
                      f" (anomalies {'identical' if same else 'differ'})", flush=True)  # fmt: skip
            seen = seen_eligibility(args.judge, judge, record, args.steps) if args.aligned else None
            for i, inc in enumerate(record["incidents"]):
                if seen is not None:
                    unread += seen[i] is None and inc["eligible"]
                    if seen[i] is None or not seen[i]["eligible"]:
                        later_only += bool(inc["eligible"])
                        continue
                elif not inc["eligible"]:
                    continue
                ttd, judged, used = watch(judge, client, record, i, args.steps, args.aligned, history)
                cpu += used
                rows.append({"kind": inc["kind"], "ttd": ttd, "week": blind.get(i), "rejudge": later.get(i),
                             "before": judged is not None and judged < 0, "full": bool(inc["eligible"])})  # fmt: skip
                when = at(record, judge.gen.WEEK, inc["start"])
                if args.aligned:
                    shown = (
                        f"{ttd // 5} bucket{'s' if ttd > 5 else ''}" if ttd is not None else f"> {args.steps} buckets"
                    )
                else:
                    shown = f"{ttd} min" if ttd is not None else f"> {5 * args.steps} min"
                if judged is not None and judged < 0:
                    shown += f" (by an episode detected {-judged:.0f} min before the start)"
                full = (later if rejudge else blind).get(i)
                week = f"found at +{full:.0f} min" if full is not None else "missed"
                early = f" z {seen[i]['z']} extra {seen[i].get('extra')} of n {seen[i]['n']}" if seen else ""
                print(f"  seed {seed} {inc['kind']:14s} {_label(inc):40s} {when:%a %m-%d %H:%M} UTC "
                      f"(:{when.minute % 5}) -> {shown:>8s}  [full week: {week}]{early}", flush=True)  # fmt: skip
        finally:
            client.close()
        print(f"seed {seed} done, {time.monotonic() - t0:.0f} s, load {_load()}", flush=True)
    print("\n" + "\n".join(summary(rows, args.steps, rejudged, args.aligned)))
    if args.aligned:
        print(f"\neligible on what watch had seen by the end of whole bucket {args.steps}: {len(rows)} incidents "
              f"({sum(not r['full'] for r in rows)} of them not eligible over their whole length); eligible over "
              f"their whole length but not on that part: {later_only} ({unread} of them permanent shifts "
              "the judge's rule reads only on their first 6 hours)")  # fmt: skip
    early = sum(r["before"] for r in rows)
    print(f"\nfound by an episode detected before the incident's start (the judge's rule counts it): {early}")
    print(f"detections: {len(cpu)}, CPU per detection median {statistics.median(cpu):.2f} s "
          f"(p90 {sorted(cpu)[int(0.9 * (len(cpu) - 1))]:.2f}); wall {time.monotonic() - t0:.0f} s; "
          f"load {_load()}")  # fmt: skip
    if not args.no_check:
        print(f"check: {checked - len(disagreements)}/{checked} incidents scored alike here and in the stored result")
        for d in disagreements:
            print(f"  DIFFERS {d}")
    return 1 if disagreements else 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())

"""The loop every held-out detection benchmark shares (``detection_v3`` .. ``detection_v10``).

A benchmark is a generator module plus a :class:`Bench` saying how to judge it. Per seed
(:func:`run_seed`): the generator's scenario goes as spans into ``otel_traces`` of a fresh chDB
store (the project's views fill ``llm_calls``), ``anomalies.detect`` runs over the judged week
with its defaults and ``now`` = the end, and its episodes are matched to the labelled incidents
(:func:`finds`: metric family, time [start - 5 min, end + 30 min] or [start - 5 min, start + 6 h]
for permanent shifts, a compatible series; app-wide episodes fit everything). An episode that
neither finds nor is explained by an incident (its family or a labelled consequence) is *false*.

Effect sizes (:func:`effect`) come from the generator, never from the detector: ``Bench.reps``
paired Monte Carlo replicates of the incident window (its first 2 hours at most) drawn with the
generator's ``calls`` hook and fresh noise, with and without the incident; *size* = mean paired
shift of ``Bench.stat`` over its sd without the incident (floor 0.5 for counts), *extra* = the
mean shift of a count. The generator module must provide ``build(seed)``, ``insert(client, sc)``,
``calls(sc, i, lo, hi, noise, incidents, rng)``, ``MINUTES``, ``PERMANENT``, ``KINDS``; its
scenario ``seed``, ``end``, ``judged_from``, ``series``, ``incidents``, ``benign``,
``minute(datetime)`` and ``at(minute)``.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import numpy as np

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter

UP, DOWN = "up", "down"


def family(*pairs: tuple[str, str]) -> set[tuple[str, str]]:
    """Metric families a runner matches, with the detector's variants of a metric (``_2x``) alongside."""
    return {(f"{m}{v}", d) for m, d in pairs for v in ("", "_2x")}


SD_BINS = ((0, 3), (3, 6), (6, 10), (10, math.inf))
EVENT_BINS = ((0, 10), (10, 30), (30, math.inf))
WEEK = 7 * 1440
Families = dict[str, set[tuple[str, str]]]


@dataclass(frozen=True)
class Bench:
    """How one generator is judged: its metric families, consequences and effect statistic."""

    gen: ModuleType
    family: Families
    explains: Families
    benign_kinds: tuple[str, ...]  # most specific first: a false episode's cause is the first it overlaps
    counted: tuple[str, ...]  # kinds whose statistic is a count (rates, volume)
    stat: Callable[[str, dict[str, np.ndarray]], float]
    noise: Callable[[Any, np.random.Generator], Any]
    label: Callable[[Any], str]  # a series' "service/model"
    prefix: str = "llmtrace-det-"
    reps: int = 40
    ttl_days: int = 3650
    row_extras: Callable[[Any, Any, list[Any]], dict[str, Any]] = field(default=lambda sc, inc, hits: {})


# --------------------------------------------------------------------------- matching
def compatible(series: dict[str, str], sc: Any, members: tuple[int, ...]) -> bool:
    return any(all(sc.series[i].attrs.get(k) == v for k, v in series.items()) for i in members)


def span(sc: Any, a: Any) -> tuple[float, float]:
    return sc.minute(a.start), sc.minute(a.end)


def finds(
    a: Any, sc: Any, inc: Any, families: Families, permanent: tuple[str, ...], members: tuple[int, ...] | None = None
) -> bool:
    """Whether episode ``a`` reports incident ``inc`` (metric family, time, series: ``inc.series``
    unless ``members`` says otherwise)."""
    if (a.metric, a.direction) not in families.get(inc.kind, set()):
        return False
    end = inc.start + 360 if inc.kind in permanent else inc.end + 30
    lo, hi = span(sc, a)
    return hi >= inc.start - 5 and lo <= end and compatible(a.series, sc, inc.series if members is None else members)


def benign_hits(sc: Any, false: list[Any]) -> dict[str, int]:
    """Per benign kind, how many of ``false`` overlap a labelled benign change on its series and metric."""
    hits: dict[str, int] = defaultdict(int)
    for a in false:
        lo, hi = span(sc, a)
        kinds = {
            b.kind
            for b in sc.benign
            if hi >= b.start and lo <= b.end and (b.metrics is None or a.metric in b.metrics)
            and compatible(a.series, sc, b.series)
        }  # fmt: skip
        for kind in kinds:
            hits[kind] += 1
    return hits


def overlapped(sc: Any, inc: Any) -> bool:
    return any(
        o is not inc and set(o.series) & set(inc.series) and o.start < inc.end and inc.start < o.end
        for o in sc.incidents
    )


# --------------------------------------------------------------------------- small helpers
def recall(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "-"
    found = sum(r["found"] for r in rows)
    return f"{found / len(rows):.2f} ({found}/{len(rows)})"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def window_stat(kind: str, c: dict[str, np.ndarray], ok_status: Any, volume_kinds: tuple[str, ...]) -> float:
    """v4/v5's window statistic: failed/cut/empty counts, calls, log p95 of durations or TTFT,
    log mean output tokens or cost per successful call."""
    ok = c["status"] == ok_status
    counts = {
        "errors_429": ~ok,  # error_rate counts every failure: 429s and 5xx are judged together
        "errors_5xx": ~ok,
        "truncation": c["cut"],
        "empty_output": ok & (c["out_tok"] == 0),
    }
    if kind in counts:
        return float(counts[kind].sum())
    if kind in volume_kinds:
        return float(len(c["t"]))
    if kind in ("latency", "latency_ramp", "ttft"):
        v = c["ttft_ms"][ok & ~np.isnan(c["ttft_ms"])] if kind == "ttft" else c["dur_ms"][ok]
        return math.log(np.percentile(v, 95)) if len(v) >= 3 else math.nan
    v = (c["out_tok"] if kind == "tokens_shift" else c["cost"])[ok]
    return math.log(v.mean()) if len(v) >= 3 and v.mean() > 0 else math.nan


# --------------------------------------------------------------------------- effect sizes
# effect sizes already drawn, by generator, seed and incident: kept only with ``--stores``
# (:func:`load_effects` starts it and fills it from disk)
EFFECTS: dict[tuple[str, int, int, str, tuple[int, ...]], tuple[float, float]] | None = None


def _effect_key(b: Bench, sc: Any, inc: Any) -> tuple[str, int, int, str, tuple[int, ...]]:
    return (b.gen.__name__, sc.seed, inc.start, inc.kind, tuple(inc.series))


def load_effects(path: str) -> None:
    """Effect sizes drawn by an earlier run (they depend on the generator alone, not the detector)."""
    global EFFECTS
    EFFECTS = {}
    if os.path.exists(path):
        with open(path, "rb") as fh:
            EFFECTS.update(pickle.load(fh))


def save_effects(path: str) -> None:
    with open(path + ".tmp", "wb") as fh:
        pickle.dump(EFFECTS, fh)
    os.replace(path + ".tmp", path)


def effect(b: Bench, sc: Any, inc: Any) -> tuple[float, float]:
    """(size in normal variations, extra events) by paired Monte Carlo over the generator."""
    if EFFECTS is None:
        return _draw_effect(b, sc, inc)
    key = _effect_key(b, sc, inc)
    if key not in EFFECTS:
        EFFECTS[key] = _draw_effect(b, sc, inc)
    return EFFECTS[key]


def replicates(
    b: Bench, sc: Any, inc: Any, reps: int | None = None, until: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``Bench.stat`` of the incident window (its first 2 hours at most, or up to minute ``until``)
    in paired replicates of the generator's traffic, fresh noise each: (without the incident, with it)."""
    lo, hi = inc.start, min(inc.end, inc.start + 120 if until is None else until)
    others = [o for o in sc.incidents if o is not inc]
    reps = b.reps if reps is None else reps
    base, hit = np.full(reps, np.nan), np.full(reps, np.nan)
    for r in range(reps):
        noise = b.noise(sc, np.random.default_rng([sc.seed, 17, inc.start, r]))
        parts: dict[bool, list[dict[str, np.ndarray]]] = {False: [], True: []}
        for i in inc.series:
            for on in (False, True):
                got = b.gen.calls(sc, i, lo, hi, noise, [*others, inc] if on else others,
                                  np.random.default_rng([sc.seed, 18, inc.start, r, i]))  # fmt: skip
                keep = got["t"] < hi
                parts[on].append({k: v[keep] for k, v in got.items()})
        base[r] = b.stat(inc.kind, concat(parts[False]))
        hit[r] = b.stat(inc.kind, concat(parts[True]))
    return base, hit


def watched_week(store: str, sc: Any, side: Callable[..., Any], flag: Callable[..., Any]) -> tuple[Any, Any]:
    """The plan and prepared levels (calls only, the default grouping) of a kept store's judged week,
    with ``anomalies_scan._volume_side`` and ``_flag_nb`` replaced by ``side`` and ``flag`` meanwhile
    (diagnostic spies that call through to the originals)."""
    from llmtrace.analytics import anomalies_levels as levels
    from llmtrace.analytics import anomalies_scan as scan
    from llmtrace.store.client import connect

    real = scan._volume_side, scan._flag_nb
    scan._volume_side, scan._flag_nb = side, flag
    client = connect(f"chdb://{store}")
    try:
        p = anomalies.plan(Filter(start=sc.end - timedelta(days=7), end=sc.end), now=sc.end)
        return p, levels.prepare(client, p, levels.levels_for("auto"), ["calls"])
    finally:
        client.close()
        scan._volume_side, scan._flag_nb = real


def effect_of(b: Bench, kind: str, base: np.ndarray, hit: np.ndarray) -> tuple[float, float, float]:
    """(size in normal variations, extra events, the normal variation) of paired replicates."""
    good = ~np.isnan(base) & ~np.isnan(hit)
    if good.sum() < base.size / 2:
        return 0.0, 0.0, math.nan
    shift = float(np.mean(hit[good] - base[good]))
    counted = kind in b.counted
    sd = max(float(np.std(base[good])), 0.5 if counted else 1e-9)
    return abs(shift) / sd, abs(shift) if counted else 0.0, sd


def _draw_effect(b: Bench, sc: Any, inc: Any) -> tuple[float, float]:
    size, extra, _ = effect_of(b, inc.kind, *replicates(b, sc, inc))
    return size, extra


# --------------------------------------------------------------------------- one seed
@contextmanager
def store(
    b: Bench, sc: Any, fill: Callable[[Any, Any], int] | None = None, keep: str | None = None
) -> Iterator[tuple[Any, dict[str, float]]]:
    """A fresh chDB store filled with the scenario's spans by ``fill`` (default: the generator's
    ``insert``; a benchmark may interleave its own checks); yields (client, insert timings).

    ``keep``: a folder where the seed's store is kept and, once filled, reused by later runs (a
    detector change judged again without inserting 0.7M calls per seed anew)."""
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    path = os.path.join(keep, f"{b.prefix}{sc.seed}") if keep else tempfile.mkdtemp(prefix=b.prefix)
    filled = os.path.join(path, ".filled")
    reused = keep is not None and os.path.exists(filled)
    if keep and not reused:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    client = connect(f"chdb://{path}")
    try:
        started, cpu = time.perf_counter(), time.process_time()
        calls = 0
        # fixed dates: keep them past any TTL; a kept store gets the schema files added since it was filled
        apply_migrations(client_runner(client), ttl_days=b.ttl_days)
        if reused:
            calls = int(client.query("SELECT count() FROM llm_calls").result_rows[0][0])
        else:
            calls = (fill or b.gen.insert)(client, sc)
            if keep:
                open(filled, "w").close()
        yield client, {"calls": calls, "insert_seconds": time.perf_counter() - started,
                       "insert_cpu": time.process_time() - cpu}  # fmt: skip
    finally:
        client.close()
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def explained(b: Bench, a: Any, sc: Any) -> bool:
    """An incident's family or labelled consequence, on its series or those it spills onto (fallbacks)."""
    return any(
        finds(a, sc, inc, b.explains, b.gen.PERMANENT, (*inc.series, *getattr(inc, "spill", ())))
        for inc in sc.incidents
    )


def series_weeks(sc: Any, minutes: int) -> float:
    judged = (min(s.last_minute, minutes) - max(s.first_minute, sc.judged_from) for s in sc.series)
    return sum(max(0, m) for m in judged) / WEEK


KEEP: str | None = None  # --stores: where the runners keep and reuse each seed's store
BY = "auto"  # --by: the grouping judged (the issue's own check runs ``--by service,model``)


def run_seed(b: Bench, seed: int, fill: Callable[[Any, Any], int] | None = None) -> dict[str, Any]:
    sc = b.gen.build(seed)
    with store(b, sc, fill, KEEP if fill is None else None) as (client, inserted):
        week = Filter(start=sc.end - timedelta(days=7), end=sc.end)
        started, cpu = time.perf_counter(), time.process_time()
        report = anomalies.detect(client, week, BY, now=sc.end)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    episodes = report.episodes()
    started = time.perf_counter()
    rows = [row(b, sc, inc, episodes) for inc in sc.incidents]
    false = [a for a in episodes if not explained(b, a, sc)]
    return {
        "seed": seed, "rows": rows, "false": false, "benign": benign_hits(sc, false), "sc": sc,
        "causes": [cause(b, sc, a) for a in false], "series_weeks": series_weeks(sc, b.gen.MINUTES),
        "series": len(sc.series), "seconds": seconds, "cpu": cpu_seconds, **inserted,
        "effect_seconds": time.perf_counter() - started, "episodes": len(episodes), "all_episodes": episodes,
    }  # fmt: skip


def cause(b: Bench, sc: Any, a: Any) -> str:
    """The first labelled benign change a false episode overlaps, else its level, metric and direction."""
    hits = benign_hits(sc, [a])
    for kind in b.benign_kinds:
        if hits.get(kind):
            return kind
    return f"unlabelled {a.level}:{a.metric}:{a.direction}"


def row(b: Bench, sc: Any, inc: Any, episodes: list[Any]) -> dict[str, Any]:
    size, extra = effect(b, sc, inc)
    hits = [a for a in episodes if finds(a, sc, inc, b.family, b.gen.PERMANENT)]
    detected = [sc.minute(a.detected_at) - inc.start for a in hits if a.detected_at]
    members = [sc.series[i] for i in inc.series]
    return {
        "seed": sc.seed, "kind": inc.kind, "size": size, "extra": extra,
        "minutes": 120 if inc.kind in b.gen.PERMANENT else inc.end - inc.start, "found": bool(hits),
        "young": any(m.first_minute > 0 and inc.start - m.first_minute < 2 * 1440 for m in members),
        "overlap": overlapped(sc, inc), "scope": inc.scope,
        "ttd": min(detected) if detected else None, "at": f"{sc.at(inc.start):%a %H:%M}",
        "factor": round(inc.factor, 3), "rate": round(members[0].rate, 2), **b.row_extras(sc, inc, hits),
        "series": b.label(members[0]) + (f" +{len(members) - 1}" if len(members) > 1 else ""),
    }  # fmt: skip


def eligible(b: Bench, r: dict[str, Any]) -> bool:
    """The issue's target: >= 10 minutes, size >= 3 and, for rates and volume, >= 10 extra events."""
    if r["minutes"] < 10 or r["size"] < 3:
        return False
    return r["extra"] >= 10 or r["kind"] not in b.counted


def seed_line(res: dict[str, Any], started: float) -> str:
    found = sum(r["found"] for r in res["rows"])
    return (
        f"seed {res['seed']}: {res['calls']:,} calls, {res['series']} series, {len(res['rows'])} incidents, "
        f"{found} found, {len(res['false'])} false, detect {res['seconds']:.1f} s, insert "
        f"{res['insert_seconds']:.1f} s, effects {res['effect_seconds']:.1f} s, "
        f"seed {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}"
    )


# --------------------------------------------------------------------------- report
def bins(rows: list[dict[str, Any]], key: str, edges: tuple[tuple[float, float], ...]) -> str:
    return "; ".join(f"[{lo}, {hi}) {recall([r for r in rows if lo <= r[key] < hi])}" for lo, hi in edges)


def recall_head(b: Bench, rows: list[dict[str, Any]], width: int, durations: tuple[tuple[float, float], ...]) -> None:
    """The report's first lines, the same in every runner: recall per kind, by effect size, by
    extra events and by duration."""
    print(f"\nincidents: {len(rows)}, eligible: {sum(eligible(b, r) for r in rows)}")
    print("\n".join(kind_table(rows, b.gen.KINDS, lambda r: eligible(b, r), width)))
    long = [r for r in rows if r["minutes"] >= 10]
    print("\nrecall by effect size (sd units, >= 10 min): " + bins(long, "size", SD_BINS))
    counted = [r for r in long if r["kind"] in b.counted and r["size"] >= 3]
    print("  rates and volume by extra events (size >= 3, >= 10 min): " + bins(counted, "extra", EVENT_BINS))
    temporary = [r for r in rows if r["kind"] not in b.gen.PERMANENT]
    print(f"recall by duration (all sizes): {bins(temporary, 'minutes', durations)}"
          f"; permanent {recall([r for r in rows if r['kind'] in b.gen.PERMANENT])}")  # fmt: skip


def recall_by(rows: list[dict[str, Any]], el: list[dict[str, Any]], keys: Iterable[tuple[str, Iterable[Any]]]) -> None:
    """One line per row key: recall of all and of eligible incidents per value."""
    for key, values in keys:
        print(f"  by {key}: " + "; ".join(
            f"{v} all {recall([r for r in rows if r[key] == v])}, eligible {recall([r for r in el if r[key] == v])}"
            for v in values))  # fmt: skip


def ttd_line(el: list[dict[str, Any]]) -> None:
    ttd = [r["ttd"] for r in el if r["ttd"] is not None]
    print(f"time to detect (eligible, detected_at - start): median {pct(ttd, 50):.0f} min, "
          f"p90 {pct(ttd, 90):.0f} min")  # fmt: skip


def false_line(res: dict[str, Any], a: Any) -> str:
    return f"  false: {a.level} {a.metric} {a.direction} {a.series} {a.start:%a %H:%M}-{a.end:%H:%M}"


def cli(
    doc: str | None,
    default_seeds: str,
    run: Callable[[int, int], dict[str, Any]],
    report: Callable[[list[dict[str, Any]], bool], None],
    watch_steps: int,
    false: Callable[[dict[str, Any], Any], str],
) -> int:
    """A runner's command line: ``--seeds``, ``--verbose``, ``--watch``, ``--sample``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    first = default_seeds.split("-")[0]
    parser.add_argument(
        "--seeds", default=default_seeds, help=f"e.g. {default_seeds} (the reported run) or {first},{int(first) + 1}"
    )
    parser.add_argument("--verbose", action="store_true", help="every missed eligible incident and false episode")
    parser.add_argument("--watch", action="store_true", help="also watch's time to detect (fills the store in steps)")
    parser.add_argument("--sample", type=int, default=3, help="--watch: eligible incidents per seed (default 3)")
    parser.add_argument("--stores", help="keep each seed's store (and effect sizes) here and reuse them")
    parser.add_argument("--by", default="auto", help="the grouping judged: auto (default) or e.g. service,model")
    args = parser.parse_args()
    global KEEP, BY
    KEEP, BY = args.stores, args.by
    effects = os.path.join(args.stores, "effects.pickle") if args.stores else None
    if effects:
        os.makedirs(args.stores, exist_ok=True)
        load_effects(effects)
    results = []
    for seed in seeds(args.seeds):
        started = time.perf_counter()
        res = run(seed, args.sample if args.watch else 0)
        if effects:
            save_effects(effects)
        print(seed_line(res, started), flush=True)
        if args.verbose:
            for a in res["false"]:
                print(false(res, a))
        results.append(res)
    report(results, args.verbose)
    if args.watch:
        watch_report([r for res in results for r in res["watch"]], watch_steps)
    return 0


def kind_table(
    rows: list[dict[str, Any]], kinds: Iterable[str], eligible: Callable[[dict[str, Any]], bool], width: int
) -> list[str]:
    """Recall per kind (and ALL): all incidents, eligible ones, and the eligible young and sparse ones."""

    def line(label: str, part: list[dict[str, Any]]) -> str:
        el = [r for r in part if eligible(r)]
        young, sparse = [r for r in el if r["young"]], [r for r in el if r["sparse"]]
        return (
            f"| {label:{width}} | {recall(part):>14} | {recall(el):>14} | {recall(young):>12} | {recall(sparse):>12} |"
        )

    head = f"| {'kind':{width}} | {'all':>14} | {'eligible':>14} | {'elig. young':>12} | {'elig. sparse':>12} |"
    rule = f"|{'-' * (width + 2)}|{'-' * 16}|{'-' * 16}|{'-' * 14}|{'-' * 14}|"
    return [head, rule, *(line(k, [r for r in rows if r["kind"] == k]) for k in kinds), line("ALL", rows)]


def false_report(b: Bench, results: list[dict[str, Any]], planned: tuple[str, str] | None = None) -> None:
    """False episodes per series-week, by cause, and the alerts on each benign kind."""
    false = sum(len(res["false"]) for res in results)
    weeks = sum(res["series_weeks"] for res in results)
    episodes = sum(res["episodes"] for res in results)
    rate = false / weeks
    print(f"false episodes: {false} of {episodes} over {weeks:.1f} series-weeks = {rate:.2f} per series per week")
    causes: dict[str, int] = defaultdict(int)
    for res in results:
        for c in res["causes"]:
            causes[c] += 1
    unlabelled = sum(v for k, v in causes.items() if k.startswith("unlabelled"))
    extra = f"; without the {planned[1]}: {(false - causes.get(planned[0], 0)) / weeks:.2f}" if planned else ""
    print(f"  on no labelled benign change: {unlabelled} = {unlabelled / weeks:.2f} per series per week{extra}")
    print("  by cause (first benign kind overlapped, else level:metric:direction):")
    for k, v in sorted(causes.items(), key=lambda x: -x[1]):
        print(f"    {v:4d} {k}")
    benign: dict[str, int] = defaultdict(int)
    for res in results:
        for k, v in res["benign"].items():
            benign[k] += v
    print("alerts on benign changes (an episode may touch several): "
          + ", ".join(f"{k} {benign.get(k, 0)}" for k in b.benign_kinds))  # fmt: skip


def timing_report(b: Bench, results: list[dict[str, Any]]) -> None:
    med = {k: statistics.median(res[k] for res in results) for k in ("seconds", "cpu", "insert_seconds", "insert_cpu")}
    print(f"detect, median over seeds: {med['seconds']:.2f} s wall / {med['cpu']:.2f} s CPU over a median "
          f"{statistics.median(res['calls'] for res in results):,.0f} calls ({b.gen.DAYS} days stored, 7 judged); "
          f"insert {med['insert_seconds']:.1f} s wall / {med['insert_cpu']:.1f} s CPU; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip


def misses(b: Bench, rows: list[dict[str, Any]], verbose: bool) -> None:
    missed = sorted((r for r in rows if eligible(b, r) and not r["found"]), key=lambda r: -r["size"])
    print(f"worst misses (eligible, largest effect first; {len(missed)} in all):")
    for r in missed[: len(missed) if verbose else 12]:
        print("  ", {k: (round(v, 1) if isinstance(v, float) and k != "factor" else v) for k, v in r.items()})


# --------------------------------------------------------------------------- storing a scenario
def insert_rows(client: Any, rows: list[tuple[Any, ...]], chunk: int = 50_000) -> None:
    """Span rows (a generator's ``span_rows``) into ``otel_traces``, ``chunk`` at a time: the views
    fill ``llm_calls`` and the rollups as for real traffic."""
    from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

    for k in range(0, len(rows), chunk):
        client.insert("otel_traces", rows[k : k + chunk], column_names=OTEL_TRACES_COLUMNS)


def client_span_row(
    start_ns: int,
    trace_id: str,
    span_id: str,
    name: str,
    service: str,
    resource: dict[str, str],
    scope: str,
    attrs: dict[str, str],
    duration_ns: int,
    failed: bool,
) -> tuple[Any, ...]:
    """One LLM client span as an ``otel_traces`` row (the Collector's column order; no parent,
    events or links): what every generator's ``span_rows`` stores per call."""
    return (
        start_ns, trace_id, span_id, "", "", name, "Client", service, resource, scope, "", attrs, duration_ns,
        "Error" if failed else "Unset", "provider error" if failed else "", [], [], [], [], [], [], [],
    )  # fmt: skip


def run_watched(b: Bench, seed: int, sample: int, steps: int, salt: int) -> dict[str, Any]:
    """:func:`run_seed`; with ``sample``, watch's time to detect of that many eligible incidents
    first (:func:`watch_fill`, ``salt`` the draw), in ``res["watch"]``."""
    watched: list[dict[str, Any]] = []
    fill = (lambda client, sc: watch_fill(b, client, sc, sample, watched, steps, salt)) if sample else None
    res = run_seed(b, seed, fill)
    res["watch"] = watched
    return res


# --------------------------------------------------------------------------- watch's time to detect
def watch_fill(
    b: Bench, client: Any, sc: Any, sample: int, out: list[dict[str, Any]], steps: int = 12, salt: int = 60
) -> int:
    """Insert the spans in order of arrival (``gen.span_rows``, :func:`insert_rows`); at each of
    ``sample`` eligible incidents, step ``now`` every 5 minutes from its start and detect as
    ``llmtrace watch`` does (last 24 h, ``by="auto"``, call-level findings on) until one of the
    report's anomalies finds it, for at most ``steps`` steps. Appends one row per incident to ``out``."""
    el = [inc for inc in sc.incidents if eligible(b, row(b, sc, inc, []))]
    rng = np.random.default_rng([sc.seed, salt])
    picked = sorted((el[k] for k in rng.choice(len(el), min(sample, len(el)), replace=False)), key=lambda i: i.start)
    arrive, rows, calls = b.gen.span_rows(sc)
    done = 0
    for inc in picked:
        first, cpu = None, []
        for step in range(1, steps + 1):
            now = inc.start + 5 * step
            upto = int(np.searchsorted(arrive, now, side="right"))
            insert_rows(client, rows[done:upto])
            done = upto
            started, end = time.process_time(), sc.at(now)
            report = anomalies.detect(client, Filter(start=end - timedelta(hours=24), end=end), "auto", now=end)
            cpu.append(time.process_time() - started)
            if any(finds(a, sc, inc, b.family, b.gen.PERMANENT) for a in report.anomalies):
                first = 5 * step
                break
        label = b.label(sc.series[inc.series[0]]) + (f" +{len(inc.series) - 1}" if len(inc.series) > 1 else "")
        out.append({"seed": sc.seed, "kind": inc.kind, "ttd": first, "minutes": inc.end - inc.start,
                    "series": label, "at": f"{sc.at(inc.start):%a %H:%M}", "cpu": float(np.median(cpu))})  # fmt: skip
        print(f"  watch seed {sc.seed}: {inc.kind} on {label} at {sc.at(inc.start):%a %H:%M} -> "
              f"{first if first is not None else f'> {5 * steps}'} min", flush=True)  # fmt: skip
    insert_rows(client, rows[done:])
    return int(calls)


def watch_report(rows: list[dict[str, Any]], steps: int = 12) -> None:
    """Watch's time to detect over the sampled incidents (inf = not within ``steps`` 5-minute steps)."""
    ttd = [r["ttd"] if r["ttd"] is not None else math.inf for r in rows]
    within = sum(t <= 10 for t in ttd)
    rank = lambda q: float(np.percentile(ttd, q, method="higher")) if ttd else math.nan  # noqa: E731  (inf-safe)
    print(f"\nwatch: {len(rows)} eligible incidents, found within {5 * steps} min "
          f"{sum(t < math.inf for t in ttd)}; time to detect median {rank(50):.0f} min, "
          f"p90 {rank(90):.0f} min (inf = not within {5 * steps} min); within 10 min "
          f"{within}/{len(rows)} = {within / max(len(rows), 1):.2f}")  # fmt: skip
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r, t in zip(rows, ttd, strict=True):
        by_kind[r["kind"]].append(t)
    print("  by kind (minutes): " + "; ".join(f"{k} {sorted(v)}" for k, v in sorted(by_kind.items())))
    print(f"  detect per step: median {pct([r['cpu'] for r in rows], 50):.2f} s CPU; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

"""From flagged windows to episodes: merge scales, find true edges, keep the most specific level.

* Windows of one series, metric and direction that overlap or touch (whatever their scale)
  form one episode; its edges are then moved in to the run of buckets that best fits "the
  episode's level" against "usual" (largest summed log-likelihood ratio), so a 10-minute
  burst seen through a 60-minute window is reported as 10 minutes.
* Levels (leaf series, service, provider, the whole app) are judged separately, so one
  incident can be flagged at several. An episode of a coarser level is kept when no more
  specific episode explains it, or when two or more starting with it (within 30 minutes)
  do and none of them alone carries most (``EXPLAINS``) of its excess events (the coarser
  one explains them all: a provider outage rather than five model episodes, which are then
  dropped); otherwise the more specific ones are kept and the coarser one dropped, so a
  burst of one series stays that series' even when a small episode elsewhere coincides with
  it. When a coarser episode does group several, the most specific episode that holds them all
  and carries ``EXPLAINS`` of its excess is reported instead (the service, not the whole app,
  whose excess also holds every other series' noise). No incident is reported twice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmtrace.analytics.anomalies_scan import Scan, Window
from llmtrace.analytics.anomalies_sql import FAR, VARIANTS

__all__ = ["Episode", "merge", "resolve"]

ONSET_BUCKETS = 6  # specific episodes starting within this of a coarser one are one incident
EXPLAINS = 0.7  # a specific episode with this share of a coarser one's excess events explains it


@dataclass
class Episode:
    level: str
    group: int
    leaves: frozenset[int]
    metric: str  # as scanned (variants: tokens_per_call_low is tokens_per_call down, the others the metric)
    direction: str
    first: int
    last: int  # inclusive bucket index
    score: float
    detected: int  # the earliest bucket by whose end a flagged window's evidence existed
    observed: float | None = None
    expected: float | None = None
    events: float | None = None
    trials: float | None = None

    def overlaps(self, other: Episode) -> bool:
        return self.first <= other.last and other.first <= self.last


def seen(w: Window) -> int:
    """The bucket by whose end ``w`` could be flagged: its last, or later (a fall judged against the hours after it)."""
    return w.last if w.seen is None else w.seen


def merge(scan: Scan, level: str, leaves: list[frozenset[int]], judge_first: int) -> list[Episode]:
    """One episode per run of overlapping or touching flagged windows, trimmed and measured."""
    runs: dict[tuple[int, str, str], list] = defaultdict(list)
    for w in scan.windows:  # a metric's far variants (past twice the p90) join its episodes
        runs[(w.group, FAR.get(w.metric, w.metric), w.direction)].append(w)
    out: list[Episode] = []
    for (group, _, direction), found in runs.items():
        found.sort(key=lambda w: (w.first, w.last))
        current: Episode | None = None
        for w in found:
            if current is not None and w.first <= current.last + 1:
                current.last = max(current.last, w.last)
                if w.score > current.score:  # measured on the variant with the strongest evidence
                    current.score, current.metric = w.score, w.metric
                current.detected = min(current.detected, seen(w))
                continue
            current = Episode(level, group, leaves[group], w.metric, direction, w.first, w.last, w.score, seen(w))
            out.append(current)
    for e in out:
        _trim(e, scan, judge_first)
        _measure(e, scan)
    return out


def _p_ref(e: Episode, scan: Scan) -> float:
    p = scan.buckets[e.metric][2][e.group, max(0, e.first - 12) : e.last + 1]
    finite = p[np.isfinite(p)]
    return float(finite[0]) if finite.size else math.nan


def _gains(e: Episode, scan: Scan, p_ref: float) -> np.ndarray | None:
    """Per bucket of the merged span: the log-likelihood ratio of "the episode's level"
    against "usual" (binomial for rates, Poisson for volume)."""
    k, n, _ = scan.buckets[e.metric]
    span = slice(e.first, e.last + 1)
    kb, nb = k[e.group, span].astype(float), n[e.group, span].astype(float)
    if e.metric == "calls":
        mu = np.nan_to_num(nb, nan=0.0)
        total_x, total_mu = kb.sum(), mu.sum()
        if total_mu <= 0:
            return None
        ratio = min(max(total_x / total_mu, 1e-3), 1e3)
        return np.asarray(kb * math.log(ratio) - mu * (ratio - 1))
    if not nb.sum() or math.isnan(p_ref):
        return None
    p1 = min(max(kb.sum() / nb.sum(), 2 * p_ref), 0.999)
    p0 = min(max(p_ref, 1e-6), 0.999)
    return np.asarray(kb * math.log(p1 / p0) + (nb - kb) * math.log((1 - p1) / (1 - p0)))


def _trim(e: Episode, scan: Scan, judge_first: int) -> None:
    """The true edges: the run of buckets with the largest summed gain (Kadane's maximum
    subarray), so buckets that only rode along in a long window are dropped."""
    e.first = min(max(e.first, judge_first), e.last)
    p_ref = _p_ref(e, scan) if e.metric != "calls" else 1.0
    gains = _gains(e, scan, p_ref)
    if gains is None or not gains.size:
        return
    best, best_span, run, run_start = -math.inf, (0, len(gains) - 1), 0.0, 0
    for i, g in enumerate(gains):
        if run <= 0:
            run, run_start = 0.0, i
        run += g
        if run > best:
            best, best_span = run, (run_start, i)
    if best > 0:
        e.first, e.last = e.first + best_span[0], e.first + best_span[1]


def _measure(e: Episode, scan: Scan) -> None:
    k, n, _ = scan.buckets[e.metric]
    span = slice(e.first, e.last + 1)
    if e.metric == "calls":
        e.observed = float(k[e.group, span].sum())
        mu = n[e.group, span]
        e.expected = float(np.nansum(mu)) if np.isfinite(mu).any() else None
        return
    e.events, e.trials = float(k[e.group, span].sum()), float(n[e.group, span].sum())
    e.observed = e.events / e.trials if e.trials else None
    p_ref = _p_ref(e, scan)
    e.expected = None if math.isnan(p_ref) else p_ref


def _excess(e: Episode) -> float:
    """Events (calls, for volume) beyond the expectation over the episode, either direction."""
    if e.metric == "calls":
        return abs((e.observed or 0.0) - (e.expected or 0.0))
    if e.events is None or e.trials is None or e.expected is None:
        return 0.0
    return abs(e.events - e.trials * e.expected)


def resolve(
    episodes: list[Episode], order: list[str], series_of: Sequence[int] | None = None, main: str | None = None
) -> list[Episode]:
    """Drop episodes a more specific one explains, and specific ones a coarser one groups.

    ``order`` lists levels from the most specific to the coarsest. ``series_of`` maps each leaf to
    its series at the ``main`` level (service x model): above that level, episodes of one series'
    environments (production and staging of support-bot x gpt-4o) count as one when deciding
    whether a coarser episode groups several series; else a burst in both environments of one
    series was handed to the whole app or the provider, whose excess also holds the other
    series' noise (the demo's error burst and model switch at 5 of 24 start hours).

    Then, rows only: a series' production and staging episodes starting together become the
    series' episode, and a finer episode held whole by a kept coarser one is dropped.
    """
    rank = {level: i for i, level in enumerate(order)}
    above = rank[main] if main in rank and series_of is not None else len(order)

    def distinct(found: list[Episode], level: str) -> int:
        if rank[level] <= above or series_of is None:
            return len(found)
        return len({frozenset(series_of[leaf] for leaf in d.leaves) for d in found})

    def related(d: Episode, e: Episode) -> bool:
        return (
            rank[d.level] < rank[e.level]
            and VARIANTS.get(d.metric, d.metric) == VARIANTS.get(e.metric, e.metric)
            and d.direction == e.direction
            and d.overlaps(e)
            and bool(d.leaves & e.leaves)
        )

    ordered = sorted(episodes, key=lambda x: (rank[x.level], x.first))
    kept: list[Episode] = []
    for e in ordered:
        finer = [d for d in kept if related(d, e)]
        together = [d for d in finer if abs(d.first - e.first) <= ONSET_BUCKETS]
        if finer and (distinct(together, e.level) < 2 or max(_excess(d) for d in together) >= EXPLAINS * _excess(e)):
            continue  # explained by the more specific episode(s)
        if together:
            # the most specific episode, dropped or not, that holds them all and explains e
            # reports them: support-bot's burst, not the whole app's, even where one of its models
            # carried less than EXPLAINS of support-bot's excess and so did not explain it alone
            held = frozenset().union(*(d.leaves for d in together))
            group = next(
                (
                    c
                    for c in ordered
                    if related(c, e)
                    and all(c is not k for k in kept)
                    and c.leaves >= held
                    and rank[c.level] > max(rank[d.level] for d in together)
                    and _excess(c) >= EXPLAINS * _excess(e)
                ),
                e,
            )
            gone = {id(d) for d in together}
            kept = [d for d in kept if id(d) not in gone]
            group.first = min([group.first, *(d.first for d in together)])
            group.last = max([group.last, *(d.last for d in together)])
            group.detected = min([group.detected, *(d.detected for d in together)])
            if group is not e:
                kept.append(group)
                continue  # e is explained by the group now reported
        kept.append(e)
    return _held_whole(_one_series(kept, ordered, rank, above), rank)


def _family(e: Episode) -> tuple[str, str]:
    return VARIANTS.get(e.metric, e.metric), e.direction


def _one_series(kept: list[Episode], ordered: list[Episode], rank: dict[str, int], main: int) -> list[Episode]:
    """Both environments of one series flagged at once are reported as the series' episode (when
    it has one), not as a production and a staging row; which level explains what is decided
    before, so this only merges rows."""
    for e in ordered:
        if rank[e.level] != main or any(e is k for k in kept):
            continue
        halves = [
            d
            for d in kept
            if rank[d.level] < main and _family(d) == _family(e) and d.leaves <= e.leaves
            and d.overlaps(e) and abs(d.first - e.first) <= ONSET_BUCKETS
        ]  # fmt: skip
        if len(halves) >= 2:
            e.first = min([e.first, *(d.first for d in halves)])
            e.last = max([e.last, *(d.last for d in halves)])
            e.detected = min([e.detected, *(d.detected for d in halves)])
            kept = [d for d in kept if all(d is not h for h in halves)] + [e]
    return kept


def _held_whole(kept: list[Episode], rank: dict[str, int]) -> list[Episode]:
    """A finer episode inside a kept coarser one's span and series (a staging model slowing down
    45 minutes into its service's slowdown) is the same incident: not a second row."""
    return [
        d
        for d in kept
        if not any(
            rank[c.level] > rank[d.level] and _family(c) == _family(d) and d.leaves <= c.leaves
            and c.first <= d.first and d.last <= c.last
            for c in kept
        )
    ]  # fmt: skip

"""Levels of the hierarchy: leaf counts from SQL summed into services, providers, the app.

One query returns counts per leaf series (the union of every level's columns) and bucket;
each level's series are sums of leaves (a matrix product), scanned on their own, and the
episodes of all levels are then resolved into the most specific explanation
(:func:`~llmtrace.analytics.anomalies_episodes.resolve`).

The environment is a level of its own only where it splits something: a service with staging
next to production is judged per environment too (service x model x environment, service x
environment), so a staging incident is not diluted in production's calls; a series whose
service runs in one environment has no such group (it would be the same calls as its
service x model, reported twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.anomalies_episodes import Episode, merge, resolve
from llmtrace.analytics.anomalies_members import ALWAYS_COUNTED, Unsettled, fold, settled_rows
from llmtrace.analytics.anomalies_profile import group_sums, usual_calls
from llmtrace.analytics.anomalies_scan import BASELINE, Scan, leaf_volume, scan_levels
from llmtrace.analytics.anomalies_sql import (
    COUNTS,
    FAR,
    calls_sql,
    counts_sql,
    rollup_answers,
    rollup_counts_sql,
    volume_sql,
)
from llmtrace.analytics.filters import sql_time
from llmtrace.analytics.groups import parse_by

__all__ = ["AUTO", "Level", "Prepared", "VolumeSide", "early_volume", "levels_for", "prepare", "warming_up"]

AUTO = "auto"
ENV = "environment"
PROVIDER = "provider"
SHIFT_SHARE = 1 / 3  # of a volume change that other providers of the same series must take up: a shift
PROFILE_AGE = timedelta(days=2)  # a daily profile needs two previous days
FIRST_JUDGED = timedelta(hours=3)  # thresholds need three hours of calls behind them
VOLUME_HISTORY = timedelta(days=8)  # calls read before the judged window: a previous week for the profile
SPLIT_MIN_CALLS = 100  # calls (in the history read) an environment needs to be a series of its own
LULL_AROUND = timedelta(hours=6)  # a volume fall is judged traffic over its span and this either side
LULL_SHARE = 0.75  # ... when most services held at most this share of their usual calls there
LULL_MIN_USUAL = 20.0  # calls a service usually holds over the span to count
LULL_DEEPER = 0.25  # ... unless the fall held under this fraction of the share the quiet services held


@dataclass(frozen=True)
class Level:
    """A grouping; with ``split``, only its groups whose ``split`` column divides the calls of
    the same group without it (the others repeat that coarser group)."""

    keys: tuple[str, ...]
    split: str = ""

    @property
    def name(self) -> str:
        return ",".join(self.keys) or "all"


_AUTO_LEVELS = (
    Level(("service", "model", ENV), ENV),
    Level(("service", "model", PROVIDER), PROVIDER),
    Level(("service", "model")),
    Level(("service", ENV), ENV),
    Level(("service",)),
    Level(("provider",)),
    Level(()),
)


def levels_for(by: str | Iterable[str] | None) -> list[Level]:
    """``auto`` -> service x model (x environment where a service has several), service (x
    environment), provider, all; anything else -> that one level."""
    if isinstance(by, str) and by.strip().lower() == AUTO:
        return list(_AUTO_LEVELS)
    return [Level(parse_by(by))]


def main_level(levels: list[Level]) -> Level:
    """The most specific level every series has (warm-up notes and call-level findings)."""
    return next(lv for lv in levels if not lv.split)


@dataclass
class _LevelData:
    level: Level
    groups: list[tuple[str, ...]]
    first: np.ndarray
    scan: Scan
    episodes: list[Episode] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything one detection run computed, for episodes, warm-up notes and points."""

    buckets: int
    levels: dict[str, _LevelData]
    episodes: list[Episode]

    def series(self, level: str, group: int) -> dict[str, str]:
        data = self.levels[level]
        return dict(zip(data.level.keys, data.groups[group], strict=True))

    def points(self, p: Any) -> pd.DataFrame:
        """Per level, series, metric and judged bucket: observed, expected, flagged."""
        frames = []
        start = p.judge_first
        stamps = pd.date_range(p.judge_start, periods=self.buckets - start, freq=f"{p.step}s")
        for name, data in self.levels.items():
            for metric, (k, n, prob) in data.scan.buckets.items():
                if metric in FAR:  # its episodes are flagged on the metric itself
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    observed = k if metric == "calls" else k / n
                expected = n if metric == "calls" else prob
                flagged = np.zeros(k.shape, bool)
                for e in self.episodes:
                    if e.level == name and FAR.get(e.metric, e.metric) == metric:
                        flagged[e.group, e.first : e.last + 1] = True
                for g, key in enumerate(data.groups):
                    frames.append(
                        pd.DataFrame(
                            {
                                "level": name,
                                **dict(zip(data.level.keys, key, strict=True)),
                                "metric": metric,
                                "bucket": stamps,
                                "observed": observed[g, start:],
                                "expected": expected[g, start:],
                                "flagged": flagged[g, start:],
                            }
                        )
                    )
        columns = ["level", "metric", "bucket", "observed", "expected", "flagged"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _leaf_keys(levels: list[Level]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for level in levels for k in level.keys))


def _volume_history(
    client: Any, p: Any, keys: tuple[str, ...], cols: list[str], leaf_index: dict[tuple[Any, ...], int]
) -> tuple[np.ndarray, int]:
    """Calls per leaf and bucket in the ``VOLUME_HISTORY`` before the plan's history (zero
    columns when the history already reaches that far) and how many buckets that is."""
    start = min(p.history.start, p.judge_start - VOLUME_HISTORY)
    extra = int((p.history.start - start).total_seconds()) // p.step
    calls = np.zeros((len(leaf_index), extra))
    if not extra or not leaf_index:
        return calls, extra
    start = p.history.start - timedelta(seconds=extra * p.step)
    sql = volume_sql(keys, p.history.dimension_clause(), p.step)
    df = frame(client, sql, p.params(vol_start=sql_time(start)))
    if len(df):
        rows = np.array([leaf_index.get(t, -1) for t in df[cols].itertuples(index=False, name=None)])
        b = ((pd.to_datetime(df["b"], utc=True) - pd.Timestamp(start)).dt.total_seconds() // p.step).astype(int)
        inside = (rows >= 0) & (b.to_numpy() >= 0) & (b.to_numpy() < extra)
        calls[rows[inside], b.to_numpy()[inside]] = df["calls"].to_numpy(dtype=float)[inside]
    return calls, extra


def _members(
    levels: list[Level], keys: tuple[str, ...], leaves: list[tuple[Any, ...]], calls: np.ndarray
) -> list[tuple[list[tuple[str, ...]], np.ndarray]]:
    """Per level: its groups and the membership matrix (groups x leaves); ``calls``: each
    leaf's calls, for which groups a split level keeps."""
    out = []
    for level in levels:
        positions = [keys.index(k) for k in level.keys]
        groups = sorted({tuple(str(leaf[i]) for i in positions) for leaf in leaves})
        if level.split:
            groups = _splitting(groups, level, [tuple(str(leaf[i]) for i in positions) for leaf in leaves], calls)
        index = {g: i for i, g in enumerate(groups)}
        member = np.zeros((len(groups), len(leaves)))
        for j, leaf in enumerate(leaves):
            row = index.get(tuple(str(leaf[i]) for i in positions))
            if row is not None:
                member[row, j] = 1
        out.append((groups, member))
    return out


def _summed_counts(member: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A level's counts per group: one sum of its leaves with every count side by side."""
    names = list(arrays)
    if not names:
        return {}
    summed = group_sums(member, np.concatenate([arrays[c] for c in names], axis=1))
    return dict(zip(names, np.split(summed, len(names), axis=1), strict=True))


def _level_counts(
    member: np.ndarray, arrays: dict[str, np.ndarray], rows: np.ndarray, unsettled: list[Unsettled]
) -> dict[str, np.ndarray]:
    """A level's counts per group, then per settled row (:func:`settled_rows`), whose error
    rate's counts are their whole group's."""
    if not unsettled:
        return _summed_counts(member, arrays)
    counts = _summed_counts(np.concatenate([member, rows]), arrays)
    for c in ALWAYS_COUNTED:
        if c in counts:
            counts[c][member.shape[0] :] = counts[c][[u.group for u in unsettled]]
    return counts


def _splitting(
    groups: list[tuple[str, ...]], level: Level, of_leaf: list[tuple[str, ...]], calls: np.ndarray
) -> list[tuple[str, ...]]:
    """The groups of a split level with ``SPLIT_MIN_CALLS`` calls whose group without the
    split column has at least two such (a stray span without the environment splits nothing)."""
    at = level.keys.index(level.split)
    held: dict[tuple[str, ...], float] = {}
    for g, n in zip(of_leaf, calls, strict=True):
        held[g] = held.get(g, 0.0) + float(n)
    big = [g for g in groups if held.get(g, 0.0) >= SPLIT_MIN_CALLS]
    values: dict[tuple[str, ...], int] = {}
    for g in big:
        values[g[:at] + g[at + 1 :]] = values.get(g[:at] + g[at + 1 :], 0) + 1
    return [g for g in big if values[g[:at] + g[at + 1 :]] > 1]


def _leaves(df: pd.DataFrame, cols: list[str]) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """The distinct leaf keys in order of first appearance, and each row's leaf (one grouping of
    the rows, not a Python tuple per row: 145k rows at 10M calls, 7 d, cost ~0.1 s that way)."""
    if not len(df):
        return [], np.zeros(0, dtype=int)
    codes = df.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    _, firsts = np.unique(codes, return_index=True)
    order = np.argsort(firsts)  # codes by first appearance
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    leaves = list(df[cols].iloc[firsts[order]].itertuples(index=False, name=None))
    return leaves, rank[codes]


def read_counts(client: Any, p: Any, levels: list[Level]) -> pd.DataFrame:
    """The counts query: per leaf series and bucket, calls, failures and calls past the bars."""
    keys = _leaf_keys(levels)
    source = rollup_counts_sql if rollup_answers(keys, p.step) else counts_sql
    return frame(client, source(keys, p.history.dimension_clause(), p.step), p.params())


@dataclass
class VolumeSide:
    """What the volume needs from the store, and its expectations: all of it from the calls alone.

    ``leaves`` and ``calls`` (per leaf and judged-history bucket) are what it was computed from: the
    counts query's must be the same for it to serve (spans that arrive between the two queries make
    them differ, and then it is computed again from the counts)."""

    leaves: list[tuple[Any, ...]]
    calls: np.ndarray
    members: list[tuple[list[tuple[str, ...]], np.ndarray]]
    first: np.ndarray  # each leaf's first bucket with calls, reaching back before the history
    before: np.ndarray | None  # calls in the weeks before the history (``extra`` buckets)
    extra: int
    volume: Any  # anomalies_scan.LeafVolume

    def serves(self, leaves: list[tuple[Any, ...]], calls: np.ndarray) -> bool:
        return self.leaves == leaves and np.array_equal(self.calls, calls)


def _expected_volume(
    client: Any, p: Any, levels: list[Level], metrics: list[str], leaves: list[tuple[Any, ...]], calls: np.ndarray
) -> VolumeSide:
    """The levels' memberships and the leaves' expected calls (``calls``: per leaf and bucket)."""
    keys = _leaf_keys(levels)
    cols = [f"g_{k}" for k in keys] or ["_all"]
    buckets = p.buckets
    leaf_index = {leaf: i for i, leaf in enumerate(leaves)}
    has_calls = calls > 0
    leaf_first = np.where(has_calls.any(axis=1), has_calls.argmax(axis=1), buckets)
    before, extra = _volume_history(client, p, keys, cols, leaf_index) if "calls" in metrics else (None, 0)
    members = _members(levels, keys, leaves, calls.sum(axis=1))
    # coarser groupings whose shape a young leaf can borrow (the whole app last)
    parents = [m for lv, (_, m) in zip(levels, members, strict=True) if not lv.split and 1 < m.shape[0] < len(leaves)]
    if "service" in keys and all(lv.keys != ("service",) for lv in levels):
        # its service's, also when services are not judged (``--by service,model``): `auto` lends it, and
        # the app's shape (another service's business hours) can read a young leaf's drop as its evening
        _, by_service = _members([Level(("service",))], keys, leaves, calls.sum(axis=1))[0]
        if 1 < by_service.shape[0] < len(leaves):
            parents.append(by_service)
    parents.append(np.ones((1, len(leaves))))
    if before is not None:
        long_calls = np.concatenate([before, calls], axis=1)
        seen = long_calls > 0
        long_first = np.where(seen.any(axis=1), seen.argmax(axis=1), long_calls.shape[1])
        start_epoch = int(p.history.start.timestamp()) - extra * p.step
        volume = leaf_volume(long_calls, long_first, p.step, start_epoch, parents, keep=buckets)
        leaf_first = np.minimum(leaf_first, long_first - extra).clip(0)
    else:
        volume = leaf_volume(calls, leaf_first, p.step, int(p.history.start.timestamp()), parents)
    return VolumeSide(leaves, calls, members, leaf_first, before, extra, volume)


def early_volume(client: Any, p: Any, levels: list[Level], metrics: list[str]) -> VolumeSide:
    """:class:`VolumeSide` from a query of the calls alone, before the counts are in: the store
    computes the counts (thresholds, calls past them) while this process computes the volume's
    expectations, the larger part of its work on a week (``prepare(..., early=)``)."""
    keys = _leaf_keys(levels)
    cols = [f"g_{k}" for k in keys] or ["_all"]
    sql = calls_sql(keys, p.history.dimension_clause(), p.step, rollup_answers(keys, p.step))
    df = frame(client, sql, p.params())
    return _expected_volume(client, p, levels, metrics, *_calls_array(df, cols, p))


def _calls_array(df: pd.DataFrame, cols: list[str], p: Any) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    leaves, rows = _leaves(df, cols)
    calls = np.zeros((len(leaves), p.buckets))
    if len(df):
        b = _bucket_of(df, p)
        inside = (b >= 0) & (b < p.buckets)
        calls[rows[inside], b[inside]] = df["calls"].to_numpy(dtype=float)[inside]
    return leaves, calls


def _bucket_of(df: pd.DataFrame, p: Any) -> np.ndarray:
    start = pd.Timestamp(p.history.start)
    return np.asarray(((pd.to_datetime(df["b"], utc=True) - start).dt.total_seconds() // p.step).astype(int).to_numpy())


def prepare(
    client: Any,
    p: Any,
    levels: list[Level],
    metrics: list[str],
    counts: pd.DataFrame | None = None,
    early: VolumeSide | None = None,
) -> Prepared:
    """Run the counts query (unless given its ``counts``), scan every level, merge and resolve episodes;
    ``early``: the volume's side computed beforehand (:func:`early_volume`), used if the counts agree."""
    keys = _leaf_keys(levels)
    df = read_counts(client, p, levels) if counts is None else counts
    buckets = p.buckets
    cols = [f"g_{k}" for k in keys] or ["_all"]
    leaves, rows = _leaves(df, cols)
    arrays = {c: np.zeros((len(leaves), buckets)) for c in COUNTS}
    if len(df):
        b = _bucket_of(df, p)
        inside = (b >= 0) & (b < buckets)
        for c in COUNTS:
            arrays[c][rows[inside], b[inside]] = df[c].to_numpy(dtype=float)[inside]
    has_calls = arrays["calls"] > 0
    judged = np.arange(buckets) >= p.judge_first
    side = early if early is not None and early.serves(leaves, arrays["calls"]) else None
    if side is None:
        side = _expected_volume(client, p, levels, metrics, leaves, arrays["calls"])
    members, volume, leaf_first, before, extra = side.members, side.volume, side.first, side.before, side.extra
    data: dict[str, _LevelData] = {}
    scanned = [(level, groups, member) for level, (groups, member) in zip(levels, members, strict=True)]
    scanned = [(level, groups, member) for level, groups, member in scanned if groups or not level.split]
    # rates: each group also without the series that joined or left it lately (judged so meanwhile)
    leaf_last = np.where(has_calls.any(axis=1), buckets - 1 - has_calls[:, ::-1].argmax(axis=1), -1)
    settled = [settled_rows(m, leaf_first, leaf_last, buckets, p.judge_first, p.step) for _, _, m in scanned]
    counts = [_level_counts(member, arrays, *rows) for (_, _, member), rows in zip(scanned, settled, strict=True)]
    # every rate row's leaves (a group's settled row: its leaves without the newcomers and leavers)
    rows_of = [np.concatenate([member, rows[0]]) for (_, _, member), rows in zip(scanned, settled, strict=True)]
    members_of = [member for _, _, member in scanned]
    scans = scan_levels(counts, judged, p.step, metrics, volume, members_of, arrays, rows_of)
    scans = [fold(s, rows[1], len(g)) for s, (_, g, _), rows in zip(scans, scanned, settled, strict=True)]
    for (level, groups, member), s in zip(scanned, scans, strict=True):
        first = np.array([leaf_first[member[g] > 0].min() for g in range(len(groups))], dtype=int)
        leaves_of = [frozenset(np.flatnonzero(member[g]).tolist()) for g in range(len(groups))]
        data[level.name] = _LevelData(level, groups, first, s, merge(s, level.name, leaves_of, p.judge_first))
    episodes = [e for d in data.values() for e in d.episodes]
    twins = _provider_twins(leaves, keys) if PROVIDER in keys else []
    if any(twins):  # a series served by several providers: each leaf's calls beyond expectation, once
        beyond = volume.x[1] - (volume.mu[1][0] + volume.mu_low[1][0]) / 2
        episodes = [e for e in episodes if not shifted(e, beyond, twins)]
    if before is not None and "service" in keys:
        services = _members([Level(("service",))], keys, leaves, arrays["calls"].sum(axis=1))[0][1]
        start_epoch = int(p.history.start.timestamp()) - extra * p.step
        service_calls = group_sums(services, np.concatenate([before, arrays["calls"]], axis=1))
        episodes = [e for e in episodes if not lull(e, episodes, service_calls, services, extra, p.step, start_epoch)]
    if len(levels) > 1:
        main = main_level(levels)
        series_of = members[levels.index(main)][1].argmax(axis=0).tolist()
        episodes = resolve(episodes, [lv.name for lv in levels], series_of, main.name)
    return Prepared(buckets, data, episodes)


def _provider_twins(leaves: list[tuple[Any, ...]], keys: tuple[str, ...]) -> list[list[int]]:
    """Per leaf: the leaves of the same series (every key but the provider) on other providers."""
    at = keys.index(PROVIDER)
    by_rest: dict[tuple[Any, ...], list[int]] = {}
    for i, leaf in enumerate(leaves):
        by_rest.setdefault(leaf[:at] + leaf[at + 1 :], []).append(i)
    return [[j for j in by_rest[leaf[:at] + leaf[at + 1 :]] if j != i] for i, leaf in enumerate(leaves)]


def shifted(e: Episode, beyond: np.ndarray, twins: list[list[int]]) -> bool:
    """Whether a volume episode is traffic moving between providers of the same series (a router
    sending more of a model's calls to Azure than to OpenAI for a day), not calls lost or added:
    over its buckets, the same series on other providers changed the other way by at least
    ``SHIFT_SHARE`` of its own change. An outage whose calls are lost, or a surge of new calls,
    moves no twin. ``beyond``: each leaf's calls minus its expected calls per bucket."""
    if e.metric != "calls":
        return False
    own = sorted(e.leaves)
    others = sorted({j for i in own for j in twins[i]} - e.leaves)
    if not others:
        return False
    span = slice(e.first, e.last + 1)
    mine, theirs = float(beyond[own, span].sum()), float(beyond[others, span].sum())
    return mine * theirs < 0 and abs(theirs) >= SHIFT_SHARE * abs(mine)


def lull(
    e: Episode,
    episodes: list[Episode],
    service_calls: np.ndarray,
    services: np.ndarray,
    extra: int,
    step: int,
    start_epoch: int,
) -> bool:
    """Whether a volume fall is the whole app's traffic (a holiday), not an incident: over its
    span and ``LULL_AROUND`` either side, most services other than its own (every service, when
    it spans several) held at most ``LULL_SHARE`` of their usual calls, no error episode
    touches its series, and the fall went no deeper than the app's quiet allows (its calls at
    least ``LULL_DEEPER`` of the share those services held). A day on which the users stay away
    is not an outage; a series that stops while the rest of the app goes on, or a short app-wide
    gap, still is, and so is a series that stops on such a day (v16: a tenant's hour-long silence,
    1 call where 1,094 were due, on a US holiday when the US services held ~40% of their usual: live,
    the span ends at ``now`` and held the holiday only, so `watch` said nothing for 90 minutes).

    ``service_calls``: calls per service and bucket from ``extra`` buckets before the episode
    indexes' origin; ``services``: membership (services x leaves)."""
    if e.metric != "calls" or e.direction != "down":
        return False
    if any(d.metric == "error_rate" and d.overlaps(e) and d.leaves & e.leaves for d in episodes if d is not e):
        return False
    around = int(LULL_AROUND.total_seconds()) // step
    lo, hi = max(0, e.first + extra - around), min(service_calls.shape[1], e.last + 1 + extra + around)
    own = np.array([bool(set(np.flatnonzero(row).tolist()) & e.leaves) for row in services])
    others = ~own if own.sum() <= 1 else np.ones(len(own), bool)
    usual = usual_calls(service_calls, step, start_epoch, lo, hi)
    held = service_calls[:, lo:hi].sum(axis=1)
    counted = others & (usual >= LULL_MIN_USUAL)
    down = counted & (held <= LULL_SHARE * usual)
    if not (counted.sum() >= 2 and down.sum() >= max(2, counted.sum() / 2)):
        return False
    if e.observed is not None and e.expected:
        quiet = float(np.median(held[down] / usual[down]))
        return bool(e.observed >= LULL_DEEPER * quiet * e.expected)
    return True


def warming_up(prep: Prepared, p: Any, level: Level) -> list[dict[str, Any]]:
    """Series of ``level`` that appeared less than two days before the end: their baselines are
    thin (volume borrows a parent's daily profile, rates have under a day of their own calls),
    and their first hours are not judged at all."""
    data = prep.levels[level.name]
    out = []
    for g, key in enumerate(data.groups):
        first = int(data.first[g])
        if first == 0 or first >= prep.buckets:
            continue
        seen = p.history.start + timedelta(seconds=first * p.step)
        if p.judge_end - seen >= PROFILE_AGE:
            continue
        judged_from = seen + FIRST_JUDGED
        out.append(
            {
                "series": dict(zip(level.keys, key, strict=True)),
                "first_seen": seen,
                "judged_from": judged_from,
                "status": "warming_up" if judged_from < p.judge_end else "not_judged_yet",
                "note": (
                    f"first call {seen:%Y-%m-%d %H:%M} UTC: volume follows its service's (or the app's) daily "
                    f"profile until a day of its own exists; rates judged against up to {BASELINE // 3600} h "
                    "of its own calls"
                ),
            }
        )
    return out

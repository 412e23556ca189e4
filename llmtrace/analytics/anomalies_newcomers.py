"""Series that join a group: its rates are judged without them until their baselines exist.

A coarser group (a service, a provider, the whole app) judges its rates against its own
trailing baseline. When a new series joins it (a canary release's model, a new service on the
provider) with a different usual rate, the group's window holds the newcomer's calls while its
baseline does not: the provider's truncation rate "jumps" for as long as the baseline takes to
fill, although no series changed. The newcomer itself is judged on its own calls (and said to
be warming up), so its group is judged without it until a whole baseline and the longest
window fit inside the newcomer's life; from then on with it, baseline and window alike.

The group without its newcomers is one more row in the rate pass (a sum of the other leaves);
:func:`fold` puts its windows and counts back on the group's row for the buckets before that.
Volume needs none of this: a leaf's expected calls are zero until its own baselines exist.
Failures are the exception: a new model failing half its calls from its first minute is an
incident of its service however young it is, so the error rate counts newcomers from the start
(:data:`ALWAYS_COUNTED`); a canary's 3% of outputs cut at max tokens is how it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmtrace.analytics.anomalies_scan import BASELINE, SCALES, Scan

__all__ = ["ALWAYS_COUNTED", "FOUNDED_WITHIN", "Newcomers", "fold", "with_newcomers_failing", "without_newcomers"]

ALWAYS_COUNTED = ("errors", "calls")  # the error rate's counts: a newcomer's failures are its group's
FOUNDED_WITHIN = 3600  # seconds after a group's first call in which its leaves found it (none is a newcomer)


@dataclass(frozen=True)
class Newcomers:
    """Group ``group`` is judged as row ``row`` (its leaves without newcomers) before bucket ``until``."""

    group: int
    row: int
    until: int


def without_newcomers(
    member: np.ndarray, leaf_first: np.ndarray, judge_first: int, step: int
) -> tuple[np.ndarray, list[Newcomers]]:
    """Rows to add to ``member`` (groups x leaves): each group with a leaf that joined it after
    its founding and is still too young at the first judged bucket, without those leaves."""
    grown = max(1, BASELINE // step) + max(SCALES)  # a baseline and the longest window behind a bucket
    founded = FOUNDED_WITHIN // step
    rows: list[np.ndarray] = []
    out: list[Newcomers] = []
    for g in range(member.shape[0]):
        leaves = np.flatnonzero(member[g])
        if leaves.size < 2:
            continue
        firsts = leaf_first[leaves]
        joined = firsts > firsts.min() + founded
        young = joined & (firsts + grown > judge_first)
        if not young.any():
            continue
        row = member[g].copy()
        row[leaves[young]] = 0
        out.append(Newcomers(g, member.shape[0] + len(rows), int((firsts[young] + grown).max())))
        rows.append(row)
    return (np.array(rows) if rows else np.zeros((0, member.shape[1]))), out


def with_newcomers_failing(counts: dict[str, np.ndarray], newcomers: list[Newcomers]) -> dict[str, np.ndarray]:
    """``counts`` of a level's groups and rows without newcomers, with :data:`ALWAYS_COUNTED`
    of those rows taken from their whole groups."""
    for name in ALWAYS_COUNTED:
        if name in counts:
            for n in newcomers:
                counts[name][n.row] = counts[name][n.group]
    return counts


def fold(scan: Scan, newcomers: list[Newcomers], groups: int) -> Scan:
    """``scan`` of a level's groups plus their rows without newcomers, back to the groups: a
    group's rate windows and counts before its ``until`` are those of its row without them."""
    if not newcomers:
        return scan
    of_group = {n.group: n for n in newcomers}
    of_row = {n.row: n for n in newcomers}
    windows = []
    for w in scan.windows:
        if w.metric == "calls":  # volume is judged on the groups themselves
            windows.append(w)
        elif w.group in of_row:
            n = of_row[w.group]
            if w.last < n.until:
                w.group = n.group
                windows.append(w)
        elif w.group not in of_group or w.last >= of_group[w.group].until:
            windows.append(w)
    buckets = {}
    for metric, arrays in scan.buckets.items():
        if metric == "calls":
            k, mu, ones = arrays
            buckets[metric] = (k[:groups], mu, ones)
            continue
        folded = tuple(a[:groups].copy() for a in arrays)
        for n in newcomers:
            for a, whole in zip(folded, arrays, strict=True):
                a[n.group, : n.until] = whole[n.row, : n.until]
        buckets[metric] = folded
    return Scan(windows, buckets)

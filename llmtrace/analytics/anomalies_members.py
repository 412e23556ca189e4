"""Series that join or leave a group: its rates are judged without them while its baseline and
its window do not hold the same series.

A coarser group (a service, a provider, the whole app) judges its rates against its own
trailing baseline. When a new series joins it (a canary release's model, a new service on the
provider) with a different usual rate, the group's window holds the newcomer's calls while its
baseline does not: the provider's truncation rate "jumps" for as long as the baseline takes to
fill, although no series changed. A series that leaves (a model retired after a migration) does
the same the other way: the baseline still holds it, the window no longer does, and the
service's latency "rises" because its fast model is gone. The series themselves are judged on
their own calls (a newcomer is said to be warming up), so the group is judged without a newcomer
until a whole baseline and the longest window fit inside its life, and without a leaver from its
last call on (a baseline later it is out of both anyway).

The group without them is one more row in the rate pass (a sum of the other leaves); :func:`fold`
puts its windows and counts back on the group's row for the buckets where one of them is out.
Volume needs none of this: a leaf's expected calls are zero until its own baselines exist, and
a series that stops is a volume fall of its group.

Failures are the exception: the error rate is always judged on the whole group
(:data:`ALWAYS_COUNTED`). A new model failing half its calls from its first minute is an incident
of its service however young it is, and so is a burst of failures from a series that lives an
hour; a canary's 3% of outputs cut at max tokens is how it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmtrace.analytics.anomalies_scan import BASELINE, SCALES, Scan

__all__ = ["ALWAYS_COUNTED", "FOUNDED_WITHIN", "GONE_AFTER", "Unsettled", "fold", "settled_rows"]

ALWAYS_COUNTED = ("errors", "calls")  # the error rate's counts: every series' failures are its group's
FOUNDED_WITHIN = 3600  # seconds after a group's first call in which its leaves found it (none is a newcomer)
GONE_AFTER = 3600  # seconds of silence up to the last bucket read after which a leaf has left


@dataclass(frozen=True)
class Unsettled:
    """Group ``group`` is judged as row ``row`` (its leaves without newcomers and leavers) in the
    buckets ``out`` marks (where one of them is left out)."""

    group: int
    row: int
    out: np.ndarray


def settled_rows(
    member: np.ndarray, first: np.ndarray, last: np.ndarray, buckets: int, judge_first: int, step: int
) -> tuple[np.ndarray, list[Unsettled]]:
    """Rows to add to ``member`` (groups x leaves; ``first``/``last``: each leaf's first and last
    bucket with calls, ``last`` < 0 for none): each group with a leaf that joined it after its
    founding and is still too young at some judged bucket, or that left it within a baseline of
    the judged buckets, without those leaves."""
    seen = last >= 0
    grown = max(1, BASELINE // step) + max(SCALES)  # a baseline and the longest window behind a bucket
    founded, gone = FOUNDED_WITHIN // step, GONE_AFTER // step
    ends = np.arange(buckets)
    rows: list[np.ndarray] = []
    out: list[Unsettled] = []
    for g in range(member.shape[0]):
        leaves = np.flatnonzero(member[g] * seen)
        if leaves.size < 2:
            continue
        firsts, lasts = first[leaves], last[leaves]
        joined = (firsts > firsts.min() + founded) & (firsts + grown > judge_first)
        left = (lasts < buckets - 1 - gone) & (lasts + grown > judge_first)
        if not (joined | left).any():
            continue
        mask = np.zeros(buckets, bool)
        for j in np.flatnonzero(joined):
            mask |= ends < firsts[j] + grown
        for j in np.flatnonzero(left):
            mask |= ends > lasts[j]
        row = member[g].copy()
        row[leaves[joined | left]] = 0
        out.append(Unsettled(g, member.shape[0] + len(rows), mask))
        rows.append(row)
    if not rows:
        return np.zeros((0, member.shape[1])), []
    return np.array(rows), out


def fold(scan: Scan, unsettled: list[Unsettled], groups: int) -> Scan:
    """``scan`` of a level's groups plus their settled rows, back to the groups: where a group's
    ``out`` marks a bucket, its rate windows ending there and its counts are its settled row's."""
    if not unsettled:
        return scan
    of_group = {u.group: u for u in unsettled}
    of_row = {u.row: u for u in unsettled}
    windows = []
    for w in scan.windows:
        if w.metric == "calls":  # volume is judged on the groups themselves
            windows.append(w)
        elif w.group in of_row:
            u = of_row[w.group]
            if u.out[w.last]:
                w.group = u.group
                windows.append(w)
        elif w.group not in of_group or not of_group[w.group].out[w.last]:
            windows.append(w)
    buckets = {}
    for metric, arrays in scan.buckets.items():
        if metric == "calls":
            k, mu, ones = arrays
            buckets[metric] = (k[:groups], mu, ones)
            continue
        folded = tuple(a[:groups].copy() for a in arrays)
        for u in unsettled:
            for a, whole in zip(folded, arrays, strict=True):
                a[u.group, u.out] = whole[u.row, u.out]
        buckets[metric] = folded
    return Scan(windows, buckets)

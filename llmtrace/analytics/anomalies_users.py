"""Runaway users: one user id whose calls jump far above its own record and swamp its series.

A loop in one customer's integration adds calls to a series, but the series' own volume can be
too noisy to show it (tenant syncs, sessions: a x16 loop for 19 minutes scored 3.7 against 5 on
v7). The user's calls against that user's own history are a far sharper test, so each series
(the detector's main level, e.g. service x model) is read per user in two steps, with no rollup
of its own (a new one would add to every span's ingest; these reads cost ~0.1 s of server CPU at
1M calls):

1. ``llm_users_1h`` (022): the (series, user, hour) of the judged window where a user made at
   least ``MIN_EXTRA`` calls and at least ``SHARE`` of the series' calls (candidates), then the
   hourly calls of only those (series, user) pairs back to the history's start: the user's
   **record**, its busiest hour on its second-busiest day from 7 days to 2 hours before, over the
   service's models (a sync or batch user heavy every day has its run in its record, an earlier
   one-off burst does not; a migration moves users between models, not out of their record); a
   user with calls on fewer than two days is new, on a series with two days of history (younger, it is not judged).
2. ``llm_calls`` of the candidates' hours (kept where the hour beat the record by ``MIN_EXTRA``)
   and one hour either side only: per 5 minutes, the user's calls, its sessions (traces where a
   call has none) and the rest of the series' calls. A window of 10 minutes to 3 hours is a
   runaway when the user's calls in it are at least ``RATIO`` times its record (scaled to the
   window, never below an hour's), with at least ``MIN_EXTRA`` sessions above it and a Poisson tail
   of at least ``SCORE`` counted in sessions (one person's 16-turn chat at night is one
   conversation; a loop that reuses one session is not seen), and its calls above its record's
   rate are at least ``IMPACT`` times the rest of the series' calls in the window. A new user has
   no record to jump from, so its impact is the evidence: its share must be significantly above
   ``NEW_IMPACT`` x the rest (``IMPACT_SCORE``, a Chernoff bound): one new customer adding 30 % of
   a series for an hour is onboarding, not a loop.

The flagged windows of a (series, user) merge into one finding per run of overlapping windows:
an :class:`~llmtrace.analytics.anomalies.Anomaly` ``calls`` episode, up, on the series, naming
the user (``Anomaly.user``); where the series' own volume episode covers it already, that episode
names the user instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from llmtrace.analytics.anomalies_sql import ROLLUP_KEYS
from llmtrace.analytics.groups import COLUMNS
from llmtrace.analytics.tails import chernoff_log10, poisson_score

SHARE = 0.05  # below IMPACT x 10 of 60 minutes (0.077): a 10-minute run at the bar still makes it
MIN_EXTRA = 10
SCORE = 5.0
RATIO = 3.0
IMPACT_SCORE = 3.0
IMPACT = 0.5
NEW_IMPACT = 1.0
# A user is new (no record) only on a series with this much history before the record's end: on a younger
# one everybody is new (a nightly sync's first runs were runaways). Known users stay judged there: holding
# them back too cost v7 3 of 18 runaway loops on young series, with no false episode less.
NEW_AFTER_DAYS = 2
RECORD_DAYS = 7
RECORD_GAP_HOURS = 2
STEP = 300
MIN_BUCKETS = 2  # 10 minutes
MAX_BUCKETS = 36  # 3 hours
EXAMPLES = 3
MOVES = ("model", "provider", "release")
_TIME = "DateTime64(6, 'UTC')"
HOUR, DAY = 3600, 86400


@dataclass
class Runaway:
    """One user's runaway run on one series."""

    series: tuple[str, ...]
    user: str
    start: datetime
    end: datetime
    calls: int  # the user's calls in [start, end)
    rest: int  # the other calls of the series there
    record: float  # the user's expected calls there: its record hour, scaled to the window
    score: float
    detected: datetime | None = None  # end of the earliest flagged window
    trace_ids: list[str] = field(default_factory=list)  # the user's last call of its busiest 5 minutes


def answers(by: Sequence[str]) -> bool:
    """Whether ``llm_users_1h`` holds these series (its keys are the 5-minute rollup's)."""
    return set(by) <= ROLLUP_KEYS


def _g(by: Sequence[str]) -> str:
    return ", ".join(f"toString({COLUMNS[b]}) AS g_{b}" for b in by) or "'' AS _all"


def _names(by: Sequence[str]) -> list[str]:
    return [f"g_{b}" for b in by] or ["_all"]


def candidates_sql(by: Sequence[str], dims: str) -> str:
    """(series, user, hour) of the judged window with >= MIN_EXTRA calls and >= SHARE of the series' hour."""
    names = ", ".join(_names(by))
    return f"""
        SELECT {names}, UserId, toUInt32(Bucket), calls FROM (
            SELECT {_g(by)}, UserId, Bucket, sum(Calls) AS calls,
                   sum(sum(Calls)) OVER (PARTITION BY {names}, Bucket) AS total
            FROM llm_users_1h
            PREWHERE Bucket >= toStartOfHour({{judge_start:{_TIME}}}) AND Bucket < {{judge_end:{_TIME}}}{dims}
            GROUP BY {names}, UserId, Bucket)
        WHERE UserId != '' AND calls >= {MIN_EXTRA} AND calls >= {SHARE} * total"""


def record_keys(by: Sequence[str]) -> list[str]:
    """The series' columns a user's record is kept on: not the model, provider or release, which a
    migration or a rollout moves a user between (its record on the new model would start at 0)."""
    return [b for b in by if b not in MOVES]


def history_sql(by: Sequence[str], dims: str) -> str:
    """Hourly calls of the candidate users (``{users}``) from the history's start, per ``record_keys``
    (pairs filtered in Python)."""
    keys = record_keys(by)
    names = ", ".join(_names(keys))
    return f"""
        SELECT {_g(keys)}, UserId, toUInt32(Bucket) AS b, sum(Calls) AS calls FROM llm_users_1h
        PREWHERE Bucket >= toStartOfHour({{hist_start:{_TIME}}}) AND Bucket < {{judge_end:{_TIME}}}{dims}
            AND UserId IN {{users:Array(String)}}
        GROUP BY {names}, UserId, b"""


def series_first_sql(by: Sequence[str], dims: str) -> str:
    """The first hour with calls of each series (per ``record_keys``) from the history's start."""
    keys = record_keys(by)
    return f"""
        SELECT {_g(keys)}, toUInt32(min(Bucket)) FROM llm_users_1h
        PREWHERE Bucket >= toStartOfHour({{hist_start:{_TIME}}}) AND Bucket < {{judge_end:{_TIME}}}{dims}
        GROUP BY {", ".join(_names(keys))}"""


def buckets_sql(by: Sequence[str], dims: str) -> str:
    """Per series and 5 minutes of the ``{hours}`` given (series' service, hour): calls of each
    candidate user (``{users}``; '' for everyone else)."""
    service = "ServiceName, " if "service" in by else ""
    hours = "Array(Tuple(String, DateTime('UTC')))" if service else "Array(DateTime('UTC'))"
    key = f"({service}toStartOfHour(Timestamp))" if service else "toStartOfHour(Timestamp)"
    names = ", ".join(_names(by))
    return f"""
        SELECT {_g(by)}, if(UserId IN {{users:Array(String)}}, UserId, '') AS user,
               toUInt32(toStartOfInterval(Timestamp, toIntervalSecond({STEP}))) AS b, count() AS calls,
               uniqExactIf(if(SessionId != '', SessionId, TraceId), user != '') AS clusters,
               argMaxIf(TraceId, Timestamp, user != '') AS trace
        FROM llm_calls
        PREWHERE Timestamp >= {{lo:{_TIME}}} AND Timestamp < {{hi:{_TIME}}} AND {key} IN {{hours:{hours}}}{dims}
        GROUP BY {names}, user, b"""


def find(client: Any, by: Sequence[str], dims: str, params: dict[str, Any]) -> list[Runaway]:
    """The runaway users of the judged window ``params`` (``judge_start``, ``judge_end``, ``hist_start``)."""
    pairs: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)  # (series..., user) -> (hour, calls)
    for *key, hour, n in client.query(candidates_sql(by, dims), parameters=params).result_rows:
        pairs[tuple(key)].append((int(hour), int(n)))
    if not pairs:
        return []
    users = sorted({k[-1] for k in pairs})
    days: dict[tuple[Any, ...], dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for *key, hour, n in client.query(history_sql(by, dims), parameters={**params, "users": users}).result_rows:
        days[tuple(key)][int(hour) // DAY][int(hour)] = int(n)  # per record keys and user: day -> hour -> calls
    kept_at = [i for i, b in enumerate(by) if b not in MOVES]
    hist_start = _epoch(params["hist_start"]) // HOUR * HOUR
    first_hour = {tuple(k): int(f) for *k, f in client.query(series_first_sql(by, dims), parameters=params).result_rows}
    kept: dict[tuple[Any, ...], list[int]] = {}
    records: dict[tuple[Any, ...], dict[int, tuple[float, bool]]] = {}
    for key, hours in pairs.items():
        mine = days[(*(key[i] for i in kept_at), key[-1])]
        peaks = {d: max(per.values()) for d, per in mine.items()}
        born = first_hour.get(tuple(key[i] for i in kept_at), 0)
        for h, n in hours:
            rec, new = record(mine, peaks, h, hist_start)
            if new and born > h - RECORD_GAP_HOURS * HOUR - NEW_AFTER_DAYS * DAY:
                continue  # the series is too young for anyone to have a record: a nightly sync's first runs
            if n >= rec + MIN_EXTRA:
                kept.setdefault(key, []).append(h)
                records.setdefault(key, {})[h] = (rec, new)
    if not kept:
        return []
    series_hours = {(k[by.index("service")] if "service" in by else "", h + d * HOUR)
                    for k, hs in kept.items() for h in hs for d in (-1, 0, 1)}  # fmt: skip
    lo, hi = min(h for _, h in series_hours), max(h for _, h in series_hours) + HOUR
    bound = {
        **params,
        "users": sorted({k[-1] for k in kept}),
        "hours": sorted(series_hours) if "service" in by else sorted({h for _, h in series_hours}),
        "lo": _sql(max(lo, _epoch(params["judge_start"]) - HOUR)),
        "hi": _sql(min(hi, _epoch(params["judge_end"]))),
    }
    bound["hours"] = [(s, _sql(h)) for s, h in bound["hours"]] if "service" in by else [_sql(h) for h in bound["hours"]]
    counts: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    clusters: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    traces: dict[tuple[Any, ...], dict[int, str]] = defaultdict(dict)  # the user's last call per 5 minutes
    for *series, user, b, n, k, trace in client.query(buckets_sql(by, dims), parameters=bound).result_rows:
        key, b = (*series, user), int(b) // STEP
        counts[key][b] += int(n)
        clusters[key][b] += int(k)
        if user:
            traces[key][b] = str(trace)
    found: list[Runaway] = []
    judge_start, judge_end = _epoch(params["judge_start"]), _epoch(params["judge_end"])
    totals: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (*s, _user), per in counts.items():
        for b, n in per.items():
            totals[tuple(s)][b] += n
    for key, hours in kept.items():
        series = key[:-1]
        total = totals[series]
        mine = counts.get(key, {})
        for h in sorted(hours):
            rec, new = records[key][h]
            first = max(h - HOUR, judge_start) // STEP
            last = min(h + 2 * HOUR, judge_end) // STEP
            found += _windows(series, key[-1], mine, clusters.get(key, {}), total, first, last, rec, new)
    runs = _merge(found)
    for run in runs:  # the edges: the window's first and last 5 minutes above the user's usual share of its record
        mine = counts.get((*run.series, run.user), {})
        usual = max(run.record / (HOUR / STEP), 1.0)
        busy = [b for b in range(_epoch(run.start) // STEP, _epoch(run.end) // STEP) if mine.get(b, 0) > usual]
        if busy:
            run.start, run.end = _dt(busy[0] * STEP), _dt((busy[-1] + 1) * STEP)
            run.calls = sum(mine.get(b, 0) for b in range(busy[0], busy[-1] + 1))
            run.rest = sum(totals[run.series].get(b, 0) for b in range(busy[0], busy[-1] + 1)) - run.calls
        kept_traces = traces.get((*run.series, run.user), {})
        ranked = sorted((b for b in busy if b in kept_traces), key=lambda b: (-mine.get(b, 0), b))
        run.trace_ids = [kept_traces[b] for b in ranked[:EXAMPLES]]
    return runs


def record(days: dict[int, dict[int, int]], peaks: dict[int, int], h: int, hist_start: int) -> tuple[float, bool]:
    """The user's record before ``h`` (from RECORD_DAYS days to RECORD_GAP_HOURS hours before it):
    its busiest hour on its second-busiest day, so what it does on two days is its norm (a nightly
    sync) and one earlier burst (an earlier loop) is not; and whether it is new (calls on fewer than
    two days there: nothing to hold it to, so its impact on the series must carry the evidence)."""
    lo, hi = max(h - RECORD_DAYS * DAY, hist_start), h - RECORD_GAP_HOURS * HOUR
    seen: list[int] = []
    for d in range(lo // DAY, (hi - 1) // DAY + 1):
        if d not in days:
            continue
        if lo <= d * DAY and (d + 1) * DAY <= hi:  # a whole day in the record's span: its peak
            seen.append(peaks[d])
        else:
            seen.append(max((n for t, n in days[d].items() if lo <= t < hi), default=0))
    busiest = sorted((n for n in seen if n > 0), reverse=True)
    return float(busiest[1] if len(busiest) > 1 else 0), len(busiest) < 2


def _windows(
    series: tuple[str, ...], user: str, mine: dict[int, int], sessions: dict[int, int], total: dict[int, int],
    first: int, last: int, rec: float, new: bool,
) -> list[Runaway]:  # fmt: skip
    """The windows where the user runs away. The evidence (MIN_EXTRA, SCORE) is counted in the
    user's sessions (traces where a call has none) per 5 minutes, its calls over its calls per
    such cluster: one person's 15-turn chat at night is one conversation, not 15 requests.

    Every window of the span at once (numpy: sums over (start, end) pairs from cumulative sums),
    starting and ending on 5 minutes with the user's calls (no test is worse for it); the exact
    tails only for the windows that pass the rest."""
    impact = NEW_IMPACT if new else IMPACT
    span = np.arange(first, last)
    m = np.array([mine.get(b, 0) for b in span], dtype=float)
    if m.sum() < RATIO * max(rec, 1.0):
        return []
    ks = np.array([sessions.get(b, 0) for b in span], dtype=float)
    rest = np.array([total.get(b, 0) for b in span], dtype=float) - m
    cu, ck, cr = (np.concatenate([[0.0], np.cumsum(x)]) for x in (m, ks, rest))
    a, b = np.triu_indices(len(span))  # windows [a, b] (inclusive)
    n = b - a + 1
    ok = (n >= MIN_BUCKETS) & (n <= MAX_BUCKETS) & (m[a] > 0) & (m[b] > 0)
    a, b, n = a[ok], b[ok], n[ok]
    u, k, r = cu[b + 1] - cu[a], ck[b + 1] - ck[a], cr[b + 1] - cr[a]
    expected = max(rec, 1.0) * np.maximum(1.0, n * STEP / HOUR)
    # the impact: the calls above the user's record rate (not floored at an hour) against the rest's
    ok = (u >= RATIO * expected) & (u - rec * n * STEP / HOUR >= impact * r) & (k > 0)
    per = np.where(k > 0, u / np.maximum(k, 1), 1.0)  # calls per session
    ok &= k - expected / per >= MIN_EXTRA
    out: list[Runaway] = []
    for i in np.flatnonzero(ok):
        extra = float(u[i] - expected[i])
        if new and share_score(extra, extra + float(r[i]), impact / (1 + impact)) < IMPACT_SCORE:
            continue
        score = poisson_score(int(k[i]), float(expected[i] / per[i]))
        if score >= SCORE:
            lo, hi = int(span[a[i]]), int(span[b[i]]) + 1
            out.append(Runaway(series, user, _dt(lo * STEP), _dt(hi * STEP), int(u[i]), int(r[i]),
                               float(expected[i]), score, _dt(hi * STEP)))  # fmt: skip
    return out


def share_score(k: float, n: float, share: float) -> float:
    """-log10 of the Chernoff bound on P(Binomial(n, share) >= k), upper side only (a lower bound of
    the exact score)."""
    if n <= 0 or k <= n * share:
        return 0.0
    return float(chernoff_log10(np.asarray(k), np.asarray(n), np.asarray(share)))


def _merge(found: list[Runaway]) -> list[Runaway]:
    """Overlapping windows of one (series, user) as one run, reported as its strongest window (the
    loop itself: a wider window adds the user's usual calls and little score) and the earliest
    flagged window's end."""
    runs: list[tuple[datetime, Runaway]] = []  # (run's end so far, best window)
    for w in sorted(found, key=lambda x: (x.series, x.user, x.start, x.end)):
        if runs and (runs[-1][1].series, runs[-1][1].user) == (w.series, w.user) and w.start <= runs[-1][0]:
            end, best = runs[-1]
            detected = min(d for d in (best.detected, w.detected) if d is not None)
            if w.score > best.score:
                best = w
            best.detected = detected
            runs[-1] = (max(end, w.end), best)
        else:
            runs.append((w.end, w))
    return [best for _, best in runs]


def _epoch(value: Any) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    import pandas as pd

    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.timestamp())


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _sql(epoch: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(seconds=epoch)).strftime("%Y-%m-%d %H:%M:%S")

"""The SQL behind :mod:`llmtrace.analytics.anomalies`: robust baselines in ClickHouse windows.

Per series (a group of ``by`` columns) and time bucket, from the rollup-aware source of
:class:`~llmtrace.analytics.filters.Filter` over the window plus its history (and, for the
truncation rate, which the rollups do not keep, from ``llm_calls``):

1. metrics per bucket on a complete grid from the series' first call on (a bucket without
   calls has 0 calls, not a gap; a series that just appeared has no baseline yet);
2. the *expected* value: the median of the same time of day (and the buckets either side)
   on up to 7 previous days when at least 2 such days exist (daily seasonality), else the
   median of the previous 24 buckets; for rates, the pooled rate of the previous week;
3. a residual ``e`` on a common scale whatever the volume: the signed deviance residual for
   call counts (Poisson) and rates (binomial), log-ratio times sqrt(calls) for percentiles
   and sums, so that one scale fits busy and quiet hours alike;
4. ``z`` = (e - c) / s, c the median of the residuals of the previous week of buckets whose
   expected value came from the same kind of baseline, s their semi-interquartile range on
   the side of e divided by 0.6745 (skewed residuals get a wider scale on their long side),
   floored;
5. a point is flagged when its z passes ``z_point`` in the metric's direction, or when the
   last two to six buckets together pass ``z_run`` (counts and rates pooled, percentiles
   and sums by Stouffer's sum of z / sqrt(n)) and every bucket of the run, this one
   included, leans the same way with z >= ``MIN_LEAN`` (so a past spike cannot carry it); and
   only if the change is large enough to matter (``MIN_RELATIVE``, ``MIN_RATE_CHANGE``);
6. flagged points of one series and metric at most one bucket apart form an *episode*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmtrace.analytics.groups import COLUMNS

LEVELS = "0.5, 0.9, 0.95, 0.99"  # the rollups' t-digest levels; [3] is p95
MIN_CALLS = 10  # per bucket, for a percentile (fewer calls have no meaningful p95)
SEASON_DAYS = 7
MIN_SEASON = 2  # previous days at the same time of day needed for the seasonal baseline
TRAILING = 24  # buckets in the non-seasonal baseline
MIN_TRAILING = 6
MIN_SCALE_POINTS = 48  # past residuals needed to judge a point at all
MIN_SEASONAL_SCALE_POINTS = 24  # seasonal residuals needed to scale a seasonal point by them alone
RUN = 6  # at most this many recent buckets are pooled by the run test
# Smallest changes worth an alarm, whatever the z (so huge volumes do not flag trivia):
MIN_RELATIVE = 0.05  # counts, percentiles, per-call means: 5%
MIN_RATE_CHANGE = 0.02  # rates: 2 percentage points, and at least MIN_EVENTS events
MIN_EVENTS = 3
MIN_LEAN = 1.0  # every bucket of a run must have at least this z in the run's direction


@dataclass(frozen=True)
class Metric:
    """How one per-bucket metric is computed and judged.

    ``value`` is SQL over the bucket's aggregates. ``kind`` picks the residual: ``count``
    (Poisson deviance), ``rate`` (binomial deviance of ``k`` events in ``n`` calls) or
    ``ratio`` (log(v / expected) x sqrt(n), n the calls behind the value). ``floor`` bounds the scale from below (1 for
    counts and rates: they cannot be less noisy than Poisson).
    """

    value: str
    direction: str  # up | down | both
    kind: str
    floor: float
    k: str = "0"
    n: str = "calls"


METRICS: dict[str, Metric] = {
    "calls": Metric("toFloat64(calls)", "both", "count", 1.0),
    "error_rate": Metric("if(calls > 0, errors / calls, NULL)", "up", "rate", 1.0, k="errors"),
    "latency_p95_ms": Metric(f"if(calls >= {MIN_CALLS}, lat, NULL)", "up", "ratio", 0.3),
    "ttft_p95_ms": Metric(f"if(streams >= {MIN_CALLS} AND ttft > 0, ttft, NULL)", "up", "ratio", 0.3, n="streams"),
    # per call, not totals: volume is judged once (calls), and a price or prompt change shows
    # whatever the traffic (a total is calls x per call)
    "cost_per_call_usd": Metric("if(priced > 0 AND cost > 0, cost / priced, NULL)", "up", "ratio", 0.3, n="priced"),
    "tokens_per_call": Metric(
        "if(calls > errors AND tokens > 0, tokens / (calls - errors), NULL)", "both", "ratio", 0.3, n="calls - errors"
    ),
    "truncation_rate": Metric("if(ok > 0, truncated / ok, NULL)", "up", "rate", 1.0, k="truncated", n="ok"),
}
# What the rollups do not keep, read from llm_calls per bucket: successful calls, truncated
# ones, and calls with a time to first token (the sample size behind the TTFT percentile).
RAW_AGGREGATES = (
    "countIf(IsError = 0) AS ok, countIf(IsError = 0 AND FinishReason IN ('length', 'max_tokens')) AS truncated,"
    " countIf(TtftUs IS NOT NULL) AS streams"
)
RAW_METRICS = frozenset({"truncation_rate", "ttft_p95_ms"})


def series_columns(by: Sequence[str]) -> str:
    return ", ".join(f"g_{b}" for b in by) or "_all"


def _select_groups(by: Sequence[str]) -> str:
    return ", ".join(f"toString({COLUMNS[b]}) AS g_{b}" for b in by) or "0 AS _all"


def _raw(by: Sequence[str], dims: str, step: int) -> str:
    bucket = f"toDateTime(toStartOfInterval(Timestamp, toIntervalSecond({step})), 'UTC')"
    window = "Timestamp >= {hist_start:DateTime64(6, 'UTC')} AND Timestamp < {judge_end:DateTime64(6, 'UTC')}"
    return f"""
            SELECT {bucket} AS b, {_select_groups(by)}, {RAW_AGGREGATES}
            FROM llm_calls
            WHERE {window}{dims}
            GROUP BY b, {series_columns(by)}"""


def _metric_tuple(name: str) -> str:
    m = METRICS[name]
    return (
        f"('{name}', CAST({m.value}, 'Nullable(Float64)'), toFloat64({m.k}), toFloat64({m.n}),"
        f" '{m.kind}', '{m.direction}', {m.floor})"
    )


def poisson_deviance(v: str, mu: str) -> str:
    """Signed deviance residual of ``v`` events where ``mu`` were expected (Poisson): close to a
    standard normal even for small counts, unlike (v - mu) / sqrt(mu)."""
    m = f"greatest({mu}, 0.5)"
    return f"sign({v} - {m}) * sqrt(greatest(2 * (if({v} > 0, {v} * log({v} / {m}), 0) - ({v} - {m})), 0))"


def binomial_deviance(k: str, n: str, p: str) -> str:
    """Signed deviance residual of ``k`` events in ``n`` trials where rate ``p`` was expected."""
    q = f"least(greatest({p}, 1e-6), 1 - 1e-6)"
    hits = f"if({k} > 0, {k} * log({k} / ({n} * {q})), 0)"
    misses = f"if({n} - {k} > 0, ({n} - {k}) * log(({n} - {k}) / ({n} * (1 - {q}))), 0)"
    return f"if({n} > 0, sign({k} - {n} * {q}) * sqrt(greatest(2 * ({hits} + {misses}), 0)), 0)"


_RESIDUAL = f"""multiIf(
                v IS NULL OR expected IS NULL, NULL,
                kind = 'count', {poisson_deviance("v", "expected")},
                kind = 'rate', {binomial_deviance("k", "n", "expected")},
                v > 0 AND expected > 0, log(v / expected) * sqrt(greatest(n, 1)),
                NULL)"""


# One tuple per bucket, lagged as a whole so that a single window pass serves every run length:
# (present, v, expected, k, n, z, has z, log ratio, has log ratio, has expected, z or +inf, z or -inf)
_RUN_TUPLE = (
    "(toUInt8(1), ifNull(v, 0), ifNull(expected, 0), k, n, ifNull(z, 0), toUInt8(z IS NOT NULL), ifNull(lr, 0),"
    " toUInt8(lr IS NOT NULL), toUInt8(expected IS NOT NULL), ifNull(z, 1e9), ifNull(z, -1e9))"
)


def _pooled(j: int) -> str:
    """Sums over the last ``j`` buckets (``t0`` is this bucket's tuple, ``t1``... the previous
    ones'), as plain columns: observed, expected, events, calls, sum and count of z, sum and
    count of log ratios, buckets with an expected value, lowest and highest z."""

    def total(field: int) -> str:
        return " + ".join(f"t{i}.{field}" for i in range(j))

    names = ("v", "e", "k", "n", "zs", "zc", "ls", "lc", "xc")
    sums = [f"{total(field)} AS {name}{j}" for field, name in zip(range(2, 11), names, strict=True)]
    low = "least(" + ", ".join(f"t{i}.11" for i in range(j)) + ", 1e9)"
    high = "greatest(" + ", ".join(f"t{i}.12" for i in range(j)) + ", -1e9)"
    return ", ".join([*sums, f"{low} AS lo{j}", f"{high} AS hi{j}"])


def _residual(j: int) -> str:
    """The pooled residual of the last ``j`` buckets (counts and rates), centred like one bucket's."""
    return f"""multiIf(
                kind = 'count', {poisson_deviance(f"v{j}", f"e{j}")},
                kind = 'rate', {binomial_deviance(f"k{j}", f"n{j}", "expected")},
                NULL) - center * sqrt({j}) AS res{j}"""


def _z(j: int) -> str:
    """z of the last ``j`` buckets taken together: pooled counts and rates are scaled like one
    bucket; ratios combine their z values (Stouffer)."""
    return f"""if(xc{j} < {j} OR NOT judged, NULL, if(kind = 'ratio',
                if(zc{j} = 0, NULL, zs{j} / sqrt(zc{j})),
                res{j} / if(res{j} >= 0, sigma_up, sigma_down))) AS z{j}"""


def _judgement(j: int) -> str:
    """s{j} (the direction judged) and ok{j}: the change is large enough to matter and every
    bucket of the run leans the same way (so one past spike does not carry a run)."""
    sign = f"multiIf(direction = 'up', 1, direction = 'down', -1, ifNull(z{j}, 0) >= 0, 1, -1)"
    change = f"""multiIf(
                kind = 'count', s{j} * (v{j} - e{j}) >= greatest({MIN_RELATIVE} * e{j}, {MIN_EVENTS}),
                kind = 'rate',
                    s{j} * (k{j} / greatest(n{j}, 1) - expected) >= {MIN_RATE_CHANGE} AND k{j} >= {MIN_EVENTS},
                lc{j} > 0, s{j} * ls{j} / lc{j} >= log(1 + {MIN_RELATIVE}),
                0)"""
    lean = f"if(s{j} > 0, lo{j} >= {MIN_LEAN}, hi{j} <= -{MIN_LEAN})"
    return f"{sign} AS s{j}, ({change}) AND {lean} AS ok{j}"


def points_sql(source: str, by: Sequence[str], metrics: Sequence[str], step: int, buckets: int, dims: str = "") -> str:
    """Every bucket of every series and metric from {hist_start} on, scored and flagged.

    Parameters: the source's own, plus ``hist_start`` (the first bucket), ``judge_end``,
    ``z_point`` and ``z_run``. ``step``/``buckets`` are ints (window frames need literals);
    ``dims`` is the dimension clause for the raw part.
    """
    g = series_columns(by)
    week = max(MIN_SCALE_POINTS, SEASON_DAYS * 86400 // step)
    per_day = max(1, 86400 // step)
    if RAW_METRICS.intersection(metrics):
        raw, join_raw = f"raw AS ({_raw(by, dims, step)}),", f"LEFT JOIN raw USING ({g}, b)"
    else:
        raw, join_raw = "", ""
    by_series = f"PARTITION BY {g}, metric"
    lags = ", ".join(f"lagInFrame(t0, {i}) OVER lagged AS t{i}" for i in range(1, RUN))
    # the same time of day (and the buckets either side) on up to SEASON_DAYS previous days
    season_frame = f"RANGE BETWEEN {SEASON_DAYS * 86400 + step} PRECEDING AND {86400 - step} PRECEDING"
    near = f"(x.1 - slot + {per_day + 1}) % {per_day} <= 2"
    runs = range(2, RUN + 1)
    flag = "(ifNull(s1 * z1 >= {z_point:Float64}, 0) AND ok1)" + "".join(
        f" OR (ifNull(s{j} * z{j} >= {{z_run:Float64}} AND s{j} * z1 >= 1, 0) AND ok{j})" for j in runs
    )
    sign = (
        "multiIf(ifNull(s1 * z1 >= {z_point:Float64}, 0) AND ok1, s1, "
        + "".join(f"ifNull(s{j} * z{j} >= {{z_run:Float64}}, 0) AND ok{j}, s{j}, " for j in runs)
        + "s1)"
    )
    score = "greatest(ifNull(s1 * z1, 0), " + ", ".join(f"if(ok{j}, ifNull(s{j} * z{j}, 0), 0)" for j in runs) + ")"
    return f"""
        WITH
        agg AS (
            SELECT toDateTime(Bucket, 'UTC') AS b, {_select_groups(by)}, sum(Calls) AS calls, sum(Errors) AS errors,
                   quantilesTDigestMerge({LEVELS})(DurationQ)[3] / 1000 AS lat,
                   quantilesTDigestMerge({LEVELS})(TtftQ)[3] / 1000 AS ttft,
                   sum(CostUsd) AS cost, sum(PricedCalls) AS priced, sum(InputTokens) + sum(OutputTokens) AS tokens
            FROM {source}
            GROUP BY b, {g}
        ),
        grid AS (
            SELECT {g}, toDateTime({{hist_start:DateTime64(6, 'UTC')}}, 'UTC') + toIntervalSecond(number * {step}) AS b
            FROM (SELECT {g}, min(b) AS first_b FROM agg WHERE calls > 0 GROUP BY {g}) AS s
            CROSS JOIN numbers({buckets}) AS n
            WHERE b >= first_b  -- a series starts when its first call arrives: new is not anomalous
        ),
        {raw}
        filled AS (SELECT * FROM grid LEFT JOIN agg USING ({g}, b) {join_raw}),
        long AS (
            SELECT {g}, b, toUnixTimestamp(b) AS ts, calls, m.1 AS metric, m.2 AS v, m.3 AS k, m.4 AS n,
                   m.5 AS kind, m.6 AS direction, m.7 AS floor, intDiv(ts % 86400, {step}) AS slot
            FROM filled ARRAY JOIN [{", ".join(_metric_tuple(m) for m in metrics)}] AS m
        ),
        baseline AS (
            SELECT {g}, b, ts, calls, metric, v, k, n, kind, direction, floor, slot,
                groupArray((slot, v)) OVER ({by_series} ORDER BY ts {season_frame}) AS days_before,
                groupArray(v) OVER ({by_series} ORDER BY ts ROWS BETWEEN {TRAILING} PRECEDING AND 1 PRECEDING)
                    AS trailing,
                sum(k) OVER ({by_series} ORDER BY ts ROWS BETWEEN {week} PRECEDING AND 1 PRECEDING) AS past_k,
                sum(n) OVER ({by_series} ORDER BY ts ROWS BETWEEN {week} PRECEDING AND 1 PRECEDING) AS past_n
            FROM long
        ),
        expected AS (
            SELECT {g}, b, ts, calls, metric, v, k, n, kind, direction, floor,
                arrayMap(x -> x.2, arrayFilter(x -> {near} AND x.2 IS NOT NULL, days_before)) AS seasonal,
                arrayCount(x -> x.1 = slot AND x.2 IS NOT NULL, days_before) AS season_days,
                multiIf(kind = 'rate', 'pooled', season_days >= {MIN_SEASON}, 'seasonal', 'trailing') AS basis,
                multiIf(
                    kind = 'rate', if(past_n >= {MIN_SCALE_POINTS}, past_k / past_n, NULL),
                    basis = 'seasonal', arrayReduce('quantileExactInclusive(0.5)', seasonal),
                    length(trailing) >= {MIN_TRAILING}, arrayReduce('quantileExactInclusive(0.5)', trailing),
                    NULL) AS expected
            FROM baseline
        ),
        residuals AS (
            SELECT {g}, b, ts, calls, metric, v, k, n, kind, direction, floor, basis, expected, {_RESIDUAL} AS e
            FROM expected
        ),
        scaled AS (
            SELECT {g}, b, ts, calls, metric, v, k, n, kind, direction, floor, expected, e,
                center, sigma_up, sigma_down, judged,
                if(v > 0 AND expected > 0, log(v / expected), NULL) AS lr,
                if(e >= center, (e - center) / sigma_up, (e - center) / sigma_down) AS z
            FROM (
                SELECT *,
                    -- quartiles of past residuals; of seasonal ones only for a seasonal point when
                    -- there are enough (trailing medians miss the daily cycle: wider residuals)
                    countIf(e IS NOT NULL AND basis = 'seasonal') OVER past AS n_seasonal,
                    count(e) OVER past AS n_all,
                    quantilesExactIf(0.25, 0.5, 0.75)(e, basis = 'seasonal') OVER past AS q_seasonal,
                    quantilesExact(0.25, 0.5, 0.75)(e) OVER past AS q_all,
                    if(basis = 'seasonal' AND n_seasonal >= {MIN_SEASONAL_SCALE_POINTS}, q_seasonal, q_all) AS q,
                    n_all >= {MIN_SCALE_POINTS} AS judged,
                    -- rates keep the unit scale of their deviance residual: it takes few distinct
                    -- values when events are rare, so quartiles would overstate the spread
                    if(judged AND kind != 'rate', q[2], 0) AS center,
                    -- a scale per side (semi-interquartile): percentile and small-count residuals are skewed
                    if(judged, if(kind = 'rate', 1, greatest((q[3] - q[2]) / 0.6745, floor)), NULL) AS sigma_up,
                    if(judged, if(kind = 'rate', 1, greatest((q[2] - q[1]) / 0.6745, floor)), NULL) AS sigma_down
                FROM residuals
                WINDOW past AS ({by_series} ORDER BY ts ROWS BETWEEN {week} PRECEDING AND 1 PRECEDING)
            )
        ),
        lagged AS (
            SELECT {g}, b, ts, calls, metric, v, k, n, kind, direction, expected, z,
                center, sigma_up, sigma_down, judged, {_RUN_TUPLE} AS t0, {lags}
            FROM scaled
            WINDOW lagged AS ({by_series} ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ),
        pooled AS (
            SELECT {g}, b, calls, metric, v, expected, sigma_up, sigma_down, center, judged, kind, direction, z,
                {", ".join(_pooled(j) for j in range(1, RUN + 1))}
            FROM lagged
        ),
        pooled_residuals AS (
            SELECT *, {", ".join(_residual(j) for j in range(1, RUN + 1))} FROM pooled
        ),
        pooled_z AS (
            SELECT *, {", ".join(_z(j) for j in range(1, RUN + 1))} FROM pooled_residuals
        ),
        runs AS (
            SELECT *, {", ".join(_judgement(j) for j in range(1, RUN + 1))} FROM pooled_z
        )
        SELECT {g}, metric, b, v AS observed, expected, sigma_up AS sigma, z1 AS z, calls,
            {flag} AS flagged,
            {sign} AS sign,
            if(flagged, {score}, 0) AS score
        FROM runs"""


def episodes_sql(points: str, by: Sequence[str], step: int) -> str:
    """Flagged points from {judge_start} to {judge_end} merged into episodes: a series' points
    of one metric at most one bucket apart belong to one episode. Episodes are numbered over
    all points (a flagged point starts one unless one of the two before it was flagged), so
    no window runs on the filtered rows."""
    g = series_columns(by)
    cumulative = f"PARTITION BY {g}, metric ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    return f"""
        WITH
        points AS ({points}),
        marked AS (
            SELECT *, toUInt8(flagged AND NOT (before1 OR before2)) AS starts
            FROM (
                SELECT *, lagInFrame(flagged, 1, 0) OVER w AS before1, lagInFrame(flagged, 2, 0) OVER w AS before2
                FROM points WINDOW w AS ({cumulative})
            )
        ),
        numbered AS (SELECT *, sum(starts) OVER ({cumulative}) AS episode FROM marked)
        SELECT {g}, metric, episode, min(b) AS start, max(b) + toIntervalSecond({step}) AS end,
               count() AS points, argMax(observed, score) AS observed, argMax(expected, score) AS expected,
               max(score) AS max_score, argMax(sign, score) AS sign
        FROM numbered
        WHERE flagged AND b >= {{judge_start:DateTime64(6, 'UTC')}} AND b < {{judge_end:DateTime64(6, 'UTC')}}
        GROUP BY {g}, metric, episode
        ORDER BY max_score DESC"""

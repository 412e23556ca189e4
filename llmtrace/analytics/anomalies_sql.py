"""The SQL behind :mod:`llmtrace.analytics.anomalies`: counts per series and bucket.

Detection judges counts, so ClickHouse does the heavy part: one query over ``llm_calls``
returns, per leaf series (the ``by`` columns) and bucket (5 minutes by default), how many
calls there were, how many failed, were cut at max tokens or came back empty, and how many
successful calls exceeded the series' *usual high quantile* of latency, time to first
token, output tokens and cost (and fell below its usual low quantile of output tokens).

"Usual" is trailing, so an incident does not raise its own bar: for every hour, the median
of the last ``THRESHOLD_HOURS`` hourly p90s (p10 for the low side) of that series from hours
with at least ``MIN_HOUR_CALLS`` successful calls, found within ``THRESHOLD_LOOKBACK`` hours
with calls before it (so a nightly job is held to its own earlier runs); an hour with fewer than
``MIN_THRESHOLD_HOURS`` such hours behind it has no threshold and its calls are not counted
as trials (the series is warming up for that metric). Coarser levels (a service, a
provider, the whole app) are sums of these leaf counts, each call judged against its own
series' bar, so they need no second pass over the calls.

Two sources give these counts. :func:`rollup_counts_sql` reads the 5-minute rollup
``llm_anomaly_5m`` (schema 025), whose per-bucket histograms of latency, TTFT, output tokens and
cost (``BINS_PER_OCTAVE`` log-spaced bins) make the hourly quantiles and the thresholds exact to a
bin: a call in the threshold's own bin counts as half a call past it. It answers every
grouping and filter of the rollup's keys at buckets of whole 5 minutes (the default), at a tenth
of the server CPU. :func:`counts_sql` reads every call from ``llm_calls`` (exact thresholds) for
the rest: 1-4 minute buckets, or grouping by prompt or operation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmtrace.analytics.groups import COLUMNS, GENERATES

__all__ = [
    "COUNTS", "FAR", "METRICS", "VARIANTS", "Metric", "calls_sql", "counts_sql", "rollup_answers", "rollup_counts_sql",
    "series_columns", "volume_sql",
]  # fmt: skip

THRESHOLD_HOURS = 24
# hours (with calls) searched back for them: a nightly job has one hour of 3+ calls a day, so its bar
# came from the 1-2 hours of its trickle that happened to hold 3 calls (its own run 0.29 above it)
THRESHOLD_LOOKBACK = 7 * 24
MIN_THRESHOLD_HOURS = 3
MIN_HOUR_CALLS = 3
# a series' hours before it has MIN_THRESHOLD_HOURS qualifying ones are held to the median of its first
# ones: their calls become its rates' first trials, so a young series' first judged hour is not held to
# a baseline made of that hour's own calls (v14: a chat model 9 h old, slow 4x from its first morning)
FIRST_BARS = True
HIGH, LOW = 0.9, 0.1
TRUNCATED = "lower(FinishReason) IN ('length', 'max_tokens')"
# llm_anomaly_5m (025): its bucket, the groupings its keys answer, its bins (floor(32 * log2 v); 0 in ZERO)
ROLLUP_STEP = 300
ROLLUP_KEYS = frozenset({"service", "environment", "release", "provider", "model"})
BINS_PER_OCTAVE = 32
ZERO_BIN, NO_BIN = -32767, -32768


# A call's time per output token, in µs: its whole duration over the tokens written, for calls of at least
# PER_TOKEN_MIN output tokens (a short answer's time is mostly the prompt's). A sparse series' latency spike
# is a handful of calls whose durations alone spread with their answers' lengths (a reasoning model: 20 s to
# 20 min); per token they are 5-20x their usual pace (a blind judge, v13). Past three times the usual p90, not
# twice: where durations do not follow the answers' lengths (v2's generator), a per-token time is a ratio of
# two independent spreads, and twice its p90 gave 7 false episodes in 10 weeks; three times gave none, and
# kept every v13 spike found at twice. Schema 032 keeps its histogram.
PER_TOKEN_MIN = 20
PER_TOKEN = f"if(OutputTokens >= {PER_TOKEN_MIN} AND DurationUs > 0, DurationUs / OutputTokens, 0)"
# ... and a first token's wait per reasoning token, for calls of at least PER_TOKEN_MIN reasoning tokens: a
# reasoning model thinks before it answers, its first token after 10 s or 2 minutes as its thinking is short
# or long; a slow spell is 5-10x per reasoning token (v13: 6 of 9 TTFT spikes missed on reasoning streams).
TTFT_PER_TOKEN = (
    f"if(ReasoningTokens >= {PER_TOKEN_MIN} AND ifNull(TtftUs, 0) > 0, ifNull(TtftUs, 0) / ReasoningTokens, 0)"
)
PER_TOKEN_FAR = 3

MIN_EXCESS = 3.5  # 4 events where a fraction of one is expected (4 of a sparse series' 4 streams far past its bar)
MIN_RATIO = 1.5  # a window's share at least this many times its expectation
# ... per output token, four times: a slowdown that matters puts most calls past the usual pace, while a
# daily peak's or a first hours' bar's drift puts 15-20% there for hours (1.5x and 2.5x: v15 +5 false
# episodes, v14 +2; 4x: v15 +1, v14 +2, the same 33 incidents found; 6x: 10 fewer on v13)
PACE_RATIO = 4.0
TOKENS_RATIO = 2.0


@dataclass(frozen=True)
class Metric:
    """A metric as a count test: ``k`` events out of ``n`` trials (volume: ``n`` unused).

    ``baseline`` is the event share the trailing baseline starts from before it has seen
    data (a weak prior); ``direction`` is the side that is an incident; ``min_events``: the
    events beyond the expectation a window needs to be flagged at all.
    """

    k: str
    n: str
    direction: str  # up | down | both
    prior: float
    describes: str
    min_events: float = MIN_EXCESS
    min_ratio: float = MIN_RATIO


# Three calls far past the bar are enough: a sparse series (a young job at 0.06 calls/min on a
# Sunday) shows a 40-minute spike as its 3 calls at 8-12x its usual latency, each past twice its
# p90 with a share ~1% (1e-6 for three; the tail test still asks for 1e-7 with its history's share)
FAR_EVENTS = 2.5


def _far(k: str, n: str, describes: str) -> Metric:
    """A count far past the usual bar: ~1% of calls, and three of them are enough."""
    return Metric(k, n, "up", 0.01, describes, FAR_EVENTS)


# Names are kept from the first detector (JSON consumers and watch keys rely on them); for
# latency, TTFT, tokens and cost the statistic is the share of calls above the usual p90.
METRICS: dict[str, Metric] = {
    "calls": Metric("calls", "", "both", 0.0, "calls in the window against its baseline"),
    "error_rate": Metric("errors", "calls", "up", 0.02, "failed calls"),
    "latency_p95_ms": Metric("lat_x", "lat_n", "up", 0.1, "calls slower than the usual p90"),
    "ttft_p95_ms": Metric("ttft_x", "ttft_n", "up", 0.1, "streams with a first token later than the usual p90"),
    "cost_per_call_usd": Metric("cost_x", "cost_n", "up", 0.1, "calls costlier than the usual p90"),
    # answers' lengths: a window at least twice its usual share past the bar (TOKENS_RATIO)
    "tokens_per_call": Metric(
        "tok_x", "tok_n", "up", 0.1, "calls with more output tokens than the usual p90", min_ratio=TOKENS_RATIO
    ),
    "tokens_per_call_low": Metric(
        "tok_lo", "tok_n", "up", 0.1, "calls with fewer output tokens than the usual p10", min_ratio=TOKENS_RATIO
    ),
    "truncation_rate": Metric("truncated", "ok", "up", 0.02, "outputs cut at max tokens"),
    "empty_output_rate": Metric("empty", "ok", "up", 0.02, "successful calls with no output tokens"),
    # far past the bar (twice the usual p90): rare whatever the latency level's slow wobble, so a
    # short spike of a few calls stands out even when the share above the p90 drifts
    "latency_p95_ms_2x": _far("lat_x2", "lat_n", "calls slower than twice the usual p90"),
    "ttft_p95_ms_2x": _far("ttft_x2", "ttft_n", "first tokens later than twice the usual p90"),
    "cost_per_call_usd_2x": _far("cost_x2", "cost_n", "calls costlier than twice the usual p90"),
    "tokens_per_call_2x": _far("tok_x2", "tok_n", "calls with twice the usual p90 of output tokens"),
    # per token (a call's duration over its output tokens; a first token's wait over the reasoning
    # tokens): a sparse series' spike is a few calls whose times spread with their lengths (see PER_TOKEN)
    "ttft_p95_ms_per_token": _far(
        "tpt_x3", "tpt_n", "first tokens later per reasoning token than three times the usual p90"
    ),
    "latency_p95_ms_per_token": _far("pt_x3", "pt_n", "calls slower per output token than three times the usual p90"),
    # the share past the usual p90 per output token, judged like the share of durations: where durations
    # follow the answers' lengths (20 s to 20 minutes), a 2-3x slowdown of a sparse series moves it, not
    # the durations' share (v14 seed 1401: 11 calls in 20 minutes at 2.8x, each past the usual pace)
    "latency_p95_ms_pace": Metric(
        "pt_x", "pt_n", "up", 0.1, "calls slower per output token than the usual p90", min_ratio=PACE_RATIO
    ),
}
VARIANTS = {
    "tokens_per_call_low": "tokens_per_call",
    **{f"{m}_2x": m for m in ("latency_p95_ms", "ttft_p95_ms", "cost_per_call_usd", "tokens_per_call")},
    "latency_p95_ms_per_token": "latency_p95_ms",
    "latency_p95_ms_pace": "latency_p95_ms",
    "ttft_p95_ms_per_token": "ttft_p95_ms",
}  # scanned -> reported
FAR = {m: r for m, r in VARIANTS.items() if m != "tokens_per_call_low"}  # variants that join the metric's episodes
# What each bucket row carries besides the series and the bucket.
COUNTS = (
    "calls", "errors", "ok", "truncated", "empty", "lat_n", "lat_x", "ttft_n", "ttft_x",
    "tok_n", "tok_x", "tok_lo", "cost_n", "cost_x", "lat_x2", "ttft_x2", "tok_x2", "cost_x2", "pt_n", "pt_x",
    "pt_x3", "tpt_n", "tpt_x3",
)  # fmt: skip


def series_columns(by: Sequence[str]) -> str:
    return ", ".join(f"g_{b}" for b in by) or "_all"


def _select_groups(by: Sequence[str]) -> str:
    return ", ".join(f"toString({COLUMNS[b]}) AS g_{b}" for b in by) or "0 AS _all"


def _trailing(column: str) -> str:
    """Median of the last ``THRESHOLD_HOURS`` qualifying hours' values (NULL-free array from
    groupArray, in time order) within ``THRESHOLD_LOOKBACK`` rows; before there are
    ``MIN_THRESHOLD_HOURS`` of them, the median of the series' first ones (``FIRST_BARS``), or 0 = none."""
    qualifying = f"if(okn >= {MIN_HOUR_CALLS} AND {column} > 0, {column}, NULL)"
    past = f"arraySlice(groupArray({qualifying}) OVER past, -{THRESHOLD_HOURS})"
    first = f"groupArray({MIN_THRESHOLD_HOURS})({qualifying}) OVER whole" if FIRST_BARS else "[]"
    return (
        f"if(length({past}) >= {MIN_THRESHOLD_HOURS}, arrayReduce('quantileExact(0.5)', {past}), "
        f"if(length({first}) >= {MIN_THRESHOLD_HOURS}, arrayReduce('quantileExact(0.5)', {first}), 0))"
    )


def threshold_windows(g: str, lookback: int) -> str:
    """The windows :func:`_trailing` and :func:`_trailing_bin` read: ``lookback`` hourly rows before
    each (``past``), and the series' whole range (``whole``, its first bars)."""
    return (
        f"WINDOW past AS (PARTITION BY {g} ORDER BY h ROWS BETWEEN {lookback} PRECEDING AND 1 PRECEDING), "
        f"whole AS (PARTITION BY {g} ORDER BY h ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    )


def counts_sql(by: Sequence[str], dims: str, step: int) -> str:
    """Counts per leaf series and ``step``-second bucket from {hist_start} to {judge_end}.

    ``dims`` is the dimension clause of the filter (bound parameters); ``step`` an int.
    """
    g = series_columns(by)
    # calls meet their hour's thresholds on one hash of the series and hour (and the hour): a
    # join on the series' strings cost ~0.5 s more server CPU per 4M calls
    key = f"cityHash64({g}, h) AS k"
    ok = "IsError = 0"
    return f"""
        WITH
        calls AS (
            SELECT {_select_groups(by)}, toStartOfHour(Timestamp) AS h, {key},
                   toStartOfInterval(Timestamp, toIntervalSecond({step})) AS b,
                   IsError, DurationUs, ifNull(TtftUs, 0) AS ttft, TtftUs IS NOT NULL AS has_ttft,
                   OutputTokens, ifNull(CostUsd, 0) AS cost, CostUsd IS NOT NULL AS priced, {TRUNCATED} AS cut,
                   {GENERATES} AS generates, {PER_TOKEN} AS per_token,
                   {TTFT_PER_TOKEN} AS ttft_per_token
            FROM llm_calls
            WHERE Timestamp >= {{hist_start:DateTime64(6, 'UTC')}}
              AND Timestamp < {{judge_end:DateTime64(6, 'UTC')}}{dims}
        ),
        hourly AS (
            SELECT {g}, h, countIf({ok}) AS okn,
                   quantileExactIf({HIGH})(DurationUs, {ok}) AS lat90,
                   quantileExactIf({HIGH})(ttft, {ok} AND has_ttft) AS ttft90,
                   quantileExactIf({HIGH})(OutputTokens, {ok}) AS tok90,
                   quantileExactIf({LOW})(OutputTokens, {ok}) AS tok10,
                   quantileExactIf({HIGH})(cost, {ok} AND priced) AS cost90,
                   quantileExactIf({HIGH})(per_token, {ok} AND per_token > 0) AS pt90,
                   quantileExactIf({HIGH})(ttft_per_token, {ok} AND ttft_per_token > 0) AS tpt90
            FROM calls GROUP BY {g}, h
        ),
        thresholds AS (
            SELECT {key}, h, {_trailing("lat90")} AS lat_t, {_trailing("ttft90")} AS ttft_t,
                   {_trailing("tok90")} AS tok_t, {_trailing("tok10")} AS tok_l, {_trailing("cost90")} AS cost_t,
                   {_trailing("pt90")} AS pt_t, {_trailing("tpt90")} AS tpt_t
            FROM hourly
            {threshold_windows(g, THRESHOLD_LOOKBACK)}
        )
        SELECT {", ".join(f"c.{col} AS {col}" for col in g.split(", "))}, toDateTime(c.b, 'UTC') AS b,
               count() AS calls, sum(c.IsError) AS errors, countIf(c.{ok}) AS ok,
               countIf(c.{ok} AND c.cut) AS truncated, countIf(c.{ok} AND c.OutputTokens = 0 AND c.generates) AS empty,
               countIf(c.{ok} AND t.lat_t > 0) AS lat_n,
               countIf(c.{ok} AND t.lat_t > 0 AND c.DurationUs > t.lat_t) AS lat_x,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0) AS ttft_n,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0 AND c.ttft > t.ttft_t) AS ttft_x,
               countIf(c.{ok} AND t.tok_t > 0) AS tok_n,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens > t.tok_t) AS tok_x,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens < t.tok_l) AS tok_lo,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0) AS cost_n,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0 AND c.cost > t.cost_t) AS cost_x,
               countIf(c.{ok} AND t.lat_t > 0 AND c.DurationUs > 2 * t.lat_t) AS lat_x2,
               countIf(c.{ok} AND c.has_ttft AND t.ttft_t > 0 AND c.ttft > 2 * t.ttft_t) AS ttft_x2,
               countIf(c.{ok} AND t.tok_t > 0 AND c.OutputTokens > 2 * t.tok_t) AS tok_x2,
               countIf(c.{ok} AND c.priced AND t.cost_t > 0 AND c.cost > 2 * t.cost_t) AS cost_x2,
               countIf(c.{ok} AND c.per_token > 0 AND t.pt_t > 0) AS pt_n,
               countIf(c.{ok} AND c.per_token > 0 AND t.pt_t > 0 AND c.per_token > t.pt_t) AS pt_x,
               countIf(c.{ok} AND c.per_token > 0 AND t.pt_t > 0 AND c.per_token > {PER_TOKEN_FAR} * t.pt_t) AS pt_x3,
               countIf(c.{ok} AND c.ttft_per_token > 0 AND t.tpt_t > 0) AS tpt_n,
               countIf(c.{ok} AND c.ttft_per_token > 0 AND t.tpt_t > 0
                       AND c.ttft_per_token > {PER_TOKEN_FAR} * t.tpt_t) AS tpt_x3
        FROM calls AS c LEFT JOIN thresholds AS t ON c.k = t.k AND c.h = t.h
        GROUP BY {g}, b
        ORDER BY {g}, b"""


def volume_sql(by: Sequence[str], dims: str, step: int) -> str:
    """Calls per leaf series and ``step``-second bucket from {vol_start} to {hist_start}: the
    weeks before the history, for the volume's weekly profile.

    Read from the minute rollup ``llm_calls_1m`` (it keeps every grouping column and filter
    dimension; both bounds fall on whole buckets, so whole minutes), equal to counting
    ``llm_calls``: re-pricing's correction rows carry no calls, hence ``calls > 0``."""
    g = series_columns(by)
    return f"""
        SELECT {_select_groups(by)}, toDateTime(toStartOfInterval(Bucket, toIntervalSecond({step})), 'UTC') AS b,
               sum(Calls) AS calls
        FROM llm_calls_1m
        WHERE Bucket >= toStartOfMinute({{vol_start:DateTime64(6, 'UTC')}})
          AND Bucket < toStartOfMinute({{hist_start:DateTime64(6, 'UTC')}}){dims}
        GROUP BY {g}, b
        HAVING calls > 0"""


def calls_sql(by: Sequence[str], dims: str, step: int, rollup: bool) -> str:
    """Calls per leaf series and ``step``-second bucket from {hist_start} to {judge_end}: the rows
    and order of :func:`counts_sql` (``rollup``: :func:`rollup_counts_sql`) with only their calls,
    for the volume's expectations while the counts are computed. A cheap read: one column."""
    g = series_columns(by)
    if rollup:
        source, time, calls = "llm_anomaly_5m", "Bucket", "sum(Calls)"
    else:
        source, time, calls = "llm_calls", "Timestamp", "count()"
    return f"""
        SELECT {_select_groups(by)}, toDateTime(toStartOfInterval({time}, toIntervalSecond({step})), 'UTC') AS b,
               {calls} AS calls
        FROM {source}
        WHERE {time} >= {{hist_start:DateTime64(6, 'UTC')}} AND {time} < {{judge_end:DateTime64(6, 'UTC')}}{dims}
        GROUP BY {g}, b
        ORDER BY {g}, b"""


def rollup_answers(by: Sequence[str], step: int) -> bool:
    """Whether :func:`rollup_counts_sql` can give these counts (filters are always on its keys)."""
    return step % ROLLUP_STEP == 0 and set(by) <= ROLLUP_KEYS


def _bin_quantile(hist: str, level: float) -> str:
    """The bin holding a series' ``level`` quantile of an hour (``NO_BIN`` without calls)."""
    return f"if(sumArray({hist}.2) = 0, {NO_BIN}, quantileExactWeightedArray({level})({hist}.1, {hist}.2))"


def _trailing_bin(column: str) -> str:
    """:func:`_trailing` over bins: the median bin of the last qualifying hours, or ``NO_BIN``."""
    qualifying = f"if(okn >= {MIN_HOUR_CALLS} AND {column} > {ZERO_BIN}, {column}, NULL)"
    past = f"arraySlice(groupArray({qualifying}) OVER past, -{THRESHOLD_HOURS})"
    first = f"groupArray({MIN_THRESHOLD_HOURS})({qualifying}) OVER whole" if FIRST_BARS else "[]"
    return (
        f"if(length({past}) >= {MIN_THRESHOLD_HOURS}, toInt32(arrayReduce('quantileExact(0.5)', {past})), "
        f"if(length({first}) >= {MIN_THRESHOLD_HOURS}, toInt32(arrayReduce('quantileExact(0.5)', {first})), "
        f"{NO_BIN}))"
    )


def _twice_past(hist: str, bar: str, side: str = ">", shift: int = 0) -> str:
    """Twice the calls of a histogram past ``bar`` + ``shift`` bins (``side`` '>' or '<'), the bar's own
    bin once: halved after the sum, so a call in the bar's bin counts half."""
    edge = f"{bar} + {shift}" if shift else bar
    twice = f"arraySum((c, k) -> if(k {side} {edge}, 2 * c, if(k = {edge}, c, 0)), {hist}.2, {hist}.1)"
    return f"if({bar} = {NO_BIN}, 0, {twice})"


def rollup_counts_sql(by: Sequence[str], dims: str, step: int) -> str:
    """:func:`counts_sql`'s columns from ``llm_anomaly_5m``; ``step`` a multiple of ``ROLLUP_STEP``.

    Hourly p90s (p10) are weighted exact quantiles of the hour's bins; a bar is the median bin of
    the trailing hours as in :func:`counts_sql`; the calls past it are summed per rollup row (each
    row's own hour's bars) before the rows are grouped into the series' buckets. Twice a bar is
    ``BINS_PER_OCTAVE`` bins higher. Counts are UInt64 sums that wrap (re-pricing's -1s), so the
    halving comes after the sum."""
    g = series_columns(by)
    where = f"Bucket >= {{hist_start:DateTime64(6, 'UTC')}} AND Bucket < {{judge_end:DateTime64(6, 'UTC')}}{dims}"
    twice = BINS_PER_OCTAVE  # bins
    thrice = round(BINS_PER_OCTAVE * math.log2(PER_TOKEN_FAR))  # 51 bins: 3.02 times
    low_bar = f"if(t.tok_t = {NO_BIN}, {NO_BIN}, t.tok_l)"  # a p10 bar only where there is a p90 one

    def n(hist: str, bar: str) -> str:
        return f"sum(if({bar} = {NO_BIN}, 0, arraySum({hist}.2)))"

    def past(hist: str, bar: str, side: str = ">", shift: int = 0) -> str:
        return f"intDiv(sum({_twice_past(hist, bar, side, shift)}) + 1, 2)"

    return f"""
        WITH
        hourly AS (
            SELECT {_select_groups(by)}, toStartOfHour(Bucket) AS h, sum(Calls - Errors) AS okn,
                   {_bin_quantile("Latency", HIGH)} AS lat90, {_bin_quantile("Ttft", HIGH)} AS ttft90,
                   {_bin_quantile("Tokens", HIGH)} AS tok90, {_bin_quantile("Tokens", LOW)} AS tok10,
                   {_bin_quantile("Cost", HIGH)} AS cost90, {_bin_quantile("PerToken", HIGH)} AS pt90,
                   {_bin_quantile("TtftPerToken", HIGH)} AS tpt90
            FROM llm_anomaly_5m WHERE {where}
            GROUP BY {g}, h
        ),
        thresholds AS (
            SELECT cityHash64({g}, h) AS k, {_trailing_bin("lat90")} AS lat_t, {_trailing_bin("ttft90")} AS ttft_t,
                   {_trailing_bin("tok90")} AS tok_t, {_trailing_bin("tok10")} AS tok_l,
                   {_trailing_bin("cost90")} AS cost_t, {_trailing_bin("pt90")} AS pt_t,
                   {_trailing_bin("tpt90")} AS tpt_t
            FROM hourly
            {threshold_windows(g, THRESHOLD_LOOKBACK)}
        )
        SELECT {g}, toDateTime(toStartOfInterval(r.Bucket, toIntervalSecond({step})), 'UTC') AS b,
               sum(r.Calls) AS calls, sum(r.Errors) AS errors, sum(r.Calls - r.Errors) AS ok,
               sum(r.Truncated) AS truncated, sum(r.Empty) AS empty,
               {n("r.Latency", "t.lat_t")} AS lat_n, {past("r.Latency", "t.lat_t")} AS lat_x,
               {n("r.Ttft", "t.ttft_t")} AS ttft_n, {past("r.Ttft", "t.ttft_t")} AS ttft_x,
               {n("r.Tokens", "t.tok_t")} AS tok_n, {past("r.Tokens", "t.tok_t")} AS tok_x,
               {past("r.Tokens", low_bar, "<")} AS tok_lo,
               {n("r.Cost", "t.cost_t")} AS cost_n, {past("r.Cost", "t.cost_t")} AS cost_x,
               {past("r.Latency", "t.lat_t", shift=twice)} AS lat_x2,
               {past("r.Ttft", "t.ttft_t", shift=twice)} AS ttft_x2,
               {past("r.Tokens", "t.tok_t", shift=twice)} AS tok_x2,
               {past("r.Cost", "t.cost_t", shift=twice)} AS cost_x2,
               {n("r.PerToken", "t.pt_t")} AS pt_n, {past("r.PerToken", "t.pt_t")} AS pt_x,
               {past("r.PerToken", "t.pt_t", shift=thrice)} AS pt_x3,
               {n("r.TtftPerToken", "t.tpt_t")} AS tpt_n,
               {past("r.TtftPerToken", "t.tpt_t", shift=thrice)} AS tpt_x3
        FROM (SELECT *, {_select_groups(by)}, cityHash64({g}, toStartOfHour(Bucket)) AS k
              FROM llm_anomaly_5m WHERE {where}) AS r
        LEFT JOIN thresholds AS t ON r.k = t.k
        GROUP BY {g}, b
        ORDER BY {g}, b"""

"""``llmtrace up --demo``'s live generator (:mod:`llmtrace.demo.live_shape`) against the week of
history it follows (:data:`scenarios.HISTORY_SQL`, through chDB): per hour of the day, the calls it
sends; per series (service x model x environment), its share of calls, and per service x model,
errors, streams, input and output tokens, time to first token and latency.

The history ends at midnight UTC, so its rows and the hours compared do not depend on when the
test runs. Live traffic once ran at 0.2 requests/s whatever the hour (4-5x the week at its
peak, 13x at night) with tool-call replies and prompts a sixth of the week's: it fails every
check here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace.analytics import anomalies
from llmtrace.analytics.filters import Filter
from llmtrace.demo import canary, live_shape, scenarios
from llmtrace.demo.canary_live import live_rate, up_scenario
from llmtrace.demo.live import live_rate as demo_live_rate
from llmtrace.store.chdb_client import ChdbClient

pytest_plugins = ["tests.conftest_store"]

CALLS = 30_000  # `llmtrace up --demo`'s default --demo-calls
# Midnight two days ago: a fixed hour (the store's TTL drops an older fixed date); every placement
# of the history relative to UTC days is the same whichever the date.
END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
HOUR_NS = 3600 * 10**9
HOURS = (5, 11, 17, 21)  # the trough (05:00 UTC), the morning, the peak (17:00), the evening
# Rows after every lasting change of the story (prompt v4 came 40 h, the model switch 80 h before the
# end) and after the last incident (the latency spike, 30-28 h before the end).
SETTLED_H = 27
LIVE_REQUESTS = 6000


@pytest.fixture(scope="module")
def history(module_databases: Callable[[], ChdbClient]) -> ChdbClient:
    client = module_databases()
    sql, params = scenarios.history_sql(CALLS, 7, int(END.timestamp() * 1e9))
    client.command(sql, parameters=params)
    return client


def _live_calls_in_hour(hour: int) -> int:
    """LLM calls the live player sends from ``hour``:00 to the next hour (the day before END)."""
    start = int((END - timedelta(days=1)).timestamp() * 1e9) + hour * HOUR_NS
    times = list(live_shape.schedule(start, demo_live_rate(CALLS), start + HOUR_NS))
    return len(times) * live_shape.CALLS_PER_REQUEST


@pytest.mark.parametrize("hour", HOURS)
def test_live_calls_per_hour_follow_the_history_at_that_hour(history: ChdbClient, hour: int) -> None:
    sql = "SELECT count() / 7 FROM llm_calls WHERE toHour(Timestamp) = {h:UInt8}"
    [(per_day,)] = history.query(sql, parameters={"h": hour}).result_rows
    live = _live_calls_in_hour(hour)
    traces = per_day * 7 / 2  # 7 days of an hour hold 400-1,500 traces of two calls: 4 standard errors
    tolerance = 4 / math.sqrt(traces)  # (the generator's pace matches the warp within 2% at 300,000 calls)
    assert live == pytest.approx(per_day, rel=tolerance), f"{hour}:00 UTC: live {live} calls, history {per_day:.0f}/day"


def test_the_live_pace_peaks_and_dips_with_the_history() -> None:
    trough, peak = _live_calls_in_hour(5), _live_calls_in_hour(17)
    assert peak > 3 * trough  # the history's density runs from 0.625x to 2.4x the day's mean


def _live_rows() -> list[dict[str, Any]]:
    """The live generator's calls as the store will hold them (the fake LLM adds its hidden output)."""
    start = int(END.timestamp() * 1e9) - SETTLED_H * HOUR_NS
    rows = []
    for i in range(LIVE_REQUESTS):
        request = live_shape.request_at(start + i * 10**10, f"live:test:{i}")
        for call in request.calls:
            ok = not call.status
            rows.append({
                "series": (request.service, call.model, request.environment), "error": not ok, "stream": call.stream,
                "input": call.prompt_tokens if ok else None,
                "output": call.output_words + live_shape.hidden_output(call.model) if ok else None,
                "ttft": call.ttft_ms if ok and call.stream else None, "latency": call.duration_ms if ok else None,
            })  # fmt: skip
    return rows


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


SHAPES_SQL = """
SELECT ServiceName, RequestModel, count(), avg(IsError), avg(IsStream), avgIf(InputTokens, IsError = 0),
    quantilesExactIf(0.1, 0.5, 0.9)(OutputTokens, IsError = 0),
    quantileExactIf(0.9)(TtftUs / 1000, IsStream AND IsError = 0), quantileExactIf(0.9)(DurationUs / 1000, IsError = 0)
FROM llm_calls WHERE Timestamp >= {since:DateTime64(9)}
GROUP BY ServiceName, RequestModel
"""


def test_each_series_gets_its_share_of_the_live_calls(history: ChdbClient) -> None:
    sql = """SELECT ServiceName, RequestModel, Environment, count() FROM llm_calls
             WHERE Timestamp >= {since:DateTime64(9)} GROUP BY ALL"""
    since = END - timedelta(hours=SETTLED_H)
    counts = {tuple(r[:3]): r[3] for r in history.query(sql, parameters={"since": since}).result_rows}
    total = sum(counts.values())
    live: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in _live_rows():
        live[row["series"]] += 1
    assert set(live) == set(counts)
    for series, n in counts.items():
        share, live_share = n / total, live[series] / sum(live.values())
        traces = total / 2  # a trace's two calls share their series
        assert abs(live_share - share) <= 4 * math.sqrt(share * (1 - share) / traces) + 0.005, series


def test_each_service_and_model_has_the_history_s_shapes(history: ChdbClient) -> None:
    since = END - timedelta(hours=SETTLED_H)
    live: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _live_rows():
        live[row["series"][:2]].append(row)
    checked = 0
    for service, model, n, errors, streams, input_avg, output_q, ttft_p90, latency_p90 in history.query(
        SHAPES_SQL, parameters={"since": since}
    ).result_rows:
        rows = live[(service, model)]
        ok = [r for r in rows if not r["error"]]
        traces = n / 2
        wobble = 0.08 + 1.5 / math.sqrt(n)  # quantiles of n calls: 12% at 4,000 calls, 22% at 150
        where = f"{service} / {model} ({n} calls in the history)"
        assert abs(sum(r["error"] for r in rows) / len(rows) - errors) <= 4 * math.sqrt(0.02 / n) + 0.005, where
        stream_share = sum(r["stream"] for r in rows) / len(rows)
        assert abs(stream_share - streams) <= 4 * math.sqrt(streams * (1 - streams) / traces) + 0.01, where
        assert sum(r["input"] for r in ok) / len(ok) == pytest.approx(input_avg, rel=wobble / 2), where
        outputs = [r["output"] for r in ok]
        for q, expected in zip((0.1, 0.5, 0.9), output_q, strict=True):
            observed, label = _quantile(outputs, q), f"{where}: output p{q * 100:.0f}"
            if observed == live_shape.hidden_output(model) + 1 and observed > expected:
                # o3-mini: the fake adds 64 reasoning tokens to every reply, so its shortest live replies
                # are 65 tokens where the history has 50; fewer short replies is not an anomaly's direction
                continue
            assert observed == pytest.approx(expected, rel=wobble), label
        if ttft_p90 == ttft_p90 and ttft_p90:  # the history has streams of this series
            ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
            assert _quantile(ttfts, 0.9) == pytest.approx(ttft_p90, rel=wobble), f"{where}: TTFT p90"
        assert _quantile([r["latency"] for r in ok], 0.9) == pytest.approx(latency_p90, rel=wobble), where
        checked += 1
    assert checked == len(live) == 9  # every service x model the live generator sends after the story


@pytest.fixture(scope="module")
def with_canary(module_databases: Callable[[], ChdbClient]) -> ChdbClient:
    """The week and the canary's day as `up --demo` loads them, both ending at END."""
    client = module_databases()
    sql, params = scenarios.history_sql(CALLS, 7, int(END.timestamp() * 1e9))
    client.command(sql, parameters=params)
    canary.insert(client, up_scenario(END))
    return client


def test_the_canary_s_live_arms_continue_its_day_at_its_pace(with_canary: ChdbClient) -> None:
    client, scenario = with_canary, up_scenario(END)
    sql = """SELECT Release, count() / 6 / 3600 FROM llm_calls WHERE ServiceName = {service:String}
             AND Timestamp >= {since:DateTime64(9)} GROUP BY Release ORDER BY Release"""
    params = {"since": END - timedelta(hours=6), "service": scenario.service}
    per_second = client.query(sql, parameters=params).result_rows
    assert [release for release, _ in per_second] == [arm.release for arm in scenario.arms]
    for release, rate in per_second:  # ~1,500 calls per release in 6 hours: 10% is 4 standard errors
        assert live_rate(scenario) == pytest.approx(rate, rel=0.1), release


def test_the_canary_s_day_starts_no_episode_beside_the_week(with_canary: ChdbClient) -> None:
    """Its day once had 3% of replies cut at max tokens (its live arms: none, the week: none): a critical
    `truncation_rate up` for the whole openai provider from the canary's first call on."""
    report = anomalies.detect(with_canary, Filter.last(timedelta(days=7), now=END), now=END)
    canary_start = END - timedelta(hours=up_scenario(END).hours)
    found = [(a.series, a.metric, a.direction) for a in report.episodes() if a.end > canary_start]
    assert found == []

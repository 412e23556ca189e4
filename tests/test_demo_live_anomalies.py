"""``llmtrace up --demo`` end to end on the Anomalies page: the week of history in bulk, then 45
minutes of the live generator's requests through the real SDKs into a real ``llmtrace server``,
and ``anomalies.detect`` finds only what it found in the history alone (the scripted incidents),
no episode the history alone did not have and no anomaly at all in the live minutes.

The live requests are the generator's own (:func:`live_shape.schedule` and
:func:`live_shape.request_at`), played by ``llmtrace demo``'s player, which re-times each span to
its planned time: the history ends at fixed hours of a fixed day before today (the daily trough,
the morning, the peak), so the answer does not depend on when the test runs. With live traffic at
its old pace and shapes (0.2 requests/s, tool-call replies, short prompts, truncated replies), 30
minutes after a 15:00 end gave ``tokens_per_call down`` (critical) and ``truncation_rate up``
for the whole app.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from llmtrace.analytics import anomalies
from llmtrace.analytics.anomalies import AnomalyReport
from llmtrace.analytics.filters import Filter
from llmtrace.demo import live_shape
from llmtrace.demo.command import sdk_pipeline
from llmtrace.demo.live import live_rate, load_history
from llmtrace.store.client import connect
from tests.server_process import ServerProcess

CALLS = 30_000  # `llmtrace up --demo`'s default --demo-calls
LIVE = timedelta(minutes=45)
DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
HOURS = (5, 11, 17)  # the history's trough, its morning and its peak (UTC)


def _detect(url: str, now: datetime) -> AnomalyReport:
    client = connect(url)
    try:
        return anomalies.detect(client, Filter.last(timedelta(days=7), now=now), now=now)
    finally:
        client.close()


def _calls(url: str) -> int:
    client = connect(url)
    try:
        return int(client.query("SELECT count() FROM llm_calls").result_rows[0][0])
    finally:
        client.close()


@pytest.fixture(scope="module", params=HOURS, ids=[f"{h:02d}h" for h in HOURS])
def played(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """History ending at the hour, its report at the end; then the live minutes and the report after them."""
    end = DAY + timedelta(hours=request.param)
    stop = end + LIVE
    server = ServerProcess(tmp_path_factory.mktemp("live-anomalies") / "data").wait_ready()
    try:
        history = load_history(server.http_url, CALLS, end_ns=int(end.timestamp() * 1e9))
        before = _detect(server.http_url, end)
        start_ns, stop_ns = int(end.timestamp() * 1e9), int(stop.timestamp() * 1e9)
        times = list(live_shape.schedule(start_ns, live_rate(CALLS), stop_ns))
        planned = [live_shape.request_at(t, f"live:7:{i}") for i, t in enumerate(times)]
        with sdk_pipeline(server.otlp_url) as player:  # flushes every span on exit
            for live_request in planned:
                player.play(live_request)
        expected = history + sum(len(r.calls) for r in planned)
        deadline = time.monotonic() + 60
        while _calls(server.http_url) < expected and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the store until the server has written the delivered spans
        yield {"end": end, "stop": stop, "before": before, "after": _detect(server.http_url, stop),
               "requests": len(planned), "stored": _calls(server.http_url), "expected": expected}  # fmt: skip
    finally:
        server.stop()


def _keys(report: AnomalyReport) -> set[tuple[str, str, str]]:
    """Episodes by series, metric and direction (call-level outliers are held to the window's top
    20, which of the latency spike's slow calls make it moves with the window's end)."""
    return {(a.metric, a.direction, str(sorted(a.series.items()))) for a in report.episodes()}


def test_the_live_minutes_hold_the_generator_s_requests(played: dict[str, object]) -> None:
    assert played["stored"] == played["expected"]
    assert 30 <= played["requests"] <= 400  # 0.016-0.06 requests/s over 45 minutes, by the hour


def test_live_traffic_adds_no_anomaly_to_the_history_s(played: dict[str, object]) -> None:
    before, after = played["before"], played["after"]
    assert isinstance(before, AnomalyReport) and isinstance(after, AnomalyReport)
    in_live = [
        (a.kind, a.series, a.metric, a.direction, f"{a.start:%H:%M}-{a.end:%H:%M}")
        for a in after.anomalies
        if a.end >= played["end"]  # type: ignore[operator]
    ]
    assert in_live == []
    assert _keys(after) - _keys(before) == set()

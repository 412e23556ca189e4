"""``detect(now=...)`` reads nothing at or after the end of the last complete bucket.

The watch benchmark (benchmarks/detection_watch.py) replays ``llmtrace watch`` on kept stores that
already hold the whole scenario: stepping ``now`` through a full store answers as a store filled
in arrival order only if no query (5-minute rollup, per-call bars, call-level findings, changes)
looks past ``now``. A burst of failed and slow calls after ``now`` (in the bucket in progress and
the next half hour) must not change the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmtrace import semconv
from llmtrace.analytics import anomalies, synthetic
from llmtrace.analytics.filters import Filter
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.conftest_store import otel_row

END = datetime(2026, 3, 2, tzinfo=timezone.utc)  # fixed: not the time of day the suite runs at
NOW = END + timedelta(minutes=3)  # inside a bucket: [END, NOW) is in progress, not judged
CHAT = {
    semconv.OPERATION_NAME: "chat",
    semconv.PROVIDER_NAME: "openai",
    semconv.REQUEST_MODEL: "gpt-4o-mini",
    semconv.USAGE_INPUT_TOKENS: "600",
    semconv.USAGE_OUTPUT_TOKENS: "150",
    semconv.RESPONSE_FINISH_REASONS: '["stop"]',
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = synthetic.seed_store(f"chdb://{tmp_path_factory.mktemp('future')}", synthetic.reference_scenario(END, 3))
    yield client
    client.close()


def _watch(client: Any) -> dict[str, Any]:
    report = anomalies.detect(client, Filter(start=NOW - timedelta(hours=24), end=NOW), "auto", now=NOW)
    return report.to_dict()


def _future_burst() -> list[tuple[object, ...]]:
    """600 calls of chat-ui from END to END + 30 min, every other one failed, the rest 60 s long."""
    rows = []
    for i in range(600):
        start_ns = int((END + timedelta(seconds=3 * i)).timestamp() * 1e9)
        failed = i % 2 == 0
        rows.append(
            otel_row(
                CHAT,
                service_name="chat-ui",
                start_ns=start_ns,
                duration_ns=200_000_000 if failed else 60_000_000_000,
                status_code="Error" if failed else "Unset",
            )
        )
    return rows


def test_calls_after_the_last_complete_bucket_do_not_change_what_watch_reports(store: Any) -> None:
    before = _watch(store)
    store.insert("otel_traces", _future_burst(), column_names=OTEL_TRACES_COLUMNS)
    assert (
        int(
            store.query(f"SELECT count() FROM llm_calls WHERE Timestamp >= '{END:%Y-%m-%d %H:%M:%S}'").result_rows[0][0]
        )
        == 600
    )
    # the same calls judged once their bucket is complete: the burst is there to be found
    later = END + timedelta(minutes=35)
    found = anomalies.detect(store, Filter(start=later - timedelta(hours=24), end=later), "auto", now=later)
    assert any(a.metric == "error_rate" for a in found.anomalies)
    assert _watch(store) == before

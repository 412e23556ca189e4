"""`llmtrace watch`: each finding is sent once, to a real local webhook over HTTP, or printed."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmtrace import cli
from llmtrace.analytics import synthetic
from llmtrace.analytics.alerts import Alert, SentLog
from llmtrace.store.client import connect

NOW_HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
# Traffic runs two hours past now, so a check made after the hour turns still sees full buckets.
END = NOW_HOUR + timedelta(hours=2)


class Receiver:
    """A webhook on 127.0.0.1 that records JSON bodies and answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if receiver.status == 200:
                    receiver.bodies.append(body)
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"chdb://{tmp_path_factory.mktemp('alerts')}"
    client = synthetic.seed_store(url, synthetic.reference_scenario(END, days=4, scale=0.5))
    yield url
    client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def watch(store_url: str, state: Path, *extra: str) -> int:
    return cli.main(["watch", "--url", store_url, "--once", "--since", "24h", "--state", str(state), *extra])


def test_watch_once_posts_each_new_finding_with_a_slack_text(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    assert watch(store_url, tmp_path / "state.json", "--webhook", receiver.url) == 0
    assert receiver.bodies, "the reference scenario has anomalies in the last day"
    for body in receiver.bodies:
        assert body["text"].startswith((":warning: llmtrace", ":rotating_light: llmtrace"))
        assert body["llmtrace"]["type"] in ("anomaly", "drift")
    keys = [b["llmtrace"].get("key") for b in receiver.bodies if b["llmtrace"]["type"] == "anomaly"]
    assert len(keys) == len(set(keys))


def test_a_second_check_sends_nothing_already_sent(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    watch(store_url, state, "--webhook", receiver.url)
    first = len(receiver.bodies)
    assert watch(store_url, state, "--webhook", receiver.url) == 0
    assert len(receiver.bodies) == first
    assert len(json.loads(state.read_text())) == first


def test_truncation_burst_episode_is_posted_with_example_traces(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    watch(store_url, tmp_path / "state.json", "--webhook", receiver.url, "--no-drift")
    [burst] = [b["llmtrace"] for b in receiver.bodies if b["llmtrace"]["metric"] == "truncation_rate"]
    assert burst["series"] == {"service": "search-api", "model": "gpt-4o-mini"}
    # Episodes start at the first 5-minute bucket with evidence: the burst is injected at
    # END - 10 h, and its first cut output may come a bucket or two later (a few calls per
    # bucket, drawn anew for each hour of the day the test runs at).
    start = datetime.fromisoformat(burst["start"])
    assert start == _first_truncated_bucket(store_url, "search-api", "gpt-4o-mini", END - timedelta(hours=10))
    assert len(burst["trace_ids"]) == 3


def _first_truncated_bucket(store_url: str, service: str, model: str, since: datetime) -> datetime:
    client = connect(store_url)
    try:
        first = client.query(
            "SELECT min(toStartOfFiveMinutes(Timestamp)) FROM llm_calls WHERE ServiceName = {s:String}"
            " AND RequestModel = {m:String} AND FinishReason = 'length' AND IsError = 0"
            " AND Timestamp >= {t:DateTime64(6, 'UTC')}",
            parameters={"s": service, "m": model, "t": since.replace(tzinfo=None)},
        ).result_rows[0][0]
    finally:
        client.close()
    return first.replace(tzinfo=timezone.utc) if first.tzinfo is None else first


def test_without_a_webhook_alerts_are_printed(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert watch(store_url, tmp_path / "state.json", "--no-drift") == 0
    out = capsys.readouterr().out
    # Severity (warning or critical) depends on the burst's draws, which vary with the hour the test runs at.
    episode = r"llmtrace episode: \[(warning|critical)\] service=search-api model=gpt-4o-mini: truncation_rate up"
    assert re.search(episode, out)
    assert "new alert(s)" in out


def test_a_failing_webhook_is_reported_and_retried_at_the_next_check(
    store_url: str, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    receiver.status = 500
    watch(store_url, state, "--webhook", receiver.url, "--no-drift")
    assert "answered HTTP 500" in capsys.readouterr().out
    assert json.loads(state.read_text()) == {}
    receiver.status = 200
    watch(store_url, state, "--webhook", receiver.url, "--no-drift")
    assert receiver.bodies


def test_an_unreadable_state_file_is_refused_with_the_fix(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    assert watch(store_url, state) == 1
    assert "delete it to start afresh" in capsys.readouterr().err


# --------------------------------------------------------------------------- de-duplication rules
T0 = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)


def _episode(start: datetime, end: datetime) -> Alert:
    return Alert(f"episode|calls|s|{start.isoformat()}", "anomaly", "t", {}, "episode|calls|s", start, end)


def test_an_episode_whose_start_moved_but_continues_one_already_sent_is_not_sent_again(tmp_path: Path) -> None:
    log = SentLog(tmp_path / "s.json")
    log.record(_episode(T0, T0 + timedelta(hours=3)), T0)
    later = _episode(T0 + timedelta(hours=3), T0 + timedelta(hours=5))  # the window cut its start
    assert not log.is_new(later, T0 + timedelta(hours=5), timedelta(days=1))
    assert log.entries[f"episode|calls|s|{T0.isoformat()}"]["end"] == (T0 + timedelta(hours=5)).isoformat()


def test_a_new_episode_of_the_same_series_after_a_gap_is_sent(tmp_path: Path) -> None:
    log = SentLog(tmp_path / "s.json")
    log.record(_episode(T0, T0 + timedelta(hours=1)), T0)
    assert log.is_new(_episode(T0 + timedelta(hours=6), T0 + timedelta(hours=7)), T0, timedelta(days=1))


def test_a_drift_verdict_is_sent_again_only_after_the_realert_period(tmp_path: Path) -> None:
    log = SentLog(tmp_path / "s.json")
    alert = Alert("drift|latency_ms|all|major", "drift", "t", {}, "drift|latency_ms|all|major")
    log.record(alert, T0)
    assert not log.is_new(alert, T0 + timedelta(hours=23), timedelta(days=1))
    assert log.is_new(alert, T0 + timedelta(hours=24), timedelta(days=1))


def test_the_log_forgets_entries_older_than_two_weeks(tmp_path: Path) -> None:
    log = SentLog(tmp_path / "s.json")
    log.record(_episode(T0, T0 + timedelta(hours=1)), T0)
    log.save(T0 + timedelta(days=15))
    assert SentLog.load(tmp_path / "s.json").entries == {}

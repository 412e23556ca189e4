"""A detection's queries that need no counts (odd calls, runaway users, new releases) run beside its
own work (:mod:`llmtrace.store.beside`) and change nothing in its report.

Over HTTP they run in a session of their own: ClickHouse refuses a second query in a session while
one runs (``Code: 373 ... SESSION_IS_LOCKED``), and clickhouse-connect gives every client a session.
The embedded server does not enforce that rule, so a proxy in front of it here does, as a ClickHouse
server would: the vendor's behaviour is what is stood in for, the server and the client are real.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from llmtrace.analytics import anomalies
from llmtrace.analytics.anomalies import AnomalyReport
from llmtrace.analytics.filters import Filter
from llmtrace.store import beside as beside_module
from llmtrace.store.beside import beside
from llmtrace.store.chdb_client import ChdbClient
from tests.server_process import ServerProcess, start_server
from tests.test_anomalies_demo import COLUMNS, END, _rows
from tests.test_anomalies_demo import store as _store
from tests.test_anomalies_demo import store_url as _store_url

store, store_url = _store, _store_url  # the demo's week of calls in a chDB directory (one a process)

WAIT = 30.0  # seconds a held request waits for its partner before the test fails


class InTurn:
    """A client of no known kind: :func:`beside` runs its job in turn on it, as before."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class SessionRule(ThreadingHTTPServer):
    """Forwards ClickHouse HTTP requests to ``upstream`` and refuses, as ClickHouse does, a request
    whose ``session_id`` has another request in flight. With ``hold_first`` the first request waits
    (at most :data:`WAIT`) until a second one is in flight, so two requests surely overlap."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.busy: dict[str, int] = {}
        self.sessions: set[str] = set()
        self.in_flight = self.most_in_flight = self.refused = 0
        self.hold_first = False
        self.only_session: str | None = None  # when set, any other session's requests fail (a store going away)
        self.partner = threading.Event()  # set when a second request is in flight (or refused)
        self.arrived = threading.Event()  # set when a request is held

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: SessionRule

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        rule = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        session = parse_qs(urlsplit(self.path).query).get("session_id", [""])[0]
        if rule.only_session is not None and session != rule.only_session:
            message = (
                "Code: 210. DB::NetException: Connection reset by peer, while reading from socket. (NETWORK_ERROR)"
            )
            self._answer(500, {"Content-Type": "text/plain", "X-ClickHouse-Exception-Code": "210"}, message.encode())
            return
        first = False
        with rule.lock:
            locked = bool(session) and rule.busy.get(session, 0) > 0
            if locked:
                rule.refused += 1
                rule.partner.set()  # a held request goes on: the refused one was its partner
            else:
                rule.busy[session] = rule.busy.get(session, 0) + 1
                rule.sessions.add(session)
                rule.in_flight += 1
                rule.most_in_flight = max(rule.most_in_flight, rule.in_flight)
                first = rule.hold_first and rule.in_flight == 1
                if rule.in_flight >= 2:
                    rule.partner.set()
        if rule.only_session is not None and session != rule.only_session:
            with rule.lock:
                rule.busy[session] -= 1
                rule.in_flight -= 1
            message = (
                "Code: 210. DB::NetException: Connection reset by peer, while reading from socket. (NETWORK_ERROR)"
            )
            self._answer(500, {"Content-Type": "text/plain", "X-ClickHouse-Exception-Code": "210"}, message.encode())
            return
        if locked:
            message = (
                f"Code: 373. DB::Exception: Session {session} is locked by a concurrent client. (SESSION_IS_LOCKED)"
            )
            self._answer(500, {"Content-Type": "text/plain", "X-ClickHouse-Exception-Code": "373"}, message.encode())
            return
        try:
            if first:
                rule.arrived.set()
            if first and not rule.partner.wait(WAIT):
                reply = (500, {"Content-Type": "text/plain"}, b"Code: 159. DB::Exception: no second request came")
            else:
                connection = http.client.HTTPConnection(rule.upstream.hostname, rule.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                kept = {k: v for k, v in answer.getheaders() if k.lower() not in ("transfer-encoding", "connection")}
                kept.pop("Content-Length", None)
                reply = (answer.status, kept, payload)
                connection.close()
        finally:
            # the query is over once the store has answered: its session is free before the answer is
            # sent, as on ClickHouse (released after it, a client's next query in the same session could
            # arrive first and be refused: seen once in CI at 2 cores' contention)
            with rule.lock:
                rule.busy[session] -= 1
                rule.in_flight -= 1
        self._answer(*reply)

    def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``llmtrace server`` holding the same week of demo calls as the chDB store."""
    process = start_server(Path(tmp_path_factory.mktemp("beside")) / "data")
    try:
        client = process.client()
        client.insert("llm_calls", _rows() + _slow_calls(), column_names=COLUMNS)
        client.close()
        yield process
    finally:
        process.stop()


@pytest.fixture
def rule(server: ServerProcess) -> Iterator[SessionRule]:
    proxy = SessionRule(server.http_url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def _client(rule: SessionRule) -> Any:
    import clickhouse_connect

    port = urlsplit(rule.url).port
    return clickhouse_connect.get_client(host="127.0.0.1", port=port, send_receive_timeout=120)


def _detect(client: Any) -> AnomalyReport:
    """The last two days: the five before are the odd calls' history, and the prompt change is in."""
    return anomalies.detect(client, Filter(start=END - timedelta(days=2), end=END), now=END)


def _slow_calls() -> list[tuple[Any, ...]]:
    """Six of the demo's last-day calls again, 60 times as slow: call-level findings to read beside."""
    late = [r for r in _rows() if r[0] >= END - timedelta(hours=20) and r[3] == "search-api" and not r[15]][:6]
    at = COLUMNS.index("DurationUs")
    return [(*r[:1], f"{i:032x}ff", f"{i:014x}ff", *r[3:at], r[at] * 60, *r[at + 1 :]) for i, r in enumerate(late)]


def _same(a: AnomalyReport, b: AnomalyReport) -> None:
    assert a.to_dict() == b.to_dict()
    # ... and the queries run beside had something to say: a new prompt version, slow calls
    assert any(x.change for x in a.anomalies), "no episode named a change: the comparison says little"
    assert any(x.kind != "episode" for x in a.anomalies), "no call-level finding: the comparison says little"


def test_in_process_a_second_handle_reads_beside_and_the_report_is_the_one_read_in_turn(store: Any) -> None:
    store.insert("llm_calls", _slow_calls(), column_names=COLUMNS)
    side = beside_module._side_client(store)
    assert isinstance(side, ChdbClient) and side is not store
    side.close()
    _same(_detect(store), _detect(InTurn(store)))


def test_a_store_without_a_second_handle_runs_its_queries_in_turn(store: Any) -> None:
    facade = ChdbClient(store._session, store.database)  # no connection string: no second handle
    assert facade.another() is None
    seen: list[Any] = []
    later = beside(facade, lambda c: seen.append(c) or c.query("SELECT 41 + 1").result_rows)
    assert not seen  # nothing ran yet: it runs when asked, on the client itself
    assert later() == [(42,)] and seen == [facade]


def test_over_http_the_report_is_the_one_read_in_turn_and_no_session_is_shared(rule: SessionRule) -> None:
    client = _client(rule)
    try:
        together = _detect(client)
        assert rule.refused == 0
        assert len(rule.sessions) >= 2  # the client's own session and the one beside it
        _same(together, _detect(InTurn(client)))
        assert rule.refused == 0
    finally:
        client.close()


def test_a_query_beside_runs_while_the_callers_own_query_runs(rule: SessionRule) -> None:
    client = _client(rule)
    try:
        rule.hold_first = True  # the first request is held until a second is in flight
        later = beside(client, lambda side: side.query("SELECT 1 + 1").result_rows)
        mine = client.query("SELECT 2 + 2").result_rows
        assert later() == [(2,)] and mine == [(4,)]
        assert rule.most_in_flight == 2 and rule.refused == 0
    finally:
        client.close()


def test_one_session_cannot_run_two_queries_at_once(rule: SessionRule) -> None:
    """The control: a query sent while another of the same session is in flight is refused, by
    clickhouse-connect before it leaves (``ProgrammingError``) and by the server where two clients
    share a session id; the queries beside would have been, without a session of their own."""
    client, twin = _client(rule), _client(rule)
    twin.params["session_id"] = client.params["session_id"]
    try:
        rule.hold_first = True  # the first request is held until a second is in flight or refused
        held = threading.Thread(target=lambda: client.query("SELECT 1"))
        held.start()
        assert rule.arrived.wait(WAIT)
        with pytest.raises(Exception, match="concurrent queries within the same session"):
            client.query("SELECT 2")
        with pytest.raises(Exception, match="SESSION_IS_LOCKED"):
            twin.query("SELECT 3")
        assert rule.refused == 1
        held.join(WAIT)
        assert not held.is_alive()
    finally:
        client.close()
        twin.close()


def test_a_query_beside_that_fails_fails_the_detection_with_its_own_error(rule: SessionRule) -> None:
    """The store answers the detection's own session and drops the one beside it: the report is not
    made without the odd calls, runaway users and releases; the error says what the store said."""
    client = _client(rule)
    try:
        rule.only_session = client.params["session_id"]
        with pytest.raises(Exception, match="NETWORK_ERROR"):
            _detect(client)
        rule.only_session = None
        assert _detect(client).anomalies  # the same client goes on once the store answers again
    finally:
        client.close()


def test_a_failing_query_beside_raises_where_its_result_is_read(store: Any) -> None:
    later = beside(store, lambda side: side.query("SELECT * FROM no_such_table_here").result_rows)
    with pytest.raises(Exception, match="no_such_table_here"):
        later()

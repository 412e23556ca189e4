"""`llmtrace watch` delivery against real local HTTP servers: redirects, trickling and failing webhooks.

A delivery counts only on a 2xx from the configured URL within the total timeout; anything else
leaves the alert unsent in the state file, to be sent at the next check. Every message shows the
webhook as ``scheme://host:port/***``: its path and query are its secret.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmtrace.analytics.alerts import Alert, AlertDeliveryError, SentLog, check_once, post_webhook
from llmtrace.cli import build_parser
from llmtrace.store.client import connect
from tests.test_alerts import store_url as store_url  # the seeded chDB store (a fixture)
from tests.test_alerts import watch

TOKEN = "XoXoTOKEN9f8e7d"  # the secret part of every webhook URL here
QUERY_TOKEN = "qTOKEN4c3b2a"
ALERT = Alert(key="k", kind="anomaly", text=":warning: llmtrace test", payload={"type": "anomaly"})
# Both checks of a retry test look at the same moment, so they find the same alerts.
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


def check(store: str, state: Path, *options: str) -> str:
    """One ``llmtrace watch`` check (anomalies only) at :data:`NOW`, as the CLI parses it; returns its output."""
    args = build_parser(["watch"]).parse_args(["watch", "--state", str(state), "--no-drift", *options])
    out = io.StringIO()
    client = connect(store)
    try:
        check_once(client, args, SentLog.load(state), out, NOW)
    finally:
        client.close()
    return out.getvalue()


def keys(hook: Webhook) -> list[str]:
    return sorted(json.loads(body)["llmtrace"]["key"] for method, _, body in hook.requests if method == "POST")


def delivered_at_once(store: str, tmp_path: Path) -> list[str]:
    """The keys a first check at :data:`NOW` sends to a webhook that works (fewer than it tries after a
    failure: an episode adjacent to one sent in the same check is its continuation)."""
    hook = Webhook()
    try:
        check(store, tmp_path / "control-state.json", "--webhook", hook.url)
        return keys(hook)
    finally:
        hook.close()


class Webhook:
    """A webhook on 127.0.0.1 recording every request (any method); answers ``status``, with ``location``."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.status = status
        self.location = location
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append((self.command, self.path, body))
                self.send_response(hook.status)
                if hook.location and 300 <= hook.status < 400:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/services/T0AAAA/B0BBBB/{TOKEN}?token={QUERY_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Trickler:
    """Answers a valid ``200 OK`` one byte every ``tick`` seconds (about 14 s in all) until closed."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"." * 100 + b"\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self, tick: float = 0.1, tls: ssl.SSLContext | None = None, at_once: int = 0) -> None:
        self.tick = tick
        self.tls = tls
        self.at_once = at_once  # bytes of RESPONSE sent at once (e.g. the status line)
        self.connections = 0
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/hook/{TOKEN}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        with conn:
            conn.recv(65536)
            conn.sendall(self.RESPONSE[: self.at_once])
            for byte in self.RESPONSE[self.at_once :]:
                if self.stopped.wait(self.tick):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client gave up
                    return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    server = Webhook()
    yield server
    server.close()


@pytest.fixture
def target() -> Iterator[Webhook]:
    """Where redirects point: it must receive nothing."""
    server = Webhook()
    yield server
    server.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    yield server
    server.close()


@pytest.fixture
def tls_trickler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trickler]:
    """A trickler behind TLS with a self-signed certificate for 127.0.0.1 that the client is told to trust."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Trickler(tls=context)
    yield server
    server.close()


def state_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def assert_masked(output: str, base: str) -> None:
    assert TOKEN not in output and QUERY_TOKEN not in output, output
    assert f"{base}/***" in output, output


# --------------------------------------------------------------------------- redirects
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_the_target_receives_nothing(
    code: int, hook: Webhook, target: Webhook, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook.status, hook.location = code, f"{target.base}/elsewhere/{TOKEN}"
    state = tmp_path / "state.json"
    assert watch(store_url, state, "--webhook", hook.url, "--no-drift") == 0
    out = capsys.readouterr().out
    assert hook.requests and all(method == "POST" for method, _, _ in hook.requests)
    assert target.requests == []
    assert state_of(state) == {}
    assert f"answered HTTP {code}, a redirect to {target.base}/***: not followed" in out
    assert_masked(out, hook.base)


def test_an_alert_refused_by_a_redirect_is_sent_at_the_next_check(
    hook: Webhook, target: Webhook, store_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    hook.status, hook.location = 302, f"{target.base}/hook"
    check(store_url, state, "--webhook", hook.url)
    refused = keys(hook)
    assert refused and state_of(state) == {}
    hook.status = 200
    hook.requests.clear()
    check(store_url, state, "--webhook", hook.url)
    assert keys(hook) == sorted(state_of(state)) == delivered_at_once(store_url, tmp_path)
    assert set(keys(hook)) <= set(refused)
    assert target.requests == []


# --------------------------------------------------------------------------- total timeout
def test_a_trickling_webhook_holds_one_delivery_no_longer_than_the_total_timeout(trickler: Trickler) -> None:
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError) as failure:
        post_webhook(trickler.url, ALERT, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 4.0  # 1 s and scheduling slack; the trickled answer takes about 14 s
    assert failure.value.unreachable
    assert str(failure.value) == f"webhook {trickler.url.split('/hook')[0]}/*** did not answer within 1 s"


def test_a_status_line_sent_at_once_then_trickled_headers_is_not_a_delivery() -> None:
    """At the deadline the connection is shut: http.client then reads the end of the headers and
    would hand back the ``200`` it saw first, as if the alert had been delivered."""
    trickler = Trickler(at_once=len(b"HTTP/1.1 200 OK\r\n"))
    try:
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError, match=r"did not answer within 1 s$") as failure:
            post_webhook(trickler.url, ALERT, timeout=1.0)
        assert time.monotonic() - started < 4.0
        assert failure.value.unreachable
    finally:
        trickler.close()


def test_the_total_timeout_also_holds_over_tls(tls_trickler: Trickler) -> None:
    """TLS takes over the socket object: the watchdog must still reach the connection."""
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError, match=r"did not answer within 1 s$"):
        post_webhook(tls_trickler.url, ALERT, timeout=1.0)
    assert time.monotonic() - started < 4.0
    assert tls_trickler.connections == 1


def test_after_a_timeout_the_checks_alerts_stay_unsent_and_go_out_at_the_next_check(
    trickler: Trickler, hook: Webhook, store_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    out = check(store_url, state, "--webhook", trickler.url, "--webhook-timeout", "1s")
    assert "did not answer within 1 s (will retry at the next check)" in out
    assert "more alert(s) kept for the next check" in out  # not each one waiting out the timeout
    assert trickler.connections == 1
    assert state_of(state) == {}
    assert_masked(out, trickler.url.split("/hook")[0])
    check(store_url, state, "--webhook", hook.url)
    assert len(keys(hook)) > 1
    assert keys(hook) == sorted(state_of(state)) == delivered_at_once(store_url, tmp_path)


# --------------------------------------------------------------------------- failures and masking
def test_a_failing_webhook_is_reported_without_its_token_and_retried(
    hook: Webhook, store_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    hook.status = 500
    out = check(store_url, state, "--webhook", hook.url)
    assert f"webhook {hook.base}/***?token=*** answered HTTP 500: check the URL and its token" in out
    assert_masked(out, hook.base)
    assert state_of(state) == {}
    failed = keys(hook)
    hook.status = 200
    hook.requests.clear()
    check(store_url, state, "--webhook", hook.url)
    assert keys(hook) == sorted(state_of(state)) == delivered_at_once(store_url, tmp_path)
    assert set(keys(hook)) <= set(failed)


def test_a_webhook_that_hangs_up_or_fails_tls_is_reported_without_its_secrets(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    secret_url = f"https://bob:{TOKEN}@127.0.0.1:{port}/hook/{TOKEN}?token={QUERY_TOKEN}"
    for url in (secret_url.replace("https", "http"), secret_url):  # a closed connection; a failed TLS handshake
        with pytest.raises(AlertDeliveryError) as failure:
            post_webhook(url, ALERT, timeout=5)
        message = str(failure.value)
        assert message.startswith(f"cannot reach webhook {url.split(':')[0]}://bob:***@127.0.0.1:{port}/***?token=***")
        assert TOKEN not in message and QUERY_TOKEN not in message
        assert failure.value.__suppress_context__  # a traceback would not show urllib's error, URL and all
    listener.close()


def test_a_webhook_url_that_is_not_http_is_refused_before_the_first_check_without_its_token(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert watch(store_url, tmp_path / "state.json", "--webhook", f"htps://hooks.example/services/{TOKEN}") == 1
    err = capsys.readouterr().err
    assert "'htps://hooks.example/***' is not an http:// or https:// URL" in err
    assert TOKEN not in err

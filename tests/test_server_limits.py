"""Bounded resources on both ports of the real server: slow clients, connection caps, client
disconnects and decompression bombs (issue #10, item 3)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, http, otlp_request

HEADER_SECONDS, BODY_SECONDS, CAP = 2, 3, 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ("--max-connections", str(CAP), "--header-timeout", str(HEADER_SECONDS), "--body-timeout", str(BODY_SECONDS))
    proc = ServerProcess(tmp_path_factory.mktemp("limits") / "data", args=args).wait_ready()
    yield proc
    proc.stop()


def connect(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this socket (EOF or reset), without waiting."""
    sock.setblocking(False)
    try:
        sock.recv(65536)  # b"" (closed) or an error answer: either way the request was ended
    except BlockingIOError:
        return False
    except OSError:
        pass  # reset
    return True


def wait_closed(socks: list[socket.socket], deadline: float) -> float:
    """Seconds until every socket was closed by the server (poll with a deadline)."""
    start = time.monotonic()
    open_ = list(socks)
    while open_ and time.monotonic() - start < deadline:
        open_ = [s for s in open_ if not closed_by_server(s)]
        time.sleep(0.1)
    assert not open_, f"{len(open_)} of {len(socks)} slow connections still open after {deadline} s"
    return time.monotonic() - start


def trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One byte per second on every socket, like the slow client in the issue."""
    while not stop.wait(1.0):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(b"x")


def test_slow_header_clients_are_cut_off_and_ping_answers_meanwhile(server: ServerProcess) -> None:
    slow = [connect(server.http_port, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") for _ in range(4 * CAP)]
    stop = threading.Event()
    threading.Thread(target=trickle, args=(slow, stop), daemon=True).start()
    try:
        for _ in range(5):  # over the cap of 50: idle connections make room for new ones
            started = time.monotonic()
            assert http("GET", f"{server.http_url}/ping", timeout=3)[2] == b"Ok.\n"
            assert time.monotonic() - started < 2
        assert wait_closed(slow, HEADER_SECONDS + 5) <= HEADER_SECONDS + 5
    finally:
        stop.set()
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("port", ["otlp", "query"])
def test_a_body_sent_one_byte_at_a_time_is_cut_off(server: ServerProcess, port: str) -> None:
    if port == "otlp":
        head = b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        number = server.otlp_port
    else:
        head = b"POST /?query=INSERT%20INTO%20llm_scores%20FORMAT%20JSONEachRow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        number = server.http_port
    slow = [connect(number, head + b"Content-Length: 100000\r\n\r\nx") for _ in range(5)]
    stop = threading.Event()
    threading.Thread(target=trickle, args=(slow, stop), daemon=True).start()
    try:
        took = wait_closed(slow, BODY_SECONDS + 5)
        assert took >= BODY_SECONDS - 1.5
    finally:
        stop.set()
        for sock in slow:
            sock.close()


def test_each_client_disconnect_mid_body_is_one_log_line(server: ServerProcess) -> None:
    before = server.output
    heads = [
        (server.otlp_port, b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"),
        (server.http_port, b"POST /?query=SELECT%201 HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    ]
    for port, head in heads * 5:
        sock = connect(port, head + b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
        sock.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.output.count("went away") - before.count("went away") < 10:
        time.sleep(0.1)
    new = server.output[len(before) :]
    assert new.count("went away") == 10
    assert "Traceback" not in new
    assert len([line for line in new.splitlines() if "too slow to send" not in line]) == 10  # one line each


def test_a_query_id_that_cannot_be_a_header_is_refused_without_a_traceback(server: ServerProcess) -> None:
    """``query_id`` is echoed in ``X-ClickHouse-Query-Id``: with a CR/LF in it h11 raised while
    answering, the client got no response and the log a traceback per request (a log flood)."""
    before = server.output
    for query_id in ("a%0d%0aX-Injected:%201", "%00", "caf%C3%A9"):
        status, headers, body = http("GET", f"{server.http_url}/?query_id={query_id}&query=SELECT%201")
        assert (status, headers["x-clickhouse-exception-code"]) == (400, "36"), body
        assert "x-injected" not in headers
    assert http("GET", f"{server.http_url}/?query_id=mine-1&query=SELECT%201")[1]["x-clickhouse-query-id"] == "mine-1"
    assert "Traceback" not in server.output[len(before) :]


def bomb(size: int) -> bytes:
    """Gzip members inflating to ``size`` zero bytes in all, about ``size / 1000`` long (clients may
    send concatenated members, so the server must inflate them all, within its cap)."""
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    one = member.compress(b"\0" * (1 << 20)) + member.flush()
    return one * (size >> 20)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_gzip_bomb_gets_413_in_bounded_memory_on_both_ports(server: ServerProcess) -> None:
    body = bomb(1 << 30)  # ~1 MB inflating to 1 GiB
    assert len(body) < 1_100_000
    before = peak_rss_mb(server.process.pid)  # the engine alone: ~420 MB
    code, _, reply = http("POST", f"{server.http_url}/?query=SELECT%201", body, {"Content-Encoding": "gzip"})
    assert code == 413, reply[:200]
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/x-protobuf"}
    assert http("POST", f"{server.otlp_url}/v1/traces", body, headers)[0] == 413
    assert peak_rss_mb(server.process.pid) - before < 250  # at most the 128 MiB cap; it was +3.3 GB
    good = gzip.compress(otlp_request(3, service="after-bomb").SerializeToString())
    assert http("POST", f"{server.otlp_url}/v1/traces", good, headers)[0] == 200
    assert http("GET", f"{server.http_url}/ping")[2] == b"Ok.\n"


def test_a_body_over_the_limit_is_answered_413_after_the_client_sent_it(server: ServerProcess) -> None:
    """Answering while the client still sends resets the connection: the exporter would see a network
    error and retry. 40 MiB against the OTLP port's 16: the rest cannot sit in socket buffers."""
    body = b"\0" * (40 << 20)
    assert http("POST", f"{server.otlp_url}/v1/traces", body, {"Content-Type": "application/x-protobuf"})[0] == 413
    assert http("GET", f"{server.http_url}/ping")[2] == b"Ok.\n"


def test_many_large_bodies_at_once_stay_within_the_ports_budget(tmp_path: Path) -> None:
    """Ten clients each sending a 100 MB body: each is under the per-request cap, together they
    grew the server by ~2 GB. Past the port's budget (256 MiB) a body is refused with 503."""
    server = ServerProcess(tmp_path / "data", args=("--body-timeout", "60")).wait_ready()
    body = b"SELECT 1 -- " + b"x" * 100_000_000
    answers: list[int | str] = []

    def send() -> None:
        sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=60)
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        try:
            sock.sendall(head + body)
            answers.append(int(sock.recv(64).split()[1]))
        except OSError as exc:  # refused mid-body: the server answered and closed while we sent
            answers.append(type(exc).__name__)
        finally:
            sock.close()

    try:
        before = peak_rss_mb(server.process.pid)
        senders = [threading.Thread(target=send) for _ in range(10)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)
        grown = peak_rss_mb(server.process.pid) - before
        assert len(answers) == 10 and set(answers) <= {413, 503, "ConnectionResetError", "BrokenPipeError"}
        assert answers.count(413) < 10, answers  # some were refused by the budget
        assert grown < 900, (grown, answers)  # it was +2 GB
        assert http("POST", f"{server.http_url}/", b"SELECT 1")[2] == b"1\n"
    finally:
        server.stop()

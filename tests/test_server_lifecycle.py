"""Starting, stopping and crashing the server: no acknowledged span is ever lost."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from llmtrace.server.decode import prepare
from llmtrace.server.wal import Record, WriteAheadLog
from tests.server_process import ServerProcess, free_port, otlp_request, post_spans, start_server

BATCH = 100


class Sender(threading.Thread):
    """Posts batches of ``BATCH`` spans back to back, counting the acknowledged ones."""

    def __init__(self, server: ServerProcess, service: str) -> None:
        super().__init__(daemon=True)
        self.server, self.service = server, service
        self.acked = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        seed = 0
        while not self.stop_event.is_set():
            seed += 1
            body = otlp_request(BATCH, service=self.service, seed=seed).SerializeToString()
            try:
                status = post_spans(self.server, body)[0]
            except OSError:  # the server died mid-request: that batch was not acknowledged
                return
            if status == 200:
                self.acked += BATCH

    def wait_for(self, spans: int, deadline_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_seconds
        while self.acked < spans:
            assert time.monotonic() < deadline and self.is_alive(), f"only {self.acked} spans acknowledged"
            time.sleep(0.01)


def stored(server: ServerProcess, service: str) -> int:
    return int(server.client().command(f"SELECT count() FROM otel_traces WHERE ServiceName = '{service}'"))


def test_kill_9_during_ingest_loses_no_acknowledged_span(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    sender = Sender(server, "crash")
    sender.start()
    sender.wait_for(3_000)
    server.kill9()
    sender.stop_event.set()
    sender.join(30)
    restarted = start_server(data)
    try:
        count = stored(restarted, "crash")
        assert sender.acked <= count <= sender.acked + BATCH, (sender.acked, count)
        typed = restarted.client().command("SELECT count() FROM llm_calls WHERE ServiceName = 'crash'")
        assert typed == count  # the materialized view got each span exactly once too
    finally:
        restarted.stop()


def test_sigterm_exits_zero_and_keeps_every_acknowledged_span(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    sender = Sender(server, "graceful")
    sender.start()
    sender.wait_for(1_000)
    sender.stop_event.set()
    sender.join(30)
    assert server.stop(signal.SIGTERM) == 0, server.output
    restarted = start_server(data)
    try:
        assert stored(restarted, "graceful") == sender.acked
    finally:
        assert restarted.stop(signal.SIGINT) == 0


def test_a_taken_port_is_named_with_the_flag_that_changes_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path / "data", ports=(port, free_port()))
        assert server.process.wait(60) == 1
        assert f"port {port}" in server.output and "--otlp-port" in server.output


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = start_server(tmp_path / "data")
    try:
        second = ServerProcess(tmp_path / "data")
        assert second.process.wait(60) == 1
        assert "in use by another process" in second.output and "--data-dir" in second.output
    finally:
        first.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_idle_server_stops_cleanly_on(tmp_path: Path, sig: signal.Signals) -> None:
    server = start_server(tmp_path / "data")
    assert server.stop(sig) == 0, server.output
    assert not list((tmp_path / "data" / "llmtrace-wal").glob("*.wal"))


def test_spans_left_in_the_write_ahead_log_are_inserted_on_start(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "data" / "llmtrace-wal")
    segment = wal.new_segment()
    payload, spans = prepare(otlp_request(7, service="replayed").SerializeToString(), None, "application/x-protobuf")
    segment.append(Record(payload, spans))
    segment.close()
    with segment.path.open("ab") as torn:  # a request cut off by a crash: it was never acknowledged
        torn.write(b"\x00\x00\x10\x00partial")
    server = start_server(tmp_path / "data")
    try:
        assert stored(server, "replayed") == 7
        assert "re-inserted 7 spans" in server.output
        assert not segment.path.exists()
    finally:
        server.stop()

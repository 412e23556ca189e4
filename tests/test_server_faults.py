"""Faults during ingest: a full disk, KILL QUERY aimed at the writer, kill -9 of the server.

What must hold through all of them: every span answered 2xx is stored, none twice (in
``otel_traces`` and in the materialized ``llm_calls``), and a full disk answers 503 with
Retry-After instead of acknowledging. The disk-full test mounts a small tmpfs (the tests run
as root in CI; a failed mount fails the test with the reason).
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess, http, otlp_request, post_spans


def status(server: ServerProcess) -> dict[str, Any]:
    return dict(json.loads(http("GET", f"{server.otlp_url}/status")[2]))


def span_ids(request: Any) -> set[str]:
    return {span.span_id.hex() for span in request.resource_spans[0].scope_spans[0].spans}


def stored_ids(server: ServerProcess, service_like: str) -> tuple[set[str], int, int]:
    """(distinct span ids, rows in otel_traces, rows in llm_calls) of the matching services."""
    client = server.client()
    where = {"s": service_like}
    ids = {row[0] for row in client.query("SELECT SpanId FROM otel_traces WHERE ServiceName LIKE {s:String}",
                                          parameters=where).result_rows}  # fmt: skip
    traces = client.query("SELECT count() FROM otel_traces WHERE ServiceName LIKE {s:String}", parameters=where)
    calls = client.query("SELECT count() FROM llm_calls WHERE ServiceName LIKE {s:String}", parameters=where)
    return ids, int(traces.result_rows[0][0]), int(calls.result_rows[0][0])


def settled(stored: tuple[set[str], int, int], acked: set[str]) -> bool:
    ids, traces, calls = stored
    return ids >= acked and traces == calls


def wait_for(predicate: Any, deadline: float = 90.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"this test needs to mount a tmpfs (root): {done.stderr.decode()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_503_and_loses_no_acknowledged_span(tiny_disk: Path) -> None:
    server = ServerProcess(tiny_disk / "data").wait_ready()
    try:
        ballast = fill(tiny_disk)
        acked: set[str] = set()
        answers: list[tuple[int, str | None]] = []
        for i in range(400):
            request = otlp_request(50, service="full-disk", seed=1000 + i)
            code, headers, _ = post_spans(server, request.SerializeToString())
            answers.append((code, headers.get("retry-after")))
            if code == 200:
                acked |= span_ids(request)
            if sum(c == 503 for c, _ in answers) >= 20:
                break
        assert {c for c, _ in answers} == {200, 503}, answers
        assert all(after for c, after in answers if c == 503)
        assert status(server)["stored_spans"] < len(acked)  # the database was full too
        ballast.unlink()
        assert wait_for(lambda: settled(stored_ids(server, "full-disk"), acked))
        ids, traces, calls = stored_ids(server, "full-disk")
        assert (len(ids), traces, calls) == (len(acked), len(acked), len(acked))
        assert status(server)["rejected_spans"] == 0
        assert not list((tiny_disk / "data" / "llmtrace-wal").glob("rejected/*"))
    finally:
        server.stop()


class Senders:
    """Threads posting unique spans; a span counts as acknowledged only on a 200."""

    def __init__(self, server: ServerProcess, threads: int = 3) -> None:
        self.server = server
        self.acked: set[str] = set()
        self.unknown = 0  # requests whose answer was lost with the server (may or may not be stored)
        self.unavailable = 0  # 503 answers (retried)
        self.unexpected: list[int] = []  # any other status: a bug
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def __enter__(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self, t: int) -> None:
        for i in range(10**6):
            if self.stop.is_set():
                return
            request = otlp_request(random.Random(i).randint(1, 40), service=f"load-{t}", seed=t * 10**6 + i)
            self._send(request)

    def _send(self, request: Any) -> None:
        body = request.SerializeToString()
        while not self.stop.is_set():
            try:
                code, _, _ = post_spans(self.server, body)
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ConnectionRefusedError):  # server down: surely not taken
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.unknown += 1
                return
            except OSError:  # connection reset by the kill: the answer is lost
                with self._lock:
                    self.unknown += 1
                return
            if code == 200:
                with self._lock:
                    self.acked |= span_ids(request)
                return
            with self._lock:
                if code != 503:
                    self.unexpected.append(code)
                    return
                self.unavailable += 1  # retried, as exporters do
            time.sleep(0.05)


def kill_writer_inserts(server: ServerProcess, stop: threading.Event, kills: list[int]) -> None:
    """A read-only client aiming KILL QUERY at the writer's INSERTs, as in the issue."""
    query = urllib.parse.quote("KILL QUERY WHERE query LIKE 'INSERT INTO otel_traces%' ASYNC")
    while not stop.is_set():
        try:
            code, _, body = http("POST", f"{server.http_url}/?readonly=1&query={query}", b"", timeout=5)
        except OSError:
            time.sleep(0.05)
            continue
        kills.append(body.count(b"\n") if code == 200 else 0)
        time.sleep(0.01)


def killed_inserts(log: str) -> int:
    """INSERTs the writer saw killed: raised QUERY_WAS_CANCELLED, or "succeeded" storing nothing."""
    return sum(("QUERY_WAS_CANCELLED" in line or "not in the table after the INSERT" in line)
               for line in log.splitlines())  # fmt: skip


def fill(disk: Path, leave: int = 2_000_000) -> Path:
    """Fill the disk but ``leave`` bytes. The server writes to it meanwhile: if it fills first
    (ENOSPC, seen once in CI), the ballast gives ``leave`` bytes back."""
    free = os.statvfs(disk)
    ballast = disk / "ballast"
    todo = memoryview(b"\0" * max(0, free.f_bavail * free.f_frsize - leave))
    with ballast.open("wb", buffering=0) as out:
        try:
            while todo:
                todo = todo[out.write(todo) :]
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    if os.statvfs(disk).f_bavail * free.f_frsize < leave // 2:
        os.truncate(ballast, max(0, ballast.stat().st_size - leave))
    return ballast


def test_kill_query_disk_full_and_kill_9_during_ingest_lose_and_duplicate_nothing(tiny_disk: Path) -> None:
    """The load test: 3 senders; KILL QUERY at the writer throughout; the disk fills up and is
    freed; the server is killed with -9 and restarted. Acknowledged == stored, none twice."""
    data = tiny_disk / "data"
    stop_faults = tiny_disk.parent / "stop-faults"  # off the tiny disk: it must be creatable when full
    faulty = {  # KILL from inside too, should the query port refuse it; until the test says stop
        "LLMTRACE_FAULT_KILL_INSERTS_MS": "80",
        "LLMTRACE_FAULT_STOP_FILE": str(stop_faults),
    }
    server = ServerProcess(data, faulty).wait_ready()
    kills: list[int] = []
    stop_killing = threading.Event()
    with Senders(server) as senders:
        killers = [threading.Thread(target=kill_writer_inserts, args=(server, stop_killing, kills), daemon=True)
                   for _ in range(3)]  # fmt: skip
        for killer in killers:
            killer.start()
        assert wait_for(lambda: len(senders.acked) > 3000, 60)
        ballast = fill(tiny_disk)
        assert wait_for(lambda: senders.unavailable >= 20, 60)  # the full log answers 503
        ballast.unlink()
        acked_when_full = len(senders.acked)
        assert wait_for(lambda: len(senders.acked) > acked_when_full + 2000, 60)
        server.kill9()
        cancelled = killed_inserts(server.output)
        acked_before_crash = len(senders.acked)
        server = ServerProcess(data, faulty, ports=(server.otlp_port, server.http_port))
        senders.server = server
        server.wait_ready()
        assert wait_for(lambda: len(senders.acked) > acked_before_crash + 3000, 60)
        # Go on until a KILL has hit an INSERT at least once (a fast run can finish between kills).
        assert wait_for(lambda: cancelled + killed_inserts(server.output) > 0, 60)
        stop_killing.set()
        for killer in killers:
            killer.join(30)
    # The faults end here: on a busy machine every INSERT outlasts the 80 ms interval, so with the
    # killing still on, each retry of the backlog would be cancelled and nothing could settle.
    stop_faults.touch()
    cancelled += killed_inserts(server.output)
    try:
        # The writer may still be between a killed INSERT's retries (otel_traces stored,
        # llm_calls filled in on the retry), so wait for both tables, not only the first.
        wait_for(lambda: settled(stored_ids(server, "load-%"), senders.acked))
        ids, traces, calls = stored_ids(server, "load-%")
        assert settled((ids, traces, calls), senders.acked), (
            f"{len(senders.acked - ids)} of {len(senders.acked)} acknowledged spans not stored, otel_traces"
            f" {traces} vs llm_calls {calls} rows; /status {status(server)}; log tail {server.output[-3000:]}"
        )
        assert senders.acked <= ids
        assert traces == len(ids) and calls == len(ids)  # no duplicates, in the view-fed table too
        assert not list((data / "llmtrace-wal").glob("rejected/*"))
        assert senders.unexpected == []
        print(f"acked {len(senders.acked)} spans, stored {len(ids)}, unknown {senders.unknown} requests,"
              f" {senders.unavailable} 503s, {len(kills)} KILL QUERY over HTTP ({sum(kills)} hit),"
              f" {cancelled} INSERTs seen killed")  # fmt: skip
    finally:
        server.stop()


def test_a_log_write_failing_on_a_full_disk_leaves_no_torn_record(tiny_disk: Path) -> None:
    from llmtrace.server.wal import Record, WriteAheadLog, read_segment

    segment = WriteAheadLog(tiny_disk / "wal").new_segment()
    segment.append(Record(b'["first"]\n', 1))
    disk = os.statvfs(tiny_disk)
    (tiny_disk / "ballast").write_bytes(b"\0" * (disk.f_bavail * disk.f_frsize - 4096))
    with pytest.raises(OSError):
        segment.append(Record(b"x" * 1_000_000 + b"\n", 1))  # partly written, then ENOSPC
    (tiny_disk / "ballast").unlink()
    segment.append(Record(b'["after the disk was freed"]\n', 1))  # acknowledged: must replay
    segment.close()
    assert [r.payload for r in read_segment(segment.path)] == [b'["first"]\n', b'["after the disk was freed"]\n']


def test_a_backlog_too_big_for_the_space_freed_still_drains_in_pieces(tiny_disk: Path) -> None:
    """A batch acknowledged while the disk was full is written once some space is back, even
    when that space is less than eight times the batch (it waited for that much for ever), and
    ``/status`` counts the batch being retried as backlog (it said 0)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    server = ServerProcess(tiny_disk / "data").wait_ready()
    try:
        request = otlp_request(2000, service="big-backlog", seed=7)
        noise = random.Random(7)
        for span in request.resource_spans[0].scope_spans[0].spans:  # ~4 KB that do not compress
            span.attributes.append(KeyValue(key="pad", value=AnyValue(string_value=noise.randbytes(2048).hex())))
        ballast = fill(tiny_disk, leave=30 * 1024 * 1024)  # the log takes it, the writer waits
        code, _, body = post_spans(server, request.SerializeToString())
        assert code == 200, body
        assert wait_for(lambda: status(server)["failing_since"] is not None, 30)
        assert status(server)["backlog_spans"] == 2000
        free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
        os.truncate(ballast, ballast.stat().st_size - (60 * 1024 * 1024 - free))  # 60 MB free: < 8 x 8 MB
        assert wait_for(lambda: settled(stored_ids(server, "big-backlog"), span_ids(request)), 60)
        ids, traces, calls = stored_ids(server, "big-backlog")
        assert (len(ids), traces, calls) == (2000, 2000, 2000)
        # The rows are readable a moment before the writer, having verified them, drops its count.
        assert wait_for(lambda: status(server)["backlog_spans"] == 0, 30), status(server)
    finally:
        server.stop()

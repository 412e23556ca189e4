"""Start ``llmtrace server`` as a real subprocess for the server tests (no tests in here).

Each server gets free ports and its own data dir; readiness is a ``/ping`` poll with a
deadline, never a sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 60.0


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (all bound at once, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """One request; returns (status, lower-cased headers, body) for every status, never raising."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class ServerProcess:
    """``python -m llmtrace.cli server`` on free ports over ``data_dir``."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, *, ports: tuple[int, int] | None = None,
                 args: tuple[str, ...] = ()):  # fmt: skip
        self.data_dir = data_dir
        self.otlp_port, self.http_port = ports or tuple(free_ports(2))
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.http_port}.log"
        environment = {k: v for k, v in os.environ.items() if k != "LLMTRACE_PASSWORD"}
        environment.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        command = [sys.executable, "-m", "llmtrace.cli", "server", "--data-dir", str(data_dir),
                   "--otlp-port", str(self.otlp_port), "--http-port", str(self.http_port), *args]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=environment)

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline_seconds: float = STARTUP_SECONDS) -> ServerProcess:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output}")
            try:
                if http("GET", f"{self.http_url}/ping", timeout=2)[2] == b"Ok.\n" and "ready" in self.output:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {deadline_seconds} s:\n{self.output}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        finally:
            self._log.close()
        return code

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self._log.close()

    def client(self, **kwargs: Any) -> Any:
        import clickhouse_connect

        return clickhouse_connect.get_client(host="127.0.0.1", port=self.http_port, **kwargs)


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(data_dir, env).wait_ready()


def otlp_request(spans: int, *, service: str = "svc", seed: int = 0, attributes: int = 8) -> Any:
    """An ExportTraceServiceRequest with ``spans`` GenAI-looking CLIENT spans."""
    import random

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    rnd = random.Random(seed)
    now = time.time_ns()
    made = []
    for i in range(spans):
        attrs = [
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
            KeyValue(key="gen_ai.provider.name", value=AnyValue(string_value="openai")),
            KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
            KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=10 + i)),
            KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=5)),
        ]
        attrs += [KeyValue(key=f"extra.{k}", value=AnyValue(string_value=f"value {k}")) for k in range(attributes - 5)]
        start = now - rnd.randint(0, 10**9)
        made.append(
            Span(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), name="chat gpt-4o-mini",
                 kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + 250_000_000,
                 attributes=attrs)
        )  # fmt: skip
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    scope = InstrumentationScope(name="tests", version="1")
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=made)])]
    )


def post_spans(server: ServerProcess, body: bytes, content_type: str = "application/x-protobuf",
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    return http("POST", f"{server.otlp_url}/v1/traces", body, {"Content-Type": content_type, **(headers or {})})


def stop_signal_name(code: int) -> str:
    return signal.Signals(-code).name if code < 0 else str(code)

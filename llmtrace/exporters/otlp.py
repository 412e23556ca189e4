"""OTLP/HTTP (protobuf) span exporter on the standard library: llmtrace's default pipeline.

OpenTelemetry's ``OTLPSpanExporter`` sends through ``requests`` and encodes with generated
protobuf classes: ~6 MB of an app's memory and ~200 modules for what is one POST. This
exporter sends the same bytes (:mod:`llmtrace.exporters._otlp_proto`) with ``http.client``
(which the LLM SDKs' HTTP stacks have already imported), and keeps the OTLP exporter's
contract: the ``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`` / ``TIMEOUT`` / ``COMPRESSION`` /
``CERTIFICATE`` settings, retries with exponential backoff on 429/502/503/504 and on
connection errors within the timeout, and a failure result (counted by llmtrace) otherwise.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401 - socket encodes host names with it at the first connect: import it here,
import http.client  # on the thread importing this module (the app's), never on the exporting thread
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmtrace.exporters._otlp_proto import encode_spans

log = logging.getLogger("llmtrace")

_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_RETRIES = 6


def _env(name: str, env: Mapping[str, str]) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_{name}``, else ``OTEL_EXPORTER_OTLP_{name}``."""
    value = env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}")
    return value.strip() if value and value.strip() else None


def _headers(raw: str | None) -> dict[str, str]:
    """The OTel spec's ``key1=value1,key2=value2`` (URL-encoded values); malformed pairs are skipped."""
    headers = {}
    for pair in (raw or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip()).lower()] = unquote(value.strip())
        elif pair.strip():
            log.warning("llmtrace: ignoring malformed OTLP header %r (expected key=value)", pair.strip())
    return headers


class OtlpHttpSpanExporter(SpanExporter):
    """POSTs spans as OTLP protobuf to ``endpoint`` (the full ``.../v1/traces`` URL)."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        certificate: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._endpoint = endpoint
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"OTLP endpoint {endpoint!r} is not an http(s) URL; set e.g. http://localhost:4318")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._headers = {**_headers(_env("HEADERS", env)), **(headers or {})}
        self._headers["content-type"] = "application/x-protobuf"
        self._timeout = timeout if timeout is not None else float(_env("TIMEOUT", env) or 10)
        self._gzip = (compression or _env("COMPRESSION", env) or "none").lower() == "gzip"
        if self._gzip:
            self._headers["content-encoding"] = "gzip"
        self._certificate = certificate or _env("CERTIFICATE", env)
        self._connection: http.client.HTTPConnection | None = None
        self._shutdown = threading.Event()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                import ssl  # loaded by the SDKs' HTTP stacks already; only https needs it

                context = ssl.create_default_context(cafile=self._certificate)
                self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=context)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._connection.timeout = timeout
        return self._connection

    def _post(self, body: bytes, timeout: float) -> tuple[int, str, float | None]:
        """One attempt: the status, a reason and the server's Retry-After seconds, or a raised OSError /
        HTTPException."""
        connection = self._connect(timeout)
        try:
            connection.request("POST", self._path, body=body, headers=self._headers)
            response = connection.getresponse()
            detail = response.read()  # read in full so the connection can be reused
        except BaseException:
            self._close()
            raise
        retry_after = response.getheader("retry-after", "")
        wait = float(retry_after) if retry_after.strip().isdigit() else None
        return response.status, f"HTTP {response.status} {response.reason}: {detail[:200]!r}", wait

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown.is_set():
            log.warning("llmtrace: exporter already shut down; %d spans not sent", len(spans))
            return SpanExportResult.FAILURE
        body = encode_spans(spans)
        if self._gzip:
            compressor = zlib.compressobj(wbits=31)  # the gzip container
            body = compressor.compress(body) + compressor.flush()
        deadline = time.monotonic() + self._timeout
        for attempt in range(_MAX_RETRIES):
            try:
                status, reason, wait = self._post(body, max(deadline - time.monotonic(), 0.001))
            except (OSError, http.client.HTTPException) as exc:
                status, reason, wait = 0, f"{type(exc).__name__}: {exc}", None
            if 200 <= status < 300:
                return SpanExportResult.SUCCESS
            delay = wait if wait is not None else 2**attempt * random.uniform(0.8, 1.2)
            retryable = status == 0 or status in _RETRYABLE
            if not retryable or attempt + 1 == _MAX_RETRIES or time.monotonic() + delay > deadline:
                break
            if self._shutdown.wait(delay):
                break
        log.warning("llmtrace: could not export %d spans to %s (%s)", len(spans), self._endpoint, reason)
        return SpanExportResult.FAILURE

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def shutdown(self) -> None:
        self._shutdown.set()
        self._close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # each export is sent synchronously

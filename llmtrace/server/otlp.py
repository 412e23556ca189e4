"""OTLP/HTTP trace receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzip).

Follows the OTLP/HTTP spec: the response is an ``ExportTraceServiceResponse`` in the
request's encoding; a malformed body is a 400 whose ``google.rpc.Status`` says why; 413 for
a body over the limit (checked again after inflating, so gzip bombs stop early); 415 for an
unknown content type or encoding; 503 with ``Retry-After`` when the writer is backlogged or
stopping, when the bodies being received fill the port's budget (256 MiB in all), and when the
write-ahead log cannot be written (disk full), which exporters retry.
A 200 is sent only once the spans are in the write-ahead log (see
:mod:`llmtrace.server.batcher`); spans the store would not keep (see
:func:`llmtrace.server.decode.storable`) are left out and reported in the response's
``partial_success`` (all of them: 400). ``GET /status`` reports what ingest did (JSON).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from llmtrace.server.batcher import Backlogged, ShuttingDown, SpanWriter
from llmtrace.server.bodies import BodyBudget, BodyError, BodyTooLarge, ServerBusy, UnsupportedEncoding, read_body
from llmtrace.server.decode import JSON, MAX_BODY_BYTES, PROTOBUF, OtlpDecodeFailed, Prepared
from llmtrace.server.wal import Record
from llmtrace.server.workers import DecodePool, WorkerLost

__all__ = ["otlp_app"]

logger = logging.getLogger(__name__)

_CONTENT_TYPES = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF, "application/json": JSON}
_GRPC_INVALID_ARGUMENT = 3
_GRPC_UNAUTHENTICATED = 16
_GRPC_UNAVAILABLE = 14
_BODY_BUDGET_BYTES = 16 * MAX_BODY_BYTES  # all OTLP bodies held at once (each at most MAX_BODY_BYTES)


def _status(content_type: str, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error carrying a ``google.rpc.Status`` in the request's encoding."""
    if content_type == PROTOBUF:
        from google.rpc.status_pb2 import Status  # type: ignore[import-untyped,unused-ignore]

        body = Status(code=code, message=message).SerializeToString()
        return Response(body, status, headers=headers, media_type=PROTOBUF)
    body = json.dumps({"code": code, "message": message}).encode()
    return Response(body, status, headers=headers, media_type=JSON)


def _success(content_type: str, prepared: Prepared) -> Response:
    """An ExportTraceServiceResponse: empty when every span was taken (no bytes in protobuf,
    ``{}`` in JSON), else with ``partial_success`` saying how many spans were rejected and why."""
    if not prepared.rejected:
        return Response(b"" if content_type == PROTOBUF else b"{}", 200, media_type=content_type)
    message = f"{prepared.rejected} span(s) rejected: {prepared.reason}"
    if content_type == PROTOBUF:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTracePartialSuccess,
            ExportTraceServiceResponse,
        )

        partial = ExportTracePartialSuccess(rejected_spans=prepared.rejected, error_message=message)
        body = ExportTraceServiceResponse(partial_success=partial).SerializeToString()
        return Response(body, 200, media_type=PROTOBUF)
    reply = {"partialSuccess": {"rejectedSpans": str(prepared.rejected), "errorMessage": message}}
    return Response(json.dumps(reply), 200, media_type=JSON)


def _authorized(request: Request, password: str | None) -> bool:
    if not password:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), password.encode())


class _Receiver:
    def __init__(
        self, writer: SpanWriter, decoders: DecodePool, password: str | None, oldest: Callable[[], int | None]
    ) -> None:
        self.writer = writer
        self.decoders = decoders
        self.password = password
        self.oldest = oldest
        self.unlogged = 0
        self.unlogged_at = -10.0
        self.budget = BodyBudget(_BODY_BUDGET_BYTES)

    async def status(self, request: Request) -> Response:
        if not _authorized(request, self.password):
            return Response(json.dumps({"code": _GRPC_UNAUTHENTICATED, "message": "missing or wrong credentials"}),
                            401, {"WWW-Authenticate": 'Bearer realm="llmtrace"'}, media_type=JSON)  # fmt: skip
        return Response(json.dumps(self.writer.stats.snapshot(self.writer.backlog())), media_type=JSON)

    def _log_unlogged(self, exc: OSError) -> None:
        """One error line per 10 s while the log cannot be written, not one per request."""
        now = time.monotonic()
        self.unlogged += 1
        if now - self.unlogged_at >= 10:
            logger.error("could not log %d OTLP request(s), answered 503 (disk full?): %s", self.unlogged, exc)
            self.unlogged, self.unlogged_at = 0, now

    def _rejected(self, exc: Exception) -> None:
        """Count and log a request refused for its content (400): the client was told why."""
        self.writer.stats.add_refused(str(exc))
        logger.warning("refused an OTLP request (400): %s", exc)

    async def traces(self, request: Request) -> Response:
        raw_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        content_type = _CONTENT_TYPES.get(raw_type)
        reply_type = content_type or JSON
        if not _authorized(request, self.password):
            headers = {"WWW-Authenticate": 'Bearer realm="llmtrace"'}
            message = "missing or wrong credentials: send Authorization: Bearer <LLMTRACE_PASSWORD>"
            return _status(reply_type, 401, _GRPC_UNAUTHENTICATED, message, headers)
        if content_type is None:
            message = f"unsupported Content-Type {raw_type or '(none)'!r}: use {PROTOBUF} or {JSON}"
            return _status(JSON, 415, _GRPC_INVALID_ARGUMENT, message)
        held = self.budget.reservation()
        try:
            body = await read_body(request.stream(), MAX_BODY_BYTES, held)
            encoding = request.headers.get("content-encoding")
            prepared = await self.decoders.prepare(body, encoding, content_type, self.oldest())
            self.writer.accept(Record(prepared.payload, prepared.spans, keys=prepared.keys))  # one write() to the log
        except ServerBusy as exc:
            return _status(content_type, 503, _GRPC_UNAVAILABLE, f"{exc}; retry later", {"Retry-After": "1"})
        except BodyTooLarge as exc:
            return _status(content_type, 413, _GRPC_INVALID_ARGUMENT, str(exc))
        except UnsupportedEncoding as exc:
            return _status(content_type, 415, _GRPC_INVALID_ARGUMENT, str(exc))
        except (BodyError, OtlpDecodeFailed) as exc:
            self._rejected(exc)
            return _status(content_type, 400, _GRPC_INVALID_ARGUMENT, str(exc))
        except (Backlogged, ShuttingDown, WorkerLost) as exc:
            return _status(content_type, 503, _GRPC_UNAVAILABLE, f"{exc}; retry later", {"Retry-After": "1"})
        except OSError as exc:  # the write-ahead log could not be written (disk full?)
            self._log_unlogged(exc)
            message = f"spans could not be stored: {exc}"
            return _status(content_type, 503, _GRPC_UNAVAILABLE, message, {"Retry-After": "5"})
        finally:
            held.release()
        if prepared.rejected:
            self.writer.stats.add_rejected("unstorable_span", prepared.rejected, prepared.reason)
            logger.warning("accepted %d span(s), rejected %d: %s", prepared.spans, prepared.rejected, prepared.reason)
        return _success(content_type, prepared)


async def _not_found(request: Request) -> Response:
    message = f"no OTLP endpoint at {request.url.path}; send traces to POST /v1/traces"
    return Response(json.dumps({"code": 5, "message": message}), 404, media_type=JSON)


def otlp_app(
    writer: SpanWriter,
    decoders: DecodePool,
    password: str | None = None,
    oldest: Callable[[], int | None] = lambda: None,
) -> ASGIApp:
    """The ASGI app of the OTLP port; ``oldest()``: the earliest span start the tables keep now."""
    from starlette.applications import Starlette

    receiver = _Receiver(writer, decoders, password, oldest)

    async def method_not_allowed(request: Request, exc: Any) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 405:
            return Response(json.dumps({"code": 12, "message": "use POST"}), 405, {"Allow": "POST"}, media_type=JSON)
        return await _not_found(request)

    routes = [
        Route("/v1/traces", receiver.traces, methods=["POST"]),
        Route("/status", receiver.status, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: method_not_allowed, 405: method_not_allowed})

"""ClickHouse's HTTP interface over the embedded engine, enough for clickhouse-connect and curl.

What is honoured, as ClickHouse does it: the query in ``query=`` and/or the POST body (joined
by a newline, INSERT data following its ``FORMAT`` clause), ``database``, ``default_format``,
``param_<name>`` for ``{name:Type}``, every other URL parameter as a setting, ``session_id``
(SETs persist), ``readonly`` (and GET implies ``readonly=2``), ``Content-Encoding`` of the
body (gzip, deflate, zstd, lz4), response compression with ``enable_http_compression=1``,
the ``X-ClickHouse-*`` response headers, and errors as ``Code: N. DB::Exception: ...`` with
ClickHouse's status codes. Not supported: ClickHouse's native ``compress``/``decompress``
block compression and external data tables (both answered with NOT_IMPLEMENTED).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Sequence

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmtrace.server import chcompat
from llmtrace.server.bodies import (
    BodyBudget,
    BodyError,
    BodyTooLarge,
    Reservation,
    ServerBusy,
    UnsupportedEncoding,
    decompress,
    read_body,
)
from llmtrace.server.engine import Engine
from llmtrace.server.executor import ClickHouseError, Outcome, Sessions, execute
from llmtrace.server.executor import Request as QueryRequest
from llmtrace.server.sqltext import MAX_QUERY_SIZE, SqlTextError, parse_statement

__all__ = ["MAX_BODY_BYTES", "ClickHouseHttp"]

MAX_BODY_BYTES = 128 * 1024 * 1024
"""Largest request body (INSERT data included), before and after decompression: inflating is
streamed and stops here, so a compression bomb costs at most this much memory. Larger inserts
go in several requests (clickhouse-connect's inserts are blocks far below this)."""
BODY_BUDGET_BYTES = 2 * MAX_BODY_BYTES
"""All request bodies the port holds at once (as received plus as inflated); past it a request
gets 503 (TOO_MANY_SIMULTANEOUS_QUERIES) instead of the server growing by a body per client."""

# URL parameters the HTTP handler consumes itself; every other one is a setting.
_TRANSPORT = frozenset(
    {"query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
     "session_timeout", "session_check", "close_session", "buffer_size", "wait_end_of_query",
     "client_protocol_version", "role", "stacktrace", "compress", "decompress", "readonly"}
)  # fmt: skip
_HEALTH = b"Ok.\n"
_HEADER_SAFE = re.compile(r"[\x20-\x7e]{1,1024}")
_VISIBILITY_WAIT_SECONDS = 30.0
_NOT_FOUND = (
    "There is no handle {path}\n\nUse / or /ping for health checks.\nOr /replicas_status for more "
    "sophisticated health checks.\n\nSend queries from your program with POST method or GET /?query=...\n"
)


class _Params:
    """The request's URL parameters (and multipart form fields), sorted into their roles."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.transport: dict[str, str] = {}
        self.settings: dict[str, str] = {}
        self.binds: dict[str, str] = {}
        for name, value in items:
            if name.startswith("param_"):
                self.binds[name[len("param_") :]] = value
            elif name == "readonly" and name in self.transport:
                self.transport[name] = _stricter(self.transport[name], value)
            elif name in _TRANSPORT:
                self.transport[name] = value
            else:
                self.settings[name] = value

    def get(self, name: str, default: str = "") -> str:
        return self.transport.get(name, default)


def _stricter(first: str, second: str) -> str:
    """Of two ``readonly`` values (URL and form field), the one that allows less: a form field
    must not lift what the URL asked for. A value that is not a number is kept (and refused)."""
    try:
        return str(max(int(first), int(second)))
    except ValueError:
        return second if first.strip().isdigit() else first


def _readonly(method: str, params: _Params) -> int:
    try:
        value = int(params.get("readonly") or params.settings.get("readonly", "0") or "0")
    except ValueError:
        raise ClickHouseError(36, "readonly must be 0, 1 or 2") from None
    if method in ("GET", "HEAD") and value == 0:
        return 2  # ClickHouse runs GET requests read-only (settings may still change)
    return value


def _int_setting(params: _Params, name: str, default: int) -> int:
    raw = params.settings.get(name) or params.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ClickHouseError(36, f"{name} must be an integer, got {raw!r}") from None


def _busy(exc: ServerBusy) -> ClickHouseError:
    return ClickHouseError(202, f"{exc}; retry later")


def _inflate(body: bytes, encoding: str | None, held: Reservation) -> bytes:
    try:
        return decompress(body, encoding, MAX_BODY_BYTES, held=held)
    except ServerBusy as exc:
        raise _busy(exc) from None
    except BodyTooLarge as exc:
        raise ClickHouseError(229, str(exc)) from None
    except UnsupportedEncoding as exc:
        raise ClickHouseError(89, str(exc)) from None
    except BodyError as exc:
        raise ClickHouseError(271, str(exc)) from None


class ClickHouseHttp:
    """The ASGI app of the query port."""

    def __init__(
        self,
        engine: Engine,
        password: str | None = None,
        *,
        visible: Callable[[float], bool] | None = None,
        max_concurrent_queries: int = 8,
    ) -> None:
        self.engine = engine
        self._visible = visible
        self.password = password or None
        self.sessions = Sessions()
        self._limiter = anyio.CapacityLimiter(max_concurrent_queries)
        self._budget = BodyBudget(BODY_BUDGET_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        request = Request(scope, receive)
        response = await self._dispatch(request)
        await response(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        if path in ("/ping", "/replicas_status") and method in ("GET", "HEAD"):
            return Response(_HEALTH, media_type="text/plain; charset=UTF-8")
        if path != "/":
            return Response(_NOT_FOUND.format(path=path), 404, media_type="text/plain; charset=UTF-8")
        if method not in ("GET", "POST", "HEAD"):
            error = ClickHouseError(1002, f"HTTP method {method} is not supported: use GET or POST")
            return chcompat.error_response(error, "", self.engine.version, status=405)
        query_id = request.query_params.get("query_id") or str(uuid.uuid4())
        if not _HEADER_SAFE.fullmatch(query_id):  # it is echoed in a header: h11 would raise mid-response
            error = ClickHouseError(36, "query_id must be printable ASCII (it is sent back in X-ClickHouse-Query-Id)")
            return chcompat.error_response(error, "", self.engine.version)
        held = self._budget.reservation()
        try:
            return await self._query(request, query_id, held)
        except ClickHouseError as exc:
            return chcompat.error_response(exc, query_id, self.engine.version)
        finally:
            held.release()

    async def _query(self, request: Request, query_id: str, held: Reservation) -> Response:
        items = list(request.query_params.multi_items())
        if not self._authenticated(request, _Params(items)):  # before reading any body
            raise ClickHouseError(
                516, "default: Authentication failed: password is incorrect, or there is no user with such name"
            )
        body = b""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            items += await self._form_items(request)
        elif request.method == "POST":
            body = await self._body(request, held)
        params = _Params(items)
        if params.get("compress") == "1" or params.get("decompress") == "1":
            raise ClickHouseError(
                48, "ClickHouse native compress/decompress is not supported here; use HTTP Content-Encoding"
            )
        encoding = request.headers.get("content-encoding")
        run = functools.partial(self._execute, request.method, params, body, encoding, held)
        outcome = await anyio.to_thread.run_sync(run, limiter=self._limiter)
        if outcome is None:
            return Response(_HEALTH, media_type="text/plain; charset=UTF-8")
        return self._success(request, params, query_id, outcome)

    def _execute(
        self, method: str, params: _Params, body: bytes, encoding: str | None, held: Reservation
    ) -> Outcome | None:
        """Inflate, split and run the request (in a worker thread: all of it can be slow)."""
        text = params.get("query").encode()
        body = _inflate(body, encoding, held)
        raw = text + b"\n" + body if text and body else text or body
        if not raw.strip():
            return None  # like ClickHouse: a request without a query is a health check
        query = self._query_request(method, params, raw)
        if self._visible is not None:
            self._visible(_VISIBILITY_WAIT_SECONDS)  # acknowledged spans first (read your writes)
        return execute(self.engine, self.sessions, query)

    def _query_request(self, method: str, params: _Params, raw: bytes) -> QueryRequest:
        try:
            statement = parse_statement(raw, _int_setting(params, "max_query_size", MAX_QUERY_SIZE))
        except SqlTextError as exc:
            raise ClickHouseError(exc.code, str(exc)) from None
        settings = {k: v for k, v in params.settings.items() if k != "readonly"}
        return QueryRequest(
            statement=statement,
            params=params.binds,
            settings=settings,
            readonly=_readonly(method, params),
            database=params.get("database") or None,
            default_format=params.get("default_format") or "TabSeparated",
            session_id=params.get("session_id") or None,
            session_timeout=float(_int_setting(params, "session_timeout", 60)),
        )

    async def _body(self, request: Request, held: Reservation) -> bytes:
        try:
            return await read_body(request.stream(), MAX_BODY_BYTES, held)
        except BodyTooLarge as exc:
            raise ClickHouseError(229, str(exc)) from None
        except ServerBusy as exc:
            raise _busy(exc) from None

    async def _form_items(self, request: Request) -> list[tuple[str, str]]:
        try:
            form = await request.form()
        except Exception as exc:  # malformed multipart, or python-multipart missing
            raise ClickHouseError(36, f"cannot read the multipart form: {exc}") from None
        items: list[tuple[str, str]] = []
        for name, value in form.multi_items():
            if not isinstance(value, str):
                raise ClickHouseError(48, "external data tables are not supported by llmtrace server")
            items.append((name, value))
        return items

    def _authenticated(self, request: Request, params: _Params) -> bool:
        if self.password is None:
            return True
        return chcompat.password_matches(request.headers, params.get("user"), params.get("password"), self.password)

    def _success(self, request: Request, params: _Params, query_id: str, outcome: Outcome) -> Response:
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": params.settings.get("session_timezone") or self.engine.timezone,
            "X-ClickHouse-Summary": json.dumps(outcome.summary, separators=(",", ":")),
            "X-ClickHouse-Server-Display-Name": "llmtrace",
        }
        body = outcome.body
        if outcome.output_format is not None:
            headers["X-ClickHouse-Format"] = outcome.output_format
        if params.settings.get("enable_http_compression", "0") in ("1", "true") and body:
            encoding = chcompat.pick_encoding(request.headers.get("accept-encoding", ""))
            if encoding is not None:
                body = chcompat.compress(body, encoding)
                headers["Content-Encoding"] = encoding
        media_type = chcompat.content_type(outcome.output_format)
        return Response(body, 200, headers=headers, media_type=media_type)

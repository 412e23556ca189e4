"""The small facts of ClickHouse's HTTP protocol: error bodies and status codes, content
types per format, response compression, and the ways a client may send its password."""

from __future__ import annotations

import base64
import hmac
import zlib
from collections.abc import Mapping

from starlette.responses import Response

from llmtrace.server.executor import ClickHouseError

__all__ = ["compress", "content_type", "error_response", "http_status", "password_matches", "pick_encoding"]

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp).
_BAD_REQUEST = frozenset(
    {36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223, 62, 117, 53, 321}
)
_NOT_FOUND = frozenset({60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511})
_STATUS_BY_CODE = {194: 401, 192: 403, 193: 403, 516: 403, 512: 403, 497: 403, 229: 413, 48: 501, 209: 503,
                   76: 503, 381: 411, 159: 408, 439: 503, 779: 415, 202: 503}  # fmt: skip
# Names for the codes this server raises itself (the engine's messages carry their own).
_NAMES = {36: "BAD_ARGUMENTS", 48: "NOT_IMPLEMENTED", 62: "SYNTAX_ERROR", 73: "UNKNOWN_FORMAT",
          89: "UNKNOWN_COMPRESSION_METHOD", 115: "UNKNOWN_SETTING", 202: "TOO_MANY_SIMULTANEOUS_QUERIES",
          229: "QUERY_IS_TOO_LARGE",
          271: "CANNOT_DECOMPRESS", 516: "AUTHENTICATION_FAILED", 1002: "UNKNOWN_EXCEPTION"}  # fmt: skip
_CLIENT_ERRORS_AS_400 = frozenset({89, 271})  # garbage bodies: ClickHouse says 500, a 400 is truer


def http_status(code: int) -> int:
    if code in _BAD_REQUEST or code in _CLIENT_ERRORS_AS_400:
        return 400
    if code in _NOT_FOUND:
        return 404
    return _STATUS_BY_CODE.get(code, 500)


def error_response(error: ClickHouseError, query_id: str, version: str, status: int | None = None) -> Response:
    message = error.message.rstrip()
    name = _NAMES.get(error.code)
    if name and not message.endswith(f"({name})"):
        message = f"{message} ({name})"
    body = f"Code: {error.code}. DB::Exception: {message} (version {version})\n"
    headers = {"X-ClickHouse-Exception-Code": str(error.code), "X-ClickHouse-Server-Display-Name": "llmtrace"}
    if query_id:
        headers["X-ClickHouse-Query-Id"] = query_id
    return Response(body, status or http_status(error.code), headers=headers, media_type="text/plain; charset=UTF-8")


def content_type(fmt: str | None) -> str:
    name = (fmt or "").lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "withnames" in name else "absent")
    if name.startswith("json") or name == "ndjson":
        return "application/json; charset=UTF-8"
    if name.startswith(("pretty", "vertical", "markdown", "values", "xml")):
        return "text/plain; charset=UTF-8"
    if name:
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def pick_encoding(accept_encoding: str) -> str | None:
    """The first encoding in the client's Accept-Encoding that we can produce."""
    for part in accept_encoding.split(","):
        name = part.split(";")[0].strip().lower()
        if name in ("lz4", "zstd", "gzip", "deflate"):
            return name
    return None


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.compress(body))
    if encoding == "zstd":
        try:
            from backports import zstd  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            from compression import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
        return bytes(zstd.compress(body))
    if encoding == "gzip":
        packer = zlib.compressobj(3, zlib.DEFLATED, 31)
        return packer.compress(body) + packer.flush()
    return zlib.compress(body, 3)


def password_matches(headers: Mapping[str, str], user: str, password: str, expected: str) -> bool:
    """Basic auth, ``X-ClickHouse-User``/``X-ClickHouse-Key``, ``user``/``password`` URL
    parameters, or a Bearer token; the only user is ``default``."""
    candidates: list[tuple[str, str]] = []
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        basic_user, _, basic_password = decoded.partition(":")
        candidates.append((basic_user, basic_password))
    elif scheme.lower() == "bearer":
        candidates.append(("default", value.strip()))
    if "x-clickhouse-key" in headers or "x-clickhouse-user" in headers:
        candidates.append((headers.get("x-clickhouse-user", "default"), headers.get("x-clickhouse-key", "")))
    if password or user:
        candidates.append((user or "default", password))
    return any(
        (u or "default") == "default" and hmac.compare_digest(p.encode(), expected.encode()) for u, p in candidates
    )

"""Keep web pages from driving ``llmtrace server`` (cross-site requests and DNS rebinding).

A page the developer visits can send "simple" requests to ``http://127.0.0.1:8123`` (a form
POST, an image GET) without any CORS check, and with DNS rebinding it can even read the
answers under a name of its own. Real clients (clickhouse-connect, curl, Grafana, OTLP
exporters) send no ``Origin`` and name the server by the address it listens on, browsers
do send them, so:

- a request carrying an ``Origin`` (or ``Sec-Fetch-Site: cross-site/same-site``) is refused
  unless that origin is listed in ``LLMTRACE_ALLOWED_ORIGINS``;
- a request whose ``Host`` is not a name of the bound address is refused (a rebound name is
  not): on loopback ``localhost``/``127.0.0.1``/``::1``; on a specific address, that address;
  on all interfaces (which needs a password) any name. ``LLMTRACE_ALLOWED_HOSTS`` adds names.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the dashboard imports host_allowed without the server's dependencies
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BrowserGuard", "allowed_hosts_for", "host_allowed", "is_loopback", "is_wildcard"]

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _split(value: str | None) -> frozenset[str]:
    return frozenset(item.strip().lower().rstrip("/") for item in (value or "").split(",") if item.strip())


def is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """Host names a request may use for a server bound to ``bind_host``; None means any."""
    if is_wildcard(bind_host):
        return None
    names = {bind_host.lower().strip("[]"), *(name.lower() for name in extra)}
    if is_loopback(bind_host):
        names |= _LOOPBACK_NAMES
    return frozenset(names)


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8123
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host_header: str, bind_host: str) -> bool:
    """Whether a request's ``Host`` names a listener bound to ``bind_host`` (the same rule as the
    ports': loopback names on loopback, plus ``LLMTRACE_ALLOWED_HOSTS``; any name on all
    interfaces). Used by the dashboard, which a DNS-rebound page could otherwise drive."""
    allowed = allowed_hosts_for(bind_host, _split(os.environ.get("LLMTRACE_ALLOWED_HOSTS")))
    return allowed is None or _host_name(host_header) in allowed


class BrowserGuard:
    """ASGI middleware in front of either port."""

    def __init__(self, app: ASGIApp, bind_host: str) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts_for(bind_host, _split(os.environ.get("LLMTRACE_ALLOWED_HOSTS")))
        self.allowed_origins = _split(os.environ.get("LLMTRACE_ALLOWED_ORIGINS"))

    def refusal(self, headers: dict[str, str]) -> str | None:
        """Why a request with these (lower-cased) headers is refused, or None."""
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in self.allowed_origins:
            return (f"requests from web pages (Origin: {origin}) are refused; "
                    "list trusted origins in LLMTRACE_ALLOWED_ORIGINS")  # fmt: skip
        site = headers.get("sec-fetch-site", "")
        if origin is None and site in ("cross-site", "same-site"):
            return "cross-site requests from web pages are refused"
        if self.allowed_hosts is not None:
            host = _host_name(headers.get("host", ""))
            if host not in self.allowed_hosts:
                return (f"Host {headers.get('host', '')!r} is not this server's address; "
                        "add the name to LLMTRACE_ALLOWED_HOSTS if it is yours")  # fmt: skip
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        reason = self.refusal(headers)
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = f"Code: 497. DB::Exception: llmtrace server: {reason}. (ACCESS_DENIED)\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=UTF-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"x-clickhouse-exception-code", b"497")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

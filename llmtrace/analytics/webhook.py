"""POSTing one JSON alert to a webhook: no redirects, a total deadline, the URL's secrets never shown.

A webhook URL is a credential (Slack's ``/services/T…/B…/<token>``), so every message names it
through :func:`~llmtrace.store.settings.mask_url` and exception texts are scrubbed of it.

* A redirect (any 3xx) is a failed delivery. Following it would send the alert to a host nobody
  configured, or (302/303) re-send it as a bodyless GET that "succeeds" while delivering nothing.
* ``timeout`` bounds the whole delivery (connect, TLS, send, the status line and headers), not
  each read: a watchdog shuts the connection down when the time is up, so a server trickling one
  byte at a time cannot hold an alert longer. Name resolution happens before there is a
  connection to shut down and is bounded only by the system resolver.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from llmtrace.store.settings import mask_url, scrub

__all__ = ["AlertDeliveryError", "check_url", "post_json", "shown"]


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept an alert; the message names the (masked) URL and the answer.

    ``unreachable`` is true when no answer came at all (network error or timeout): later alerts
    of the same check would only wait out the same timeout, so they are kept for the next check.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def shown(url: str) -> str:
    """``url`` as messages may show it: scheme, host and port; the path and query are the secret."""
    return mask_url(url, secret_path=True)


def check_url(url: str) -> None:
    """Refuse (``ValueError``, URL masked) anything but an ``http(s)://host/...`` URL, before the first check."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"--webhook {shown(url)!r} is not an http:// or https:// URL with a host")


def post_json(url: str, body: bytes, timeout: float) -> None:
    """POST ``body`` as JSON; return on a 2xx within ``timeout`` seconds in all, else raise
    :class:`AlertDeliveryError`."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    deadline = _Deadline(timeout)
    opener = urllib.request.build_opener(_NoRedirects, _HTTPHandler(deadline), _HTTPSHandler(deadline))
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
        if deadline.expired:  # cut mid-headers: http.client takes the shutdown for their end
            raise TimeoutError
    except urllib.error.HTTPError as exc:
        exc.close()
        raise AlertDeliveryError(_refusal(url, exc.code, exc.headers.get("Location"))) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
        if deadline.expired or isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            message = f"webhook {shown(url)} did not answer within {timeout:g} s"
            raise AlertDeliveryError(message, unreachable=True) from None
        reason = scrub(str(getattr(exc, "reason", exc)) or type(exc).__name__, url, secret_path=True)
        message = f"cannot reach webhook {shown(url)}: {reason}; check the URL and the network"
        raise AlertDeliveryError(message, unreachable=True) from None
    finally:
        deadline.cancel()
    if not 200 <= status < 300:
        raise AlertDeliveryError(_refusal(url, status, None))


def _refusal(url: str, status: int, location: str | None) -> str:
    if 300 <= status < 400:
        target = f" to {shown(location)}" if location else ""
        return (
            f"webhook {shown(url)} answered HTTP {status}, a redirect{target}: not followed (it would re-send the "
            "alert elsewhere or drop its body); use the URL the redirect points to"
        )
    return f"webhook {shown(url)} answered HTTP {status}: check the URL and its token"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Replaces urllib's redirect handler: every 3xx becomes an ``HTTPError``, so nothing is sent twice."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Deadline:
    """Shuts down the delivery's connections when its total time is up.

    Each socket is watched through a duplicate descriptor: shutting that down ends the connection
    (blocked reads return at once) even after TLS has taken over the original socket object.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(self._sockets[-1])

    def connector(self, create: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
        """``create`` (``socket.create_connection``), with every socket it makes watched."""

        def create_watched(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            self.watch(sock)
            return sock

        return create_watched

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


def _watched(cls: type[http.client.HTTPConnection], deadline: _Deadline) -> Callable[..., http.client.HTTPConnection]:
    """A factory of ``cls`` connections whose sockets ``deadline`` watches (for ``do_open``)."""

    def connection(host: str, /, **kwargs: Any) -> http.client.HTTPConnection:
        conn = cls(host, **kwargs)
        # http.client opens every socket (proxy tunnels included) through this attribute
        conn._create_connection = deadline.connector(conn._create_connection)  # type: ignore[attr-defined]
        return conn

    return connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """Certificates are verified as urllib's default does (the system's CAs, ``SSL_CERT_FILE``)."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPSConnection, self._deadline), req)

"""Where the ClickHouse store is, in one place: URL, credentials and database.

``LLMTRACE_CLICKHOUSE_URL`` (default ``http://localhost:8123``) may be ``http[s]://`` (a
ClickHouse server, or ``llmtrace server``'s HTTP port) or ``chdb:///abs/path`` (embedded
chDB on a data directory no server holds, for offline analysis). The URL may carry
``user:password@`` and a ``/database`` path; explicit arguments win over the URL, which wins
over ``LLMTRACE_CLICKHOUSE_USER`` / ``LLMTRACE_CLICKHOUSE_PASSWORD`` (or ``LLMTRACE_PASSWORD``)
/ ``LLMTRACE_CLICKHOUSE_DATABASE``.

Passwords are never printed: every URL that reaches a message, a log line or the dashboard goes
through :func:`mask_url` (or is :attr:`StoreSettings.url`, built without the password).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

__all__ = ["DEFAULT_URL", "StoreSettings", "mask_url", "scrub"]

DEFAULT_URL = "http://localhost:8123"
_DEFAULT_PORTS = {"http": 8123, "https": 8443}


@dataclass(frozen=True)
class StoreSettings:
    """Resolved connection settings; ``scheme`` is ``http``, ``https`` or ``chdb``."""

    scheme: str
    host: str = "localhost"
    port: int = 8123
    username: str = "default"
    password: str = ""
    database: str = "default"
    path: str = ""  # chDB data directory (scheme == "chdb")

    @property
    def url(self) -> str:
        """The URL without the password, for messages and logs."""
        if self.scheme == "chdb":
            return mask_url(f"chdb://{self.path}")
        return f"{self.scheme}://{self.username}@{self.host}:{self.port}/{self.database}"

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        database: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> StoreSettings:
        """Combine arguments, the URL and the environment (in that order of precedence)."""
        environ = os.environ if env is None else env
        raw = url or environ.get("LLMTRACE_CLICKHOUSE_URL") or DEFAULT_URL
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        query = parse_qs(parts.query)
        env_db = environ.get("LLMTRACE_CLICKHOUSE_DATABASE")
        if scheme == "chdb":
            path = unquote(parts.netloc + parts.path)
            if not path:
                raise ValueError(f"{mask_url(raw)!r} names no data directory: use chdb:///absolute/path")
            db = database or _first(query.get("database")) or env_db or "default"
            return cls(scheme="chdb", host="", port=0, database=db, path=path)
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"unsupported ClickHouse URL {mask_url(raw)!r}: use http://host:8123, "
                "https://host:8443 or chdb:///path/to/data (set LLMTRACE_CLICKHOUSE_URL or --url)"
            )
        url_db = unquote(parts.path.strip("/")) or _first(query.get("database"))
        env_user = environ.get("LLMTRACE_CLICKHOUSE_USER")
        env_password = environ.get("LLMTRACE_CLICKHOUSE_PASSWORD") or environ.get("LLMTRACE_PASSWORD")
        if password is None:
            password = unquote(parts.password or "") or env_password or ""
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[scheme],
            username=username or unquote(parts.username or "") or env_user or "default",
            password=password,
            database=database or url_db or env_db or "default",
        )


MASK = "***"
_PLAIN_PARAMETERS = frozenset({"database"})  # query parameters that are never secrets


def mask_url(url: str, *, secret_path: bool = False) -> str:
    """``url`` safe to print: scheme, user, host, port and path kept, secrets replaced by ``***``.

    The password, every query value but ``database`` (``?token=``, ``?password=``, signatures) and
    the fragment are always masked; with ``secret_path`` the path too, for webhooks whose path is their token (Slack's
    ``/services/T…/B…/…``, Discord's ``/api/webhooks/<id>/<token>``). A URL too malformed to split
    keeps only its scheme.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if scheme.isalnum() else MASK
    userinfo, at, host = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":" + MASK
    path = parts.path
    if secret_path and path not in ("", "/"):
        path = "/" + MASK
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(key, value if key in _PLAIN_PARAMETERS else MASK) for key, value in pairs], safe="*")
    if parts.query and not query:  # no key=value pairs: the whole query is one opaque token
        query = MASK
    slashes = "//" if parts.netloc or url.strip()[len(parts.scheme) :].startswith("://") else ""
    masked = f"{parts.scheme}:{slashes}" if parts.scheme else slashes
    masked += userinfo + at + host + path
    return masked + (f"?{query}" if query else "") + (f"#{MASK}" if parts.fragment else "")


def scrub(text: str, url: str, *, secret_path: bool = False) -> str:
    """``text`` (an exception's message, which may quote the URL or part of it) with ``url`` masked.

    The whole URL becomes :func:`mask_url`'s form, then any secret part left on its own (password,
    query, fragment and, with ``secret_path``, the path) becomes ``***``.
    """
    text = text.replace(url, mask_url(url, secret_path=secret_path))
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:
        return text
    secrets = [password or "", parts.query, parts.fragment]
    if secret_path and parts.path not in ("", "/"):
        secrets.append(parts.path)
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
        if unquote(secret) != secret:
            text = text.replace(unquote(secret), MASK)
    return text


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None

"""Where the ClickHouse store is, in one place: URL, credentials and database.

``LLMTRACE_CLICKHOUSE_URL`` (default ``http://localhost:8123``) may be ``http[s]://`` (a
ClickHouse server, or ``llmtrace server``'s HTTP port) or ``chdb:///abs/path`` (embedded
chDB on a data directory no server holds, for offline analysis). The URL may carry
``user:password@`` and a ``/database`` path; explicit arguments win over the URL, which wins
over ``LLMTRACE_CLICKHOUSE_USER`` / ``LLMTRACE_CLICKHOUSE_PASSWORD`` (or ``LLMTRACE_PASSWORD``)
/ ``LLMTRACE_CLICKHOUSE_DATABASE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["DEFAULT_URL", "StoreSettings", "redact_url"]

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
            return f"chdb://{self.path}"
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
                raise ValueError(f"{raw!r} names no data directory: use chdb:///absolute/path")
            db = database or _first(query.get("database")) or env_db or "default"
            return cls(scheme="chdb", host="", port=0, database=db, path=path)
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"unsupported ClickHouse URL {redact_url(raw)!r}: use http://host:8123, "
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


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None

"""One way to get a ClickHouse client, whatever the store is.

``connect()`` returns a clickhouse-connect ``Client`` for ``http[s]://`` URLs and a
:class:`~llmtrace.store.chdb_client.ChdbClient` (same ``query`` / ``query_df`` / ``command`` /
``insert`` methods, same ``{name:Type}`` parameters) for ``chdb:///path``. Both live in the
``[server]`` extra (the dashboard extra has clickhouse-connect too) and are imported lazily.
"""

from __future__ import annotations

from typing import Any

from llmtrace.store.settings import StoreSettings

__all__ = ["MissingExtraError", "StoreUnavailableError", "connect", "require"]

INSTALL_HINT = 'pip install "llmtrace[server]"'


class MissingExtraError(ImportError):
    """A package of an optional extra is not installed; the message has the pip line."""


class StoreUnavailableError(ConnectionError):
    """The ClickHouse store cannot be reached; the message names the URL and what to do."""


def require(module: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` with the install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0].replace("_", "-")
        raise MissingExtraError(f"{package} is not installed; install the server extra: {INSTALL_HINT}") from exc


def connect(
    url: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    database: str | None = None,
    connect_timeout: float = 5,
    **client_kwargs: Any,
) -> Any:
    """Connect to the store at ``url`` (default: ``LLMTRACE_CLICKHOUSE_URL``, then localhost:8123).

    Raises :class:`StoreUnavailableError` naming the URL when the database does not answer,
    :class:`MissingExtraError` when the client library is missing, ``ValueError`` for a bad URL.
    """
    settings = StoreSettings.resolve(url, username=username, password=password, database=database)
    if settings.scheme == "chdb":
        from llmtrace.store.chdb_client import ChdbClient

        return ChdbClient.open(settings.path, database=settings.database)
    return _http_client(settings, connect_timeout, client_kwargs)


def _http_client(settings: StoreSettings, connect_timeout: float, client_kwargs: dict[str, Any]) -> Any:
    clickhouse_connect = require("clickhouse_connect")
    try:
        return clickhouse_connect.get_client(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            database=settings.database,
            secure=settings.scheme == "https",
            connect_timeout=connect_timeout,
            **client_kwargs,
        )
    except Exception as exc:
        raise StoreUnavailableError(describe_failure(settings, exc)) from exc


def describe_failure(settings: StoreSettings, exc: BaseException) -> str:
    """A one-paragraph message for a failed connection: which URL, why, and what to do."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "UNKNOWN_DATABASE" in str(exc) or "Code: 81" in str(exc):
        fix = f"run `llmtrace migrate --url {settings.url}` to create database {settings.database!r}"
    elif "AUTHENTICATION_FAILED" in str(exc) or "Code: 516" in str(exc):
        fix = "check LLMTRACE_CLICKHOUSE_USER / LLMTRACE_CLICKHOUSE_PASSWORD (or user:password@ in the URL)"
    else:
        fix = "start `llmtrace server` (or your ClickHouse) or point LLMTRACE_CLICKHOUSE_URL / --url at it"
    return f"cannot use ClickHouse at {settings.url}: {reason}. Fix: {fix}."

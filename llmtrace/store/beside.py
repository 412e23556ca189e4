"""Queries the store answers while this process computes.

A detection spends most of its time in Python on the counts it read first, while the store sits
idle; the queries that do not need those counts (odd calls, runaway users, new releases) can be
sent at the start on another thread and read when their answers are needed. Two queries at once
need two sessions: ClickHouse refuses a second query in a session while one runs
(``SESSION_IS_LOCKED``) and clickhouse-connect gives each client a session; in-process chDB runs
concurrent queries on separate handles (as ``llmtrace server`` does per request). Any other client
runs its queries in turn, as before.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["beside"]

T = TypeVar("T")


class _OwnSession:
    """A clickhouse-connect client whose queries run in a session of their own. Only ``query``,
    ``query_df`` and ``command``: anything else (``raw_query``, ``insert``) would run in the
    client's session, so it is not there to be called."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._session = {"session_id": f"llmtrace-beside-{uuid.uuid4()}"}

    def query(self, query: str, parameters: Any = None, settings: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._client.query(query, parameters=parameters, settings=self._own(settings), **kwargs)

    def query_df(
        self, query: str, parameters: Any = None, settings: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        return self._client.query_df(query, parameters=parameters, settings=self._own(settings), **kwargs)

    def command(self, cmd: str, parameters: Any = None, settings: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._client.command(cmd, parameters=parameters, settings=self._own(settings), **kwargs)

    def _own(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        return {**(settings or {}), **self._session}

    def close(self) -> None:
        """Nothing of its own to close: the connections are the client's."""


def _side_client(client: Any) -> Any | None:
    """A client for queries run at the same time as ``client``'s (closed after), or None."""
    http = sys.modules.get("clickhouse_connect.driver.httpclient")
    if http is not None and isinstance(client, http.HttpClient):
        return _OwnSession(client) if "session_id" in getattr(client, "params", {}) else _Unowned(client)
    chdb_client = sys.modules.get("llmtrace.store.chdb_client")
    if chdb_client is not None and isinstance(client, chdb_client.ChdbClient):
        return client.another()
    return None


class _Unowned:
    """A client without a session, shared as it is (its queries may overlap)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        """The caller's client stays open."""


def beside(client: Any, job: Callable[[Any], T]) -> Callable[[], T]:
    """Start ``job`` on another thread with a client of its own onto ``client``'s store; the
    returned callable waits for its result, raising what the job raised. Where ``client`` cannot
    run two queries at once, the job runs when its result is asked for, on ``client`` itself.

    A job whose result is never asked for (its caller failed first) still runs to its end."""
    try:
        side = _side_client(client)
    except Exception:  # no second handle to be had: the queries run in turn
        side = None
    if side is None:
        return lambda: job(client)

    def run() -> T:
        try:
            return job(side)
        finally:
            side.close()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmtrace-beside")
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future.result

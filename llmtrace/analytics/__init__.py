"""The SQL behind every dashboard view.

One module per view (``overview``, ``cost``, ``latency``, ``traces``, ``sql_console``);
each function takes a ClickHouse client (``llmtrace.store.client.connect``) and a
:class:`~llmtrace.analytics.filters.Filter` and returns a pandas DataFrame, so every figure
the dashboard shows can be tested on chDB without Streamlit.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["frame"]


def frame(client: Any, sql: str, params: dict[str, Any] | None = None, **kwargs: Any) -> pd.DataFrame:
    """Run a parameterised query (``{name:Type}`` bindings) and return its rows as a DataFrame.

    An empty result still has the query's columns: clickhouse-connect returns a frame without any
    for no rows, and callers select columns by name (the Overview page's time series crashed once
    while `up --demo` was still inserting its history: the summary had counted calls, the series
    query found none)."""
    df = client.query_df(sql, parameters=params or {}, **kwargs)
    if len(df.columns) or len(df):
        return df
    described = client.query(f"DESCRIBE TABLE ({sql})", parameters=params or {}, **kwargs)
    return pd.DataFrame(columns=[str(row[0]) for row in described.result_rows])

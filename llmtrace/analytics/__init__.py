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
    """Run a parameterised query (``{name:Type}`` bindings) and return its rows as a DataFrame."""
    return client.query_df(sql, parameters=params or {}, **kwargs)

"""SQL: a read-only console over the store, with examples and CSV download."""

from __future__ import annotations

import streamlit as st

from dashboard import common
from llmtrace.analytics import sql_console

st.title("SQL")
st.caption(
    "Read-only: queries run with ClickHouse's `readonly=1`, so the server refuses anything but reads. "
    f"Results stop at {sql_console.MAX_ROWS:,} rows. Tables: `llm_calls` (one row per LLM call), "
    "`llm_calls_1m` / `llm_calls_1h` (rollups), `otel_traces` (raw spans with content). "
    "The sidebar filters do not apply here: put conditions in the query."
)


def use_example() -> None:
    st.session_state["sql_text"] = sql_console.EXAMPLES[st.session_state["sql_example"]]


examples = list(sql_console.EXAMPLES)
st.selectbox("Examples", examples, key="sql_example", on_change=use_example)
if "sql_text" not in st.session_state:
    st.session_state["sql_text"] = sql_console.EXAMPLES[examples[0]]
sql = st.text_area("Query", key="sql_text", height=200)

if st.button("Run", type="primary", key="sql_run"):
    st.session_state["sql_ran"] = sql
ran = st.session_state.get("sql_ran")
if not ran:
    st.caption("Pick an example or write a query, then press **Run**.")
else:
    try:
        with st.spinner("Running the query…"):
            result = sql_console.run(common.client(), ran)
    except common.StoreUnavailable:
        raise
    except Exception as exc:  # the server's own message says what is wrong with the query
        st.error(f"The query failed: {exc}")
    else:
        st.caption(f"{len(result):,} rows")
        common.table(result, hide_index=True, key="sql_result", placeholder="NULL")
        st.download_button(
            "Download CSV",
            result.to_csv(index=False).encode("utf-8"),
            file_name="llmtrace-query.csv",
            mime="text/csv",
            key="sql_download",
        )

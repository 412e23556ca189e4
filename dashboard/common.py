"""What every page shares: the client, cached queries, the current filter and number formats.

Clients are cached per URL with ``st.cache_resource``; query results per (query, filter,
arguments) with ``st.cache_data`` for :data:`TTL_SECONDS`, so switching pages or widgets
does not re-run identical SQL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from llmtrace.analytics.filters import Filter

URL_ENV = "LLMTRACE_CLICKHOUSE_URL"
DEFAULT_URL = "http://127.0.0.1:8123"
TTL_SECONDS = 30
FILTER_KEY = "llmtrace_filter"
SNIPPET = """\
import llmtrace

llmtrace.instrument(service_name="my-app")  # sends OTLP to http://127.0.0.1:4318

from openai import OpenAI
OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])"""


class StoreUnavailable(RuntimeError):
    """The ClickHouse endpoint could not be reached or refused the connection."""


def store_url() -> str:
    return os.environ.get(URL_ENV, "").strip() or DEFAULT_URL


def shown_store_url() -> str:
    """:func:`store_url` as a page may show it: its password and query secrets masked."""
    from llmtrace.store.settings import mask_url

    return mask_url(store_url())


@st.cache_resource(show_spinner=False)
def _client(url: str) -> Any:
    from llmtrace.store.client import connect

    # One client serves every browser session at once: no ClickHouse session id, or a real
    # server would refuse concurrent queries ("session is locked").
    return connect(url, autogenerate_session_id=False)


def client() -> Any:
    """The shared client for :func:`store_url`; :class:`StoreUnavailable` if it cannot connect."""
    url = store_url()
    try:
        return _client(url)
    except Exception as exc:
        raise StoreUnavailable(str(exc)) from exc


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _cached(url: str, module: str, name: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    import importlib

    function = getattr(importlib.import_module(module), name)
    try:
        return function(_client(url), *args, **dict(kwargs))
    except Exception as exc:
        if _is_connection_error(exc):
            raise StoreUnavailable(str(exc)) from exc
        raise


def load(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an analytics function with the shared client, through the result cache."""
    return _cached(store_url(), function.__module__, function.__name__, args, tuple(sorted(kwargs.items())))


def no_calls(text: str) -> NoReturn:
    """Say that the window holds no calls, and stop the page. The cached results are dropped first:
    a store still being filled (`llmtrace up --demo` renders the Overview while its week of history
    lands, so the store may hold older days only) is read afresh on the next run, instead of
    answering "no calls in the last day" for ``TTL_SECONDS`` after the calls arrived (a browser test
    opening the page as `up` said "Demo data loaded" failed so in CI once)."""
    _cached.clear()
    st.info(text)
    st.stop()


def _is_connection_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    markers = ("connection refused", "failed to establish", "max retries exceeded", "operationalerror")
    return isinstance(exc, ConnectionError) or any(marker in text for marker in markers)


def current_filter() -> Filter:
    """The filter the sidebar set for this run (the app script sets it before any page runs)."""
    return st.session_state[FILTER_KEY]  # type: ignore[no-any-return]


def show_unavailable(error: BaseException) -> None:
    """Say which URL failed and how to fix it."""
    st.error(
        f"Cannot reach the llmtrace store at **{shown_store_url()}**.\n\n"
        "Start it with `llmtrace server` (or `llmtrace up`), or point the dashboard at your ClickHouse "
        f"with `llmtrace dashboard --url http://host:8123` or the `{URL_ENV}` environment variable."
    )
    with st.expander("Error details"):
        st.code(str(error), language=None)


def show_empty_store() -> None:
    """Explain how to send the first calls."""
    st.info(
        f"No LLM calls in the store at **{shown_store_url()}** yet. Instrument your app with one line, "
        "or run `llmtrace demo` to load a week of realistic demo traffic."
    )
    st.code(SNIPPET, language="python")


def color_rows(df: pd.DataFrame, column: str, colors: dict[str, str]) -> Any:
    """The frame styled with each row's background colour chosen by its value in ``column``."""
    return df.style.apply(lambda row: [f"background-color: {colors.get(row[column], '')}"] * len(row), axis=1)


def table(data: Any, *, where: Any = st, **kwargs: Any) -> Any:
    """``st.dataframe`` (in ``where``, e.g. a column) showing missing values as "—", not "None"."""
    if _HAS_PLACEHOLDER:
        kwargs.setdefault("placeholder", "—")
    else:
        kwargs.pop("placeholder", None)
    return where.dataframe(data, **kwargs)


def _dataframe_has_placeholder() -> bool:
    import inspect

    try:
        return "placeholder" in inspect.signature(st.dataframe).parameters
    except (TypeError, ValueError):
        return False


_HAS_PLACEHOLDER = _dataframe_has_placeholder()  # Streamlit >= 1.52


# ---------------------------------------------------------------- formatting
def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def fmt_int(value: Any) -> str:
    return "—" if is_missing(value) else f"{int(value):,}"


def fmt_usd(value: Any) -> str:
    """Dollars and cents from $1; below that enough decimals for two significant digits."""
    if is_missing(value):
        return "—"
    value = float(value)
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = max(4, 1 - math.floor(math.log10(abs(value))))
    return f"${value:.{decimals}f}"


def fmt_ms(value: Any) -> str:
    if is_missing(value):
        return "—"
    value = float(value)
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.0f} ms"


def fmt_pct(value: Any) -> str:
    return "—" if is_missing(value) else f"{float(value) * 100:.2f}%"


def fmt_tokens(value: Any) -> str:
    if is_missing(value):
        return "—"
    value = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


NEW = "new"  # st.metric delta when the previous window had (almost) nothing to compare with


def change(current: Any, previous: Any, previous_calls: Any = None) -> str | None:
    """Relative change for ``st.metric``'s delta ("+12.3%", or "+25×" past tenfold), None if undefined.

    Against an almost empty previous window (fewer than :data:`MIN_PREVIOUS_CALLS` calls, or
    nothing, or a hundredfold jump) a ratio means nothing ("+117,148×"): that reads "new".
    """
    if is_missing(current) or is_missing(previous):
        return None
    few = previous_calls is not None and not is_missing(previous_calls) and float(previous_calls) < MIN_PREVIOUS_CALLS
    if float(previous) == 0 or few:
        return NEW if float(current) > 0 else None
    ratio = float(current) / float(previous)
    if ratio >= 100:
        return NEW
    if ratio >= 10:
        return f"+{ratio:,.0f}×"
    return f"{(ratio - 1) * 100:+.1f}%"


MIN_PREVIOUS_CALLS = 30


def point_change(current: Any, previous: Any) -> str | None:
    """Change of a rate in percentage points ("+0.4 pp")."""
    if is_missing(current) or is_missing(previous):
        return None
    return f"{(float(current) - float(previous)) * 100:+.2f} pp"


def trace_link_column(label: str = "trace") -> Any:
    """A column config that opens a trace on the Traces page: shows the id's first 12 characters, pinned."""
    return st.column_config.LinkColumn(
        label, display_text=r"traces\?trace=(\w{12})", pinned=True, help="Open the trace (first 12 of 32 characters)"
    )


def with_trace_links(df: pd.DataFrame) -> pd.DataFrame:
    """Replace ``trace_id`` by a relative link to the Traces page."""
    if "trace_id" not in df:
        return df
    return df.assign(trace_id=["traces?trace=" + str(t) for t in df["trace_id"]])


def fmt_duration(span: Any) -> str:
    """A timedelta as "7 days", "24 hours", "90 minutes"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds / 3600:.1f} hours"


def style(figure: Any, title: str, height: int = 300, *, y: str | None = None, x: str | None = None) -> Any:
    """Compact, consistent chart layout; ``y``/``x`` name the axes with their unit ("ms", "USD", "calls").

    Time axes need no title (dates say what they are), so ``x`` defaults to none.
    """
    figure.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        # At the figure's bottom edge, below the x labels: at y=-0.2 of the plot it covered rotated
        # model names (gpt-4o-mini, gpt-4.1-nano on the Latency page).
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "title": None},
        xaxis_title=x,
        separators=".,",
        # Five buttons fewer: the full bar (9 buttons) sat over the title of a half-width chart.
        modebar_remove=["zoomin", "zoomout", "autoscale", "lasso2d", "select2d"],
    )
    if y is not None:
        figure.update_layout(yaxis_title=y)
    return figure


# ---------------------------------------------------------------- colours
# Twenty colours (Tableau 10, with a darker yellow that reads on white and purple for grey, plus ten
# more): ten would give the demo's ten models two shared colours whatever the hash.
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#d9a900", "#b07aa1", "#ff9da7", "#9c755f", "#6a3d9a",
    "#17becf", "#bcbd22", "#2f4b7c", "#e377c2", "#a0cbe8",
    "#ffbe7d", "#8cd17d", "#b6992d", "#d37295", "#499894",
)  # fmt: skip
# The salt giving the demo's models, services, providers, environments and releases colours that are
# distinct within each kind and far apart to the eye (CIELAB distance >= 23; tests/test_dashboard_format.py).
_SALT = "llmtrace15592"
NO_VALUE_COLOR = "#9aa5b1"


def color_for(name: Any) -> str:
    """The colour of a model, provider, service, ... on every chart of every page: a hash of its
    name, so it never depends on which other names a chart happens to show."""
    text = "" if is_missing(name) else str(name)
    if not text:
        return NO_VALUE_COLOR
    import hashlib

    return PALETTE[int(hashlib.md5((_SALT + text).encode()).hexdigest(), 16) % len(PALETTE)]


def color_map(names: Any) -> dict[str, str]:
    """``color_discrete_map`` for plotly express: :func:`color_for` of each name."""
    return {str(name): color_for(name) for name in names}


# Percentiles as shades of one hue, darker = slower, so p95 and p99 never look like two models.
PERCENTILE_COLORS = {"p50": "#9ecae1", "p90": "#6baed6", "p95": "#3182bd", "p99": "#08519c"}


# Counts with thousands separators (9,310,002 tokens, not 9310002), in the browser's locale.
COUNT = "localized"

SUMMARY_COLUMNS: dict[str, Any] = {
    "timestamp": st.column_config.DatetimeColumn("time (UTC)", format="MMM DD HH:mm:ss"),
    "span_id": None,  # hidden: the trace link is what people open
    "calls": st.column_config.NumberColumn("calls", format=COUNT),
    "errors": st.column_config.NumberColumn("errors", format=COUNT),
    "error_rate": st.column_config.NumberColumn("error rate", format="percent"),
    "cost_usd": st.column_config.NumberColumn("spend", format="$%.4f"),
    "cost_per_call_usd": st.column_config.NumberColumn("cost / call", format="$%.5f"),
    "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.1f"),
    "p50": st.column_config.NumberColumn("p50", format="%.1f"),
    "p95": st.column_config.NumberColumn("p95", format="%.1f"),
    "unpriced_calls": st.column_config.NumberColumn("unpriced calls", format=COUNT),
    "share": st.column_config.ProgressColumn("share", format="percent", min_value=0.0, max_value=1.0),
    "input_tokens": st.column_config.NumberColumn("input tokens", format=COUNT),
    "output_tokens": st.column_config.NumberColumn("output tokens", format=COUNT),
    "tokens": st.column_config.NumberColumn("tokens", format=COUNT),
    **{
        name: st.column_config.NumberColumn(name.replace("_ms", ""), format="%.0f ms")
        for name in (
            "p50_ms",
            "p90_ms",
            "p95_ms",
            "p99_ms",
            "mean_ms",
            "ttft_p50_ms",
            "ttft_p95_ms",
            "duration_ms",
            "ttft_ms",
        )
    },
}


MONEY_COLUMNS = {"cost_usd": "spend", "cost_per_call_usd": "cost / call"}


def money_format(values: Any) -> str:
    """One printf format for a column of dollar amounts: enough decimals that its smallest non-zero
    amount keeps two significant digits ($0.000028, not $0.0000), at least cents, at most 6."""
    amounts = [abs(float(v)) for v in values if not is_missing(v) and float(v) != 0]
    if not amounts:
        return "$%.2f"
    decimals = min(6, max(2, 1 - math.floor(math.log10(min(amounts)))))
    return f"$%.{decimals}f"


def columns_for(df: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """:data:`SUMMARY_COLUMNS` with money columns formatted for ``df``'s amounts, plus ``extra``."""
    config = dict(SUMMARY_COLUMNS)
    for name, label in MONEY_COLUMNS.items():
        if name in df:
            config[name] = st.column_config.NumberColumn(label, format=money_format(df[name]))
    config.update(extra)
    return config

"""Does a running dashboard really render? Open one Streamlit session and run a page.

Streamlit's ``/_stcore/health`` answers "ok" as soon as its web server listens, even when
every page then fails (an import error in the app shows only in the browser and its log).
So ``llmtrace up`` opens the session a browser would (the ``/_stcore/stream`` websocket),
asks for one page run and reads what the page drew: an exception element, or an error box,
is a failure with its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PAGES", "SPAN_ERROR_ICON", "PageRun", "first_problem", "render_page"]

TIMEOUT_S = 90.0
# URL paths of the dashboard's pages ("" is the default page, Overview); streamlit_app.py lists them.
PAGES = ["", "traces", "cost", "latency", "drift", "anomalies", "sql"]


SPAN_ERROR_ICON = ":material/error:"
"""The icon of the Traces page's box for a failed span: the data shows an error, the page has none."""


@dataclass
class PageRun:
    """What one page run drew: exception messages, error boxes, and whether the script finished."""

    page: str
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def problem(self) -> str | None:
        """A one-paragraph description of what went wrong, or None when the page rendered."""
        if self.exceptions:
            return f"page {self.page or '/'} raised: {self.exceptions[0]}"
        if self.errors:
            return f"page {self.page or '/'} shows an error: {self.errors[0]}"
        if not self.finished:
            return f"page {self.page or '/'} did not finish within {TIMEOUT_S:.0f} s"
        return None


def render_page(base_url: str, page: str = "", timeout_s: float = TIMEOUT_S) -> PageRun:
    """Run ``page`` (its URL path, "" for the default page) in a fresh session of the dashboard at
    ``base_url`` and collect what it drew. Raises OSError if the websocket cannot be opened."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    run = PageRun(page)
    stream_url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/")
    protocols: list[Any] = ["streamlit"]
    with connect(f"{stream_url}/_stcore/stream", subprotocols=protocols, max_size=None, open_timeout=10) as ws:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.page_name = page
        ws.send(request.SerializeToString())
        while not run.finished:
            message = ForwardMsg()
            try:
                message.ParseFromString(ws.recv(timeout=timeout_s))
            except TimeoutError:
                return run  # reported as not finished
            kind = message.WhichOneof("type")
            if kind == "script_finished":
                run.finished = True
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                _note(message.delta.new_element, run)
    return run


def _note(element: object, run: PageRun) -> None:
    kind = element.WhichOneof("type")  # type: ignore[attr-defined]
    if kind == "exception":
        exc = element.exception  # type: ignore[attr-defined]
        run.exceptions.append(f"{exc.type}: {exc.message}".strip(": "))
    elif kind == "alert":
        from streamlit.proto.Alert_pb2 import Alert

        alert = element.alert  # type: ignore[attr-defined]
        if alert.format == Alert.ERROR and alert.icon != SPAN_ERROR_ICON:  # a failed span is content
            run.errors.append(str(alert.body))


def first_problem(base_url: str, pages: Sequence[str] = ("",)) -> str | None:
    """The first page (in order) that fails to render, described; None when all render."""
    for page in pages:
        try:
            problem = render_page(base_url, page).problem
        except OSError as exc:
            problem = f"could not open a session on {base_url}: {exc}"
        if problem:
            return problem
    return None

"""up's page check tells a page that fails from a page that shows a failed span (the demo has some)."""

from __future__ import annotations

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.Element_pb2 import Element

from llmtrace.dashboard_check import SPAN_ERROR_ICON, PageRun, _note


def error_box(body: str, icon: str = "") -> Element:
    element = Element()
    element.alert.format = Alert.ERROR
    element.alert.body = body
    element.alert.icon = icon
    return element


def test_an_error_box_is_a_page_problem() -> None:
    run = PageRun(page="traces")
    _note(error_box("could not load traces"), run)
    assert run.errors == ["could not load traces"]


def test_the_box_of_a_failed_span_is_not_a_page_problem() -> None:
    """The demo's newest trace fails now and then: `up` refused to start when it did."""
    run = PageRun(page="traces")
    _note(error_box("openai.InternalServerError: Error code: 500", SPAN_ERROR_ICON), run)
    assert run.errors == []

"""OpenAI Agents SDK (``openai-agents``): its agent and tool spans mirrored as OpenTelemetry spans.

The Agents SDK traces runs with tracing of its own, not OpenTelemetry (its processors send traces to
OpenAI). Its model requests go through the ``openai`` SDK, whose patch records each one. So that they
nest the way the run went, llmtrace mirrors the SDK's agent and function-tool spans as
``invoke_agent {agent}`` and ``execute_tool {tool}`` spans, current from the SDK span's ``start`` to
its ``finish`` (whether or not the SDK's own tracing is on). Generation and response spans are not
mirrored: llmtrace's span from the openai patch is the model call, counted once in ``llm_calls``,
which counts no agent or tool span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llmtrace import semconv as sc
from llmtrace.grouping import _Activation, _Scope
from llmtrace.instrumentation._core import get_runtime
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._patching import Patch

SDK = "agents"

# id(SDK span) -> its mirror and, when the SDK made its span current, the mirror's activation.
_open: dict[int, tuple[_Scope, _Activation | None]] = {}


def _mirror(data: Any) -> tuple[str, dict[str, AttributeValue]] | None:
    """Span name and attributes for an SDK span worth mirroring (agents and function tools)."""
    kind, name = getattr(data, "type", None), str(getattr(data, "name", "") or "")
    if kind == "agent":
        return f"{sc.OP_INVOKE_AGENT} {name}", {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: name}
    if kind == "function":
        attributes: dict[str, AttributeValue] = {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.TOOL_NAME: name,
            sc.TOOL_TYPE: "function",
        }
        return f"{sc.OP_EXECUTE_TOOL} {name}", attributes
    return None


def _opened(span: Any, current: bool) -> None:
    mirror = _mirror(getattr(span, "span_data", None)) if get_runtime() is not None else None
    if mirror is None:
        return
    scope = _Scope(*mirror, extra={})
    activation = scope.active() if current else None
    if activation is not None:
        activation.__enter__()
    _open[id(span)] = (scope, activation)


def _closed(span: Any) -> None:
    entry = _open.pop(id(span), None)
    if entry is None:
        return
    scope, activation = entry
    error = getattr(span, "error", None)  # the SDK's SpanError: {"message", "data"}, e.g. a failed tool
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        scope.span.set_status(Status(StatusCode.ERROR, str(message)[:1000]))
    if activation is not None:
        activation.__exit__(None, None, None)
    scope.end()


def _start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        _opened(instance, bool(kwargs.get("mark_as_current", args[0] if args else False)))
    except Exception as exc:
        internal_error("agents span start", exc)
    return result


def _finish(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        _closed(instance)
    except Exception as exc:
        internal_error("agents span finish", exc)
    return wrapped(*args, **kwargs)


def patches() -> list[Patch]:
    return [
        Patch("agents.tracing.spans", f"{cls}.{method}", wrapper=wrapper)
        for cls in ("SpanImpl", "NoOpSpan")
        for method, wrapper in (("start", _start), ("finish", _finish))
    ]

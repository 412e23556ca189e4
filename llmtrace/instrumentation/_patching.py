"""Patching SDK methods with wrapt, and restoring them exactly.

A provider declares :class:`Patch` targets by dotted path; targets missing from the
installed SDK version are skipped, so one module serves many SDK versions. Targets are
patched only in modules already imported: :func:`watch` patches the others when (and if)
the app or the SDK imports them, so llmtrace never imports an SDK module itself.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import wrapt
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation import _SPAN_KEY

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import _SUPPRESS_KEY, Endpoint, Invocation, Runtime, current_context, get_runtime
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._streams import observe_result

log = logging.getLogger("llmtrace")


@dataclass(frozen=True)
class Patch:
    """``module`` + ``Class.method`` to wrap with ``endpoint``.

    ``wrapper`` replaces the standard span-per-call wrapper for targets that need their own
    (a wrapt-style ``wrapper(wrapped, instance, args, kwargs)``), e.g. SDK helpers returning
    context managers; the core still applies and restores it.
    """

    module: str
    target: str
    endpoint: Endpoint | None = None
    wrapper: Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any] | None = None


@dataclass(frozen=True)
class Applied:
    owner: Any
    name: str
    original: Any


# Operations of a span that records one model call (not an agent, workflow or tool span).
_MODEL_CALLS = frozenset((sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_GENERATE_CONTENT, sc.OP_EMBEDDINGS))


def recorded_by_another_tool(runtime: Runtime, context: Context | None = None) -> bool:
    """Whether the current span is another instrumentation's span for this very model call, exported
    through llmtrace's own span pipeline: e.g. pydantic-ai's ``chat`` span (``instrument=True``) around
    the openai SDK call. A span of ours inside it would count the call twice in ``llm_calls``, so
    the framework's span, already under its agent and tool spans, stands for the call. A framework
    span going to another pipeline (its own tracer provider) does not reach llmtrace's store: then
    llmtrace records the call itself."""
    span = trace.get_current_span(context)
    if not span.is_recording():
        return False
    attributes = getattr(span, "attributes", None)
    if not attributes or attributes.get(sc.OPERATION_NAME) not in _MODEL_CALLS:
        return False
    return getattr(span, "_span_processor", None) is getattr(runtime.tracer, "span_processor", False)


def start_invocation(
    endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Invocation | None:
    runtime = get_runtime()
    if runtime is None:
        return None
    context = current_context()  # read once: the checks and the span's context share it
    if context.get(_SUPPRESS_KEY):  # nested in an instrumented call: suppressed()
        return None
    if context.get(_SPAN_KEY) is not None and recorded_by_another_tool(runtime, context):  # no span: not recorded
        return None
    try:
        request = endpoint.parse_request(instance, args, kwargs)
        invocation = Invocation(runtime, endpoint, request, args, kwargs, context)
        invocation.enter(context)
        return invocation
    except Exception as exc:
        internal_error("span start", exc)
        return None


def _after(invocation: Invocation, result: Any, asynchronous: bool) -> Any:
    try:
        return observe_result(invocation, result, asynchronous=asynchronous)
    except Exception as exc:
        internal_error("response", exc)
        return result


def _sync_wrapper(endpoint: Endpoint) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = start_invocation(endpoint, instance, args, kwargs)
        if invocation is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            invocation.exit()
            invocation.fail(exc)
            raise
        invocation.exit()
        return _after(invocation, result, False)

    return wrapper


def _async_wrapper(endpoint: Endpoint) -> Any:
    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = start_invocation(endpoint, instance, args, kwargs)
        if invocation is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            invocation.exit()
            invocation.fail(exc)
            raise
        invocation.exit()
        return _after(invocation, result, True)

    return wrapper


def _wrapper_for(patch: Patch, owner: Any, original: Any) -> Any:
    if patch.wrapper is not None:
        return patch.wrapper
    assert patch.endpoint is not None, f"{patch.target}: a Patch needs an endpoint or a wrapper"
    # SDK decorators (e.g. openai's required_args) hide coroutine functions; Async* classes are async,
    # except their async generator methods (cohere's chat_stream): calling one returns the stream unawaited.
    is_async = not inspect.isasyncgenfunction(original) and (
        inspect.iscoroutinefunction(original) or getattr(owner, "__name__", "").startswith("Async")
    )
    return (_async_wrapper if is_async else _sync_wrapper)(patch.endpoint)


def _resolve(patch: Patch) -> tuple[Any, str, Any] | None:
    owner: Any = sys.modules.get(patch.module)  # never imported here: see watch()
    if owner is None:
        return None
    *path, name = patch.target.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    original = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if original is None:
        return None
    return owner, name, original


class LLMTraceWrapper(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg]
    """llmtrace's own patch: told apart from other tools' wrapt wrappers on the same method."""


# wrapt 2's FunctionWrapper derives from its C proxy base, not from the public ObjectProxy.
_PROXIES: tuple[type, ...] = tuple(
    kind for kind in (wrapt.FunctionWrapper, wrapt.ObjectProxy, getattr(wrapt, "BaseObjectProxy", None)) if kind
)


def apply(patches: list[Patch]) -> list[Applied]:
    """Wrap every target that exists; return what to restore."""
    applied: list[Applied] = []
    others: dict[str, list[str]] = {}
    for patch in patches:
        try:
            resolved = _resolve(patch)
            if resolved is None:
                continue
            owner, name, original = resolved
            if isinstance(original, LLMTraceWrapper) or isinstance(
                getattr(original, "_self_parent", None), LLMTraceWrapper
            ):
                continue  # patched by an earlier instrument() that was never undone, or bound from our patch
            if isinstance(original, _PROXIES):  # another tool's instrumentation (OpenLLMetry, OTel, ...)
                others.setdefault(_tool_of(original), []).append(f"{patch.module}.{patch.target}")
            setattr(owner, name, LLMTraceWrapper(original, _wrapper_for(patch, owner, original)))
            applied.append(Applied(owner, name, original))
        except Exception as exc:
            internal_error(f"patching {patch.module}.{patch.target}", exc)
    for tool, targets in others.items():
        log.warning(
            "llmtrace: %s is already instrumented by %s. llmtrace wraps it too: if that tool records spans, "
            "each call now gets two (and two rows in llm_calls); turn one of the two off to count each call once.",
            ", ".join(targets),
            tool,
        )
    return applied


def _tool_of(wrapper: Any) -> str:
    """The module whose wrapper function another tool installed, e.g. ``opentelemetry.instrumentation.openai_v2``."""
    try:
        module = getattr(wrapper._self_wrapper, "__module__", None)
    except Exception:
        module = None
    return str(module or "another tool")


def _unlink(outer: Any, item: Applied) -> None:
    """Another tool wrapped our patch: make the wrapper just outside ours wrap what ours wrapped."""
    while isinstance(outer, _PROXIES):
        inner: Any = getattr(outer, "__wrapped__", None)
        if isinstance(inner, LLMTraceWrapper):
            cast(Any, outer).__wrapped__ = item.original
            return
        outer = inner
    log.warning("llmtrace: could not find its patch on %s.%s to remove it", item.owner, item.name)


def restore(applied: list[Applied]) -> None:
    """Put every original back; where another tool wrapped our patch since, take ours out of its chain."""
    for item in reversed(applied):
        try:
            current = (
                vars(item.owner).get(item.name) if isinstance(item.owner, type) else getattr(item.owner, item.name)
            )
            if isinstance(current, LLMTraceWrapper) or not isinstance(current, _PROXIES):
                setattr(item.owner, item.name, item.original)
                continue
            _unlink(current, item)
        except Exception as exc:
            internal_error(f"restoring {item.name}", exc)

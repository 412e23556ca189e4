"""``instrument()`` / ``uninstrument()`` / ``flush()``: wiring the core to OpenTelemetry and the SDKs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from llmtrace import _after_import, config
from llmtrace.exporters.lazy import LazySpanExporter
from llmtrace.instrumentation import PROVIDERS, SDK_ROOTS, _core, _direct
from llmtrace.instrumentation._guard import internal_error

if TYPE_CHECKING:
    from llmtrace.instrumentation import _patching

log = logging.getLogger("llmtrace")
INSERT_SPANS = 8_192  # the direct exporter's INSERT size it waits for (at most its max_delay_s, 1 s)

__version__ = "0.1.0"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False
        self.provider: Any = None
        self.provider_hooks: list[tuple[Any, str]] = []  # provider methods we made drain our queue first
        self.exporter: Any = None  # ours, when llmtrace built the pipeline
        self.failed_seen = 0  # exporter.failed_spans at the last flush()
        self.watched: dict[str, list[_patching.Patch]] = {}  # SDK module name -> its targets
        self.applied: dict[str, list[_patching.Applied]] = {}  # SDK module name -> what to restore
        self.hooked: set[str] = set()  # modules with an import hook waiting (hooks cannot be removed)
        self.waiting: dict[str, list[str]] = {}  # SDK root module -> providers to load when it is imported
        self.loaded: set[str] = set()  # providers whose targets are watched


_state = _State()


def _build_exporter(settings: config.Settings) -> SpanExporter:
    """The exporter for spans when the app gave none: built lazily (off the start-up path)."""
    if settings.clickhouse_url:
        url = settings.clickhouse_url

        def clickhouse() -> SpanExporter:
            from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

            # The sender thread lets rows queued during an INSERT share the next one: the
            # processor's 512-span batches otherwise pay an INSERT's fixed cost each (~5x the CPU).
            # It waits for 8,192 spans (at most 1 s): below saturation too, INSERTs stay large
            # (server CPU per span at 5k spans/s: 86-129 -> 68-77 us, benchmarks/direct_exporter.py).
            return ClickHouseSpanExporter(url, background=True, insert_spans=INSERT_SPANS)

        return LazySpanExporter(clickhouse)
    endpoint = settings.endpoint
    assert endpoint is not None  # config always sets one when there is no clickhouse_url

    def otlp() -> SpanExporter:
        from llmtrace.exporters.otlp import OtlpHttpSpanExporter  # stdlib HTTP: ~6 MB less than OTel's

        return OtlpHttpSpanExporter(endpoint)

    return LazySpanExporter(otlp)


def _build_provider(settings: config.Settings, exporter: SpanExporter | None) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from llmtrace import semconv as sc

    attributes: dict[str, str] = {sc.SERVICE_NAME: settings.service_name}
    if settings.environment:
        attributes[sc.DEPLOYMENT_ENVIRONMENT_NAME] = settings.environment
    if settings.release:
        attributes[sc.SERVICE_VERSION] = settings.release
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None:
        exporter = _state.exporter = _build_exporter(settings)
        provider.add_span_processor(_PrepareOnFirstSpan(_state.exporter))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class _PrepareOnFirstSpan(SpanProcessor):
    """Builds our lazy exporter when the first span starts: on the app's thread (spans start on the thread
    making the call), never on the BatchSpanProcessor's thread, where its imports (few for OTLP, the
    HTTP client for direct ClickHouse) would race the app's own imports. Costs nothing at start-up; one
    check per span after."""

    def __init__(self, exporter: LazySpanExporter) -> None:
        self._exporter: LazySpanExporter | None = exporter

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        exporter = self._exporter
        if exporter is not None:
            try:
                exporter.prepare()
            except Exception as exc:  # a missing or broken exporter must not fail the app's call
                internal_error("building the span exporter", exc)
            self._exporter = None


# Quiet once the exporter is built (the first span, on the SDK path): then the direct span path may run.
_direct.register_quiet(_PrepareOnFirstSpan, when=lambda processor: processor._exporter is None)


def _choose_provider(settings: config.Settings, tracer_provider: Any, exporter: SpanExporter | None) -> Any:
    """The app's provider when it has one (we add spans, no exporter); otherwise one we build and install."""
    if tracer_provider is not None:
        return tracer_provider
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider) and exporter is None:
        return current
    provider = _build_provider(settings, exporter)
    if not isinstance(current, TracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def _patch_module(name: str) -> None:
    """Apply the targets in SDK module ``name``, which is imported (called under the lock)."""
    if not _state.active or name in _state.applied:
        return
    patches = _state.watched.get(name)
    if patches:
        from llmtrace.instrumentation import _patching  # imports wrapt: only once an SDK is there

        _state.applied[name] = _patching.apply(patches)


def _imported(module: ModuleType) -> None:
    """The post-import hook: runs on the thread that imported the module, right after it loaded.

    An exception here would fail the app's import, so internal errors stay inside the guard."""
    try:
        with _state.lock:
            _state.hooked.discard(module.__name__)
            if _state.active:
                for key in _state.waiting.pop(module.__name__, ()):
                    _load_provider(key)
            _patch_module(module.__name__)
    except Exception as exc:
        internal_error(f"patching {module.__name__}", exc)


def _hook(name: str) -> None:
    if name not in _state.hooked:
        _state.hooked.add(name)
        _after_import.when_imported(name, _imported)


def _watch(name: str) -> None:
    """Patch ``name`` now if the app (or the SDK) imported it, else as soon as it does: llmtrace never
    imports an SDK module itself, so the app loads no resource it does not use, and we add no start-up."""
    if name in sys.modules:
        _patch_module(name)
    else:
        _hook(name)


def _load_provider(key: str) -> None:
    """Read provider ``key``'s patch targets (importing its module, and with it wrapt) and watch them."""
    if key in _state.loaded:
        return
    _state.loaded.add(key)
    names = []
    for patch in importlib.import_module(PROVIDERS[key]).patches():
        _state.watched.setdefault(patch.module, []).append(patch)
        names.append(patch.module)
    for name in dict.fromkeys(names):
        _watch(name)


def _watch_provider(key: str) -> None:
    """Load provider ``key`` once one of its SDK's root modules is imported: before the SDKs,
    ``instrument()`` imports neither the provider modules nor wrapt."""
    roots = SDK_ROOTS[key]
    if any(root in sys.modules for root in roots):
        _load_provider(key)
        return
    for root in roots:
        _state.waiting.setdefault(root, []).append(key)
        _hook(root)


def instrument(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    tracer_provider: Any = None,
    providers: Sequence[str] | None = None,
    capture_content: bool | None = None,
    redact: config.Redactor | None = None,
    max_content_chars: int | None = None,
    environment: str | None = None,
    release: str | None = None,
    clickhouse_url: str | None = None,
) -> None:
    """Trace every LLM call made through the installed SDKs. See the README for each argument."""
    settings = config.resolve(
        known_providers=list(PROVIDERS),
        service_name=service_name,
        endpoint=endpoint,
        clickhouse_url=clickhouse_url,
        providers=providers,
        capture_content=capture_content,
        redact=redact,
        max_content_chars=max_content_chars,
        environment=environment,
        release=release,
    )
    with _state.lock:
        if settings.disabled:
            log.info("llmtrace: LLMTRACE_DISABLED is set; not instrumenting.")
            return
        if _state.active:
            warnings.warn("llmtrace.instrument() was already called; ignoring this call.", stacklevel=2)
            return
        _state.provider = _choose_provider(settings, tracer_provider, exporter)
        _drain_before_flush(_state.provider)
        tracer = _state.provider.get_tracer("llmtrace", __version__)
        _core.set_runtime(_core.Runtime(tracer, settings))
        _state.active = True
        for key in settings.providers or list(PROVIDERS):
            _watch_provider(key)


def _drain_before_flush(provider: Any) -> None:
    """The app's own ``provider.force_flush()`` / ``shutdown()`` first finish the spans llmtrace's
    worker still holds: code that flushes OpenTelemetry the usual way loses nothing."""
    from llmtrace.instrumentation._worker import worker as enrichment

    if not hasattr(provider, "__dict__"):
        return  # methods cannot be shadowed on this object
    for name in ("force_flush", "shutdown"):
        original = getattr(provider, name, None)
        if original is None or name in vars(provider):
            continue  # absent, or already shadowed

        def drained(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            enrichment.drain()
            return _original(*args, **kwargs)

        try:
            setattr(provider, name, drained)
        except (AttributeError, TypeError):
            continue
        _state.provider_hooks.append((provider, name))


def _undo_drain_hooks() -> None:
    for provider, name in _state.provider_hooks:
        with contextlib.suppress(AttributeError):
            delattr(provider, name)
    _state.provider_hooks.clear()


def uninstrument() -> None:
    """Restore every patched SDK method exactly; spans already started still end normally."""
    with _state.lock:
        if not _state.active:
            return
        if _state.applied:
            from llmtrace.instrumentation import _patching

            for applied in reversed(list(_state.applied.values())):
                _patching.restore(applied)
        _state.applied.clear()
        _state.watched.clear()
        _state.waiting.clear()
        _state.loaded.clear()
        _state.active = False
        _core.set_runtime(None)
    flush()
    _undo_drain_hooks()


def flush(timeout_s: float = 5.0) -> bool:
    """Export every finished span now. False if that did not finish within ``timeout_s`` or if a
    batch failed to export since the last flush (the destination is down or refused it)."""
    from llmtrace.instrumentation._worker import worker as enrichment

    enrichment.drain()  # spans still waiting for their attributes end first
    enrichment.raise_pending()
    provider = _state.provider
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return True
    outcome: list[bool] = []
    # The SDK's force_flush can overrun its timeout while the exporter retries: bound it ourselves.
    worker = threading.Thread(target=lambda: outcome.append(bool(force_flush(int(timeout_s * 1000)))), daemon=True)
    worker.start()
    worker.join(timeout_s)
    failed = _failed_spans()
    delivered = failed == _state.failed_seen
    _state.failed_seen = failed
    return bool(outcome and outcome[0]) and delivered


def _failed_spans() -> int:
    """Spans our own exporter failed to deliver so far (0 when the app owns the pipeline)."""
    exporter = _state.exporter
    return exporter.failed_spans if isinstance(exporter, LazySpanExporter) else 0

"""``instrument()`` / ``uninstrument()`` / ``flush()``: wiring the core to OpenTelemetry and the SDKs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from llmtrace import config
from llmtrace.instrumentation import PROVIDERS, _core, _patching

log = logging.getLogger("llmtrace")

__version__ = "0.1.0"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False
        self.provider: Any = None
        self.provider_hooks: list[tuple[Any, str]] = []  # provider methods we made drain our queue first
        self.exporter: Any = None  # ours, when llmtrace built the pipeline
        self.failed_seen = 0  # exporter.failed_spans at the last flush()
        self.applied: dict[str, list[_patching.Applied]] = {}
        self.hooks_registered: set[str] = set()
        self.modules: dict[str, ModuleType] = {}


_state = _State()


def _build_exporter(settings: config.Settings) -> SpanExporter:
    """The exporter for spans when the app gave none: built lazily (off the start-up path)."""
    from llmtrace.exporters.lazy import LazySpanExporter

    if settings.clickhouse_url:
        url = settings.clickhouse_url

        def clickhouse() -> SpanExporter:
            from llmtrace.exporters.clickhouse import ClickHouseSpanExporter

            return ClickHouseSpanExporter(url)

        return LazySpanExporter(clickhouse)
    endpoint = settings.endpoint

    def otlp() -> SpanExporter:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint)

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
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


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


def _patch_provider(key: str) -> None:
    with _state.lock:
        if not _state.active or key in _state.applied:
            return
        module = _state.modules[key]
        hook = getattr(module, "on_instrument", None)
        if hook is not None:
            hook()
        _state.applied[key] = _patching.apply(module.patches())


def _watch_sdk(key: str, module: ModuleType) -> None:
    """Patch now if the app already imported the SDK, else as soon as it does (keeps our start-up cheap)."""
    _state.modules[key] = module
    if key in _state.hooks_registered:
        import sys

        if module.SDK in sys.modules:
            _patch_provider(key)
        return
    _state.hooks_registered.add(key)
    wrapt.register_post_import_hook(lambda _sdk: _patch_provider(key), module.SDK)


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
            _watch_sdk(key, importlib.import_module(PROVIDERS[key]))
    threading.Thread(target=_warm_prices, name="llmtrace-prices", daemon=True).start()


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


def _warm_prices() -> None:
    from llmtrace import pricing

    pricing.warm_up()


def uninstrument() -> None:
    """Restore every patched SDK method exactly; spans already started still end normally."""
    with _state.lock:
        if not _state.active:
            return
        for key, applied in _state.applied.items():
            _patching.restore(applied)
            hook = getattr(_state.modules[key], "on_uninstrument", None)
            if hook is not None:
                hook()
        _state.applied.clear()
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
    from llmtrace.exporters.lazy import LazySpanExporter

    exporter = _state.exporter
    return exporter.failed_spans if isinstance(exporter, LazySpanExporter) else 0

"""Peer instrumentations measured beside llmtrace, and a switchboard that runs one at a time.

Peers (dev-only, ``pip install -e .[bench]``): the official OpenTelemetry OpenAI instrumentation
(``opentelemetry-instrumentation-openai-v2``), OpenInference (``openinference-instrumentation-openai``
and ``-anthropic``) and OpenLIT (its per-SDK instrumentors, metrics off). All record content,
all send their spans to the same tracer provider, so only instrumentation cost differs.

:class:`Switchboard` instruments each configuration once, takes the wrapt wrapper it put on each
SDK method (``OpenAI.request`` for OpenInference, ``Completions.create`` for the others, ...) and
puts the SDK's method back; then every patched method gets one dispatching wrapper that calls
the active configuration's wrapper, or the SDK's method directly. Every configuration, bare
included, pays the same dispatch, so calls of different configurations can be interleaved one by
one in one process and compared paired.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.sdk.trace import TracerProvider

_MISSING = object()
Key = tuple[Any, str]  # (module or class, attribute name)


def _otel_openai_v2(provider: TracerProvider) -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)  # content: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    return instrumentor


def _openinference(sdk: str) -> Callable[[TracerProvider], Any]:
    def instrument(provider: TracerProvider) -> Any:
        if sdk == "openai":
            from openinference.instrumentation.openai import OpenAIInstrumentor as Instrumentor
        else:
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as Instrumentor
        instrumentor = Instrumentor()
        instrumentor.instrument(tracer_provider=provider)  # records content unless told to hide it
        return instrumentor

    return instrument


def _openlit(sdk: str) -> Callable[[TracerProvider], Any]:
    """OpenLIT's instrumentor alone (``openlit.init`` would also start metrics, an OTLP exporter and
    fetch a price list); it takes the global tracer provider, which the benchmark sets to its own."""

    def instrument(provider: TracerProvider) -> Any:
        from openlit._config import OpenlitConfig

        if sdk == "openai":
            from openlit.instrumentation.openai import OpenAIInstrumentor as Instrumentor
        else:
            from openlit.instrumentation.anthropic import AnthropicInstrumentor as Instrumentor
        settings = {"environment": "bench", "application_name": "bench", "pricing_info": {},
                    "capture_message_content": True, "disable_metrics": True, "disable_events": True}  # fmt: skip
        OpenlitConfig().update_config(otlp_endpoint=None, otlp_headers=None, disable_batch=False, metrics_dict=None,
                                      **settings)  # fmt: skip  # what openlit.init() sets before instrumenting
        instrumentor = Instrumentor()
        instrumentor.instrument(**settings)
        return instrumentor

    return instrument


_PEERS: dict[str, dict[str, tuple[str, Callable[[TracerProvider], Any]]]] = {
    "openai": {
        "otel-v2": ("opentelemetry.instrumentation.openai_v2", _otel_openai_v2),
        "openinference": ("openinference.instrumentation.openai", _openinference("openai")),
        "openlit": ("openlit.instrumentation.openai", _openlit("openai")),
    },
    "anthropic": {
        "openinference": ("openinference.instrumentation.anthropic", _openinference("anthropic")),
        "openlit": ("openlit.instrumentation.anthropic", _openlit("anthropic")),
    },
}


def available(sdk: str) -> dict[str, Callable[[TracerProvider], Any]]:
    """The peers installed for ``sdk``, by name."""
    import importlib.util

    found = {}
    for name, (module, instrument) in _PEERS[sdk].items():
        try:
            if importlib.util.find_spec(module) is not None:
                found[name] = instrument
        except ModuleNotFoundError:
            continue
    return found


def _owners(roots: tuple[str, ...]) -> list[Any]:
    """The SDKs' loaded modules and the classes they define: everywhere a peer may patch."""
    owners: list[Any] = []
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in roots:
            continue
        owners.append(module)
        owners += [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    return owners


def _is_wrapper(value: Any) -> bool:
    return hasattr(value, "_self_wrapper") and hasattr(value, "__wrapped__")


def _put(owner: Any, name: str, value: Any) -> None:
    if value is _MISSING:
        delattr(owner, name)
    else:
        setattr(owner, name, value)


class Switchboard:
    """Each configuration's wrappers on the SDK methods, behind one dispatcher per method."""

    def __init__(self, roots: tuple[str, ...] = ("openai", "anthropic")) -> None:
        self.roots = roots
        self.layers: dict[str, dict[Key, Any]] = {}
        self.originals: dict[Key, Any] = {}  # as in the owner's __dict__ (_MISSING: inherited)
        self.active: dict[Key, Any] = {}

    def capture(self, config: str, instrument: Callable[[], Any]) -> Any:
        """Run ``instrument``, keep the wrappers it added and put the SDK's methods back."""
        owners = _owners(self.roots)
        before = [(owner, dict(vars(owner))) for owner in owners]
        result = instrument()
        layer = self.layers.setdefault(config, {})
        for owner, old in before:
            for name, value in list(vars(owner).items()):
                previous = old.get(name, _MISSING)
                if value is previous or not _is_wrapper(value):
                    continue
                layer[owner, name] = value._self_wrapper
                self.originals.setdefault((owner, name), previous)
                _put(owner, name, previous)
        if not layer:
            raise RuntimeError(f"{config} patched nothing in {self.roots}: is it compatible with these SDKs?")
        return result

    def install(self) -> None:
        for (owner, name), original in self.originals.items():
            method = original if original is not _MISSING else getattr(owner, name)
            setattr(owner, name, wrapt.FunctionWrapper(method, self._dispatch((owner, name))))

    def _dispatch(self, key: Key) -> Callable[..., Any]:
        def dispatch(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            wrapper = self.active.get(key)
            if wrapper is None:
                return wrapped(*args, **kwargs)
            return wrapper(wrapped, instance, args, kwargs)

        return dispatch

    def use(self, config: str) -> None:
        self.active = self.layers.get(config, {})

    def uninstall(self) -> None:
        for (owner, name), original in self.originals.items():
            _put(owner, name, original)
        self.active = {}

    def patched(self, config: str) -> list[str]:
        return sorted(f"{getattr(owner, '__qualname__', owner.__name__)}.{name}" for owner, name in self.layers[config])

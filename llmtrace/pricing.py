"""Cost of a call in USD, from genai-prices, plus user overrides.

genai-prices' full calculation costs ~50 µs per call (Decimal arithmetic over a unit
registry), too much for the hot path. Prices are linear in each token kind unless the
model has tiered prices, so we ask genai-prices once per (provider, model) for the price
of one million tokens of each kind and multiply; tiered models take the full path.
A model with no known price gets no cost (never a wrong one) and is logged once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("llmtrace")

_MTOK = 1_000_000
_PROBE = 1_000  # tokens per probe: small enough to sit below any long-context tier


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as the GenAI conventions define them (input includes cache, output includes reasoning)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class LinearPrice:
    """USD per token for each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    up_to_input: int | None = None
    """Valid for calls with fewer input tokens than this (tiered models); None: always."""

    def cost(self, usage: TokenUsage) -> float:
        uncached = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
        return (
            uncached * self.input
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )


_overrides: dict[tuple[str, str], LinearPrice] = {}
_resolved: dict[tuple[str, str], LinearPrice | Any | None] = {}
_lock = threading.Lock()

# genai-prices names providers by its own ids; map ours where they differ.
_PROVIDER_IDS = {
    "azure.ai.openai": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}


def set_price(
    provider: str,
    model: str,
    *,
    input_per_mtok: float,
    output_per_mtok: float,
    cache_read_per_mtok: float | None = None,
    cache_write_per_mtok: float | None = None,
) -> None:
    """Override (or add) a model's price in USD per million tokens; wins over genai-prices."""
    _overrides[(provider, model)] = LinearPrice(
        input=input_per_mtok / _MTOK,
        output=output_per_mtok / _MTOK,
        cache_read=(input_per_mtok if cache_read_per_mtok is None else cache_read_per_mtok) / _MTOK,
        cache_write=(input_per_mtok if cache_write_per_mtok is None else cache_write_per_mtok) / _MTOK,
    )


def _full_price(usage: TokenUsage, model: str, provider: str | None) -> float:
    from genai_prices import Usage, calc_price

    result = calc_price(
        Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        ),
        model_ref=model,
        provider_id=provider,
    )
    return float(result.total_price)


def _probe(model: str, provider: str | None) -> LinearPrice | str | None:
    """The per-token price of a model, valid below ``up_to_input`` input tokens when the model has
    tiered (long-context) prices; ``"tiered"`` when even small calls are not linear; None when unknown."""
    try:
        per_in = _full_price(TokenUsage(input_tokens=_PROBE), model, provider) / _PROBE
    except LookupError:
        return None
    per_out = _full_price(TokenUsage(output_tokens=_PROBE), model, provider) / _PROBE
    per_read = _full_price(TokenUsage(input_tokens=_PROBE, cache_read_tokens=_PROBE), model, provider) / _PROBE
    per_write = _full_price(TokenUsage(input_tokens=_PROBE, cache_write_tokens=_PROBE), model, provider) / _PROBE
    linear = LinearPrice(per_in, per_out, per_read, per_write)

    def matches(input_tokens: int) -> bool:
        usage = TokenUsage(input_tokens=input_tokens, output_tokens=_PROBE)
        exact = _full_price(usage, model, provider)
        return abs(linear.cost(usage) - exact) <= 1e-9 * max(exact, 1e-12)

    if not matches(_PROBE):
        return "tiered"
    valid = _PROBE
    for size in (10_000, 100_000, 1_000_000, 10_000_000):
        if not matches(size):
            return dataclasses.replace(linear, up_to_input=_first_mismatch(matches, valid, size))
        valid = size
    return linear


def _first_mismatch(matches: Callable[[int], bool], valid: int, invalid: int) -> int:
    """Binary search for the smallest input size where the linear price stops holding (a tier starts)."""
    while invalid - valid > 1:
        middle = (valid + invalid) // 2
        if matches(middle):
            valid = middle
        else:
            invalid = middle
    return invalid


def _lookup(provider: str, model: str) -> LinearPrice | str | None:
    key = (provider, model)
    if key in _overrides:
        return _overrides[key]
    if key not in _resolved:
        with _lock:
            if key not in _resolved:
                provider_id = _PROVIDER_IDS.get(provider, provider) or None
                found = _probe(model, provider_id)
                if found is None and provider_id is not None:
                    found = _probe(model, None)  # OpenAI-compatible hosts serving a known model
                _resolved[key] = found
    return _resolved[key]


_unpriced_reported: set[tuple[str, str]] = set()


def cost_usd(provider: str, models: Sequence[str | None], usage: TokenUsage) -> float | None:
    """USD cost of a call priced by the first of ``models`` with a known price (response model, then
    request model), or None when none has one (logged once per model)."""
    for model in models:
        if not model:
            continue
        price = _lookup(provider, model)
        if isinstance(price, LinearPrice) and (price.up_to_input is None or usage.input_tokens < price.up_to_input):
            return price.cost(usage)
        if price is not None:
            try:
                return _full_price(usage, model, _PROVIDER_IDS.get(provider, provider))
            except LookupError:  # priced by model name alone (OpenAI-compatible host)
                return _full_price(usage, model, None)
    named = next((m for m in models if m), None)
    if named and (provider, named) not in _unpriced_reported:
        _unpriced_reported.add((provider, named))
        log.info(
            "llmtrace: no known price for model %r (provider %r); its calls get no cost. "
            "Add one with llmtrace.set_price().",
            named,
            provider,
        )
    return None


def warm_up() -> None:
    """Import genai-prices and its data off the hot path (called on a background thread)."""
    try:
        cost_usd("openai", ["gpt-4o-mini"], TokenUsage(input_tokens=1))
    except Exception:  # pragma: no cover - warm-up is best effort
        log.debug("llmtrace: price warm-up failed", exc_info=True)

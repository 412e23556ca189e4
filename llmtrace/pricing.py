"""Cost of a call in USD, from llmtrace's compact copy of genai-prices, plus user overrides.

Prices come from ``_prices.json``, built from genai-prices at release time by
:mod:`llmtrace._price_table` (plus its short ``SUPPLEMENT`` of models genai-prices lacks, each with
its source; per model: its match rule and USD per token of each kind, per
input-size tier, with date or time-of-day constraints). Each provider's models are parsed
when that provider is first priced, on the thread pricing the call, with nothing imported:
no start-up cost, ~0.3 MB instead of genai-prices' full data set, and no import racing the app.
Costs equal genai-prices' own calculation (``tests/test_price_table.py``). A model with no
known price gets no cost (never a wrong one) and is logged once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("llmtrace")

_MTOK = 1_000_000
_TABLE = Path(__file__).with_name("_prices.json")


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

    def cost(self, usage: TokenUsage) -> float:
        uncached = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
        return (
            uncached * self.input
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )


_overrides: dict[tuple[str, str], LinearPrice] = {}
_resolved: dict[tuple[str, str], list[Any] | None] = {}
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


def overrides() -> dict[tuple[str, str], LinearPrice]:
    """The overrides ``set_price`` was given in this process, by (provider, model)."""
    return dict(_overrides)


Segment = list[float]
"""``[start, fee, input, output, cache_read, cache_write]``: USD per call and per token, for calls with more
than ``start`` input tokens (genai-prices' tiers apply their rate to every token once crossed)."""
# (provider, model) -> its tiers, for models whose table price has no date or time condition: what
# ``quick_cost`` reads with one lookup instead of the general path's helper calls
_fixed: dict[tuple[str, str], list[Segment]] = {}


class _Table:
    """genai-prices' providers as llmtrace's table ships them; a provider's models are parsed on first use."""

    def __init__(self) -> None:
        data = json.loads(_TABLE.read_text(encoding="utf-8"))
        self.providers: list[dict[str, Any]] = data["providers"]
        self.by_id = {p["id"]: p for p in self.providers}

    def models(self, provider: dict[str, Any]) -> list[Any]:
        models = provider["models"]
        if isinstance(models, str):
            models = provider["models"] = json.loads(models)
        return models  # type: ignore[no-any-return]

    def provider(self, provider_id: str | None, model: str) -> dict[str, Any] | None:
        """genai-prices' provider lookup: by id, then by its provider-id rule; without an id, by model name."""
        if provider_id is None:
            return next((p for p in self.providers if _matches(p["model_match"], model)), None)
        wanted = provider_id.lower().strip()
        found = self.by_id.get(wanted)
        return found or next((p for p in self.providers if _matches(p["provider_match"], wanted)), None)

    def find(self, provider: dict[str, Any], model: str) -> list[Any] | None:
        """The model's conditional prices: its own rules, then one step of fallback providers, then the
        compact-dated form (``-20251211`` as ``-2025-12-11``), as genai-prices does."""
        found = self._match(provider, model, fallback=True)
        if found is None:
            dashed = _COMPACT_DATE.sub(_dashed_date, model)
            if dashed != model:
                found = self._match(provider, dashed, fallback=True)
        return found

    def _match(self, provider: dict[str, Any], model: str, fallback: bool) -> list[Any] | None:
        for rule, prices in self.models(provider):
            if _matches(rule, model):
                return prices  # type: ignore[no-any-return]
        for other in provider["fallback"] if fallback else ():
            if other in self.by_id and (found := self._match(self.by_id[other], model, fallback=False)):
                return found
        return None


def _matches(rule: Any, text: str) -> bool:
    if rule is None:
        return False
    kind, arg = rule
    if kind == "or":
        return any(_matches(r, text) for r in arg)
    if kind == "and":
        return all(_matches(r, text) for r in arg)
    if kind == "regex":
        return re.search(arg, text) is not None
    text, arg = text.lower(), arg.lower()
    if kind == "starts_with":
        return text.startswith(arg)
    if kind == "ends_with":
        return text.endswith(arg)
    if kind == "contains":
        return arg in text
    return bool(kind == "equals" and text == arg)


_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _dashed_date(match: re.Match[str]) -> str:
    year, month, day = (int(match.group(i)) for i in range(2, 5))
    try:
        date(year, month, day)
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"


_table: _Table | None = None


def _load() -> _Table:
    global _table
    if _table is None:
        _table = _Table()
    return _table


def _lookup(provider: str, model: str) -> LinearPrice | list[Any] | None:
    """The override, else the model's conditional prices from the table (cached), else None."""
    key = (provider, model)
    if key in _overrides:
        return _overrides[key]
    if key not in _resolved:
        with _lock:
            if key not in _resolved:
                table = _load()
                ref = model.lower()
                provider_id = _PROVIDER_IDS.get(provider, provider) or None
                found = None
                if provider_id is not None and (entry := table.provider(provider_id, ref)) is not None:
                    found = table.find(entry, ref)
                if found is None and (entry := table.provider(None, ref)) is not None:
                    found = table.find(entry, ref)  # OpenAI-compatible hosts serving a known model
                _resolved[key] = found
    return _resolved[key]


def _active(prices: list[Any]) -> list[Segment] | None:
    """genai-prices' rule: the last price whose constraint holds now, else the first."""
    if len(prices) == 1:
        return prices[0][1]  # type: ignore[no-any-return]
    now = datetime.now(timezone.utc)
    for constraint, segments in reversed(prices):
        if constraint is None:
            return segments  # type: ignore[no-any-return]
        if constraint[0] == "since" and now.date().isoformat() >= constraint[1]:
            return segments  # type: ignore[no-any-return]
        if constraint[0] == "daily":
            clock, start, end = now.time().isoformat(), constraint[1], constraint[2]
            if (start <= clock < end) if start <= end else (clock >= start or clock < end):
                return segments  # type: ignore[no-any-return]
    return prices[0][1]  # type: ignore[no-any-return]


def _segment_cost(segments: list[Segment], usage: TokenUsage) -> float:
    return _tokens_cost(
        segments, usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
    )


def _tokens_cost(segments: list[Segment], input_tokens: int, output_tokens: int, read: int, write: int) -> float:
    segment = segments[0]
    for candidate in segments:
        if input_tokens > candidate[0]:
            segment = candidate
    _, fee, per_in, per_out, per_read, per_write = segment
    uncached = max(input_tokens - read - write, 0)
    return fee + uncached * per_in + output_tokens * per_out + read * per_read + write * per_write


_unpriced_reported: set[tuple[str, str]] = set()


def price_segments(provider: str, models: Sequence[str | None]) -> list[Segment] | None:
    """The price in force now for the first of ``models`` with one (an override first), as
    :data:`Segment` s; None when no model has a price. The one answer both call-time pricing
    and re-pricing stored calls (:mod:`llmtrace.store.prices`) use."""
    for model in models:
        if not model:
            continue
        key = (provider, model)  # a model priced before (no override): its entry without a call (per-call path)
        price = _resolved[key] if key in _resolved and key not in _overrides else _lookup(provider, model)
        if isinstance(price, LinearPrice):
            return [[0, 0.0, price.input, price.output, price.cache_read, price.cache_write]]
        if price is not None:
            if len(price) == 1:  # one price, in force at any date: quick_cost's from now on
                _fixed[key] = price[0][1]
            return price[0][1] if len(price) == 1 else _active(price)  # type: ignore[no-any-return]
    return None


def quick_cost(provider: str, model: str, input_tokens: int, output_tokens: int, read: int, write: int) -> float | None:
    """:func:`tokens_cost_usd` for one model priced before whose price has no date or time condition (the usual
    call: one lookup keyed by the model's name and no helper calls, on the cold caches of a call's end);
    None: ask ``tokens_cost_usd``. A model with an override always goes that way (set_price wins)."""
    key = (provider, model)
    segments = _fixed.get(key)
    if segments is None or key in _overrides:
        return None
    segment = segments[0]  # _tokens_cost, inline
    for candidate in segments:
        if input_tokens > candidate[0]:
            segment = candidate
    _, fee, per_in, per_out, per_read, per_write = segment
    uncached = input_tokens - read - write
    uncached = uncached if uncached > 0 else 0  # max(..., 0) without the call
    return fee + uncached * per_in + output_tokens * per_out + read * per_read + write * per_write


def cost_usd(provider: str, models: Sequence[str | None], usage: TokenUsage) -> float | None:
    """USD cost of a call priced by the first of ``models`` with a known price (response model, then
    request model), or None when none has one (logged once per model)."""
    return tokens_cost_usd(
        provider, models, usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
    )


def tokens_cost_usd(
    provider: str,
    models: Sequence[str | None],
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
) -> float | None:
    """:func:`cost_usd` from the four counts, without a :class:`TokenUsage` (a frozen dataclass costs
    ~2 µs to build on the per-call path)."""
    segments = price_segments(provider, models)
    if segments is not None:
        return _tokens_cost(segments, input_tokens, output_tokens, cache_read, cache_write)
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

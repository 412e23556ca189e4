"""Load ``model_prices`` from genai-prices plus user overrides, for query-time pricing.

Calls are priced when they happen (``llmtrace.pricing``); this table lets the
``llm_calls_priced`` view price the rest afterwards (models that were unknown then, spans from
instrumentations that record no cost). Each model is stored under its genai-prices id and
under every exact alias genai-prices matches (``gpt-4o-2024-08-06`` -> ``gpt-4o``).

Overrides file (``--prices-file``): a JSON list of objects
``{"model": "...", "provider": "...", "input_mtok": 1.0, "output_mtok": 2.0,
"cache_read_mtok": 0.1, "cache_write_mtok": 1.25}`` (USD per million tokens; provider and
cache prices optional). Overrides win over genai-prices for the same model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["MODEL_PRICES_COLUMNS", "genai_price_rows", "load_model_prices", "override_rows", "read_overrides"]

MODEL_PRICES_COLUMNS = (
    "Provider",
    "Model",
    "InputPerMTok",
    "OutputPerMTok",
    "CacheReadPerMTok",
    "CacheWritePerMTok",
    "Source",
    "UpdatedAt",
)
Row = tuple[str, str, float, float, float | None, float | None, str, datetime]
# genai-prices provider ids -> llm_calls.Provider values (gen_ai.provider.name spellings).
_PROVIDER_NAMES: dict[str, tuple[str, ...]] = {
    "google": ("gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"),
    "aws": ("aws.bedrock",),
    "azure": ("azure.ai.openai", "azure.ai.inference"),
    "x-ai": ("x_ai",),
    "mistral": ("mistral_ai",),
}
# insert(table, rows, column_names=...) — clickhouse-connect's Client.insert signature.
Inserter = Callable[..., Any]


def load_model_prices(
    insert: Inserter,
    overrides: str | Path | list[dict[str, Any]] | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Insert genai-prices' current prices and the overrides; return the number of rows written."""
    stamp = now or datetime.now(timezone.utc).replace(tzinfo=None)
    rows = genai_price_rows(stamp)
    if overrides is not None:
        rows += override_rows(read_overrides(overrides), stamp)
    insert("model_prices", rows, column_names=list(MODEL_PRICES_COLUMNS))
    return len(rows)


def genai_price_rows(stamp: datetime) -> list[Row]:
    """One row per (provider, model name) with today's base price from genai-prices."""
    from genai_prices import data

    when = stamp.replace(tzinfo=timezone.utc)
    rows: list[Row] = []
    for provider in data.providers:
        for model in provider.models:
            price = _current_price(model.prices, when)
            if price is None or (price.input_mtok is None and price.output_mtok is None):
                continue
            values = (
                _per_mtok(price.input_mtok) or 0.0,
                _per_mtok(price.output_mtok) or 0.0,
                _per_mtok(price.cache_read_mtok),
                _per_mtok(price.cache_write_mtok),
            )
            for provider_name in _PROVIDER_NAMES.get(provider.id, (provider.id,)):
                for name in sorted({model.id, *_exact_names(model.match)}):
                    rows.append((provider_name, name, *values, "genai-prices", stamp))
    return rows


def read_overrides(source: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read and check an overrides list (a path to JSON, or the list itself)."""
    if isinstance(source, list):
        entries: Any = source
    else:
        path = Path(source)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read prices file {path}: {exc}") from exc
    if not isinstance(entries, list):
        raise ValueError('prices file must hold a JSON list like [{"model": "m", "input_mtok": 1, "output_mtok": 2}]')
    for number, entry in enumerate(entries, start=1):
        missing = [k for k in ("model", "input_mtok", "output_mtok") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"prices file entry {number} lacks {', '.join(missing)} (USD per million tokens)")
    return entries


def override_rows(entries: Iterable[dict[str, Any]], stamp: datetime) -> list[Row]:
    def opt(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        (
            str(e.get("provider", "")),
            str(e["model"]),
            float(e["input_mtok"]),
            float(e["output_mtok"]),
            opt(e.get("cache_read_mtok")),
            opt(e.get("cache_write_mtok")),
            "override",
            stamp,
        )
        for e in entries
    ]


def _current_price(prices: Any, when: datetime) -> Any:
    """The price in force at ``when``: genai-prices uses the last active conditional price.
    Time-of-day discounts are not a model's list price, so they are skipped."""
    if not isinstance(prices, list):
        return prices
    chosen = None
    for conditional in prices:
        constraint = conditional.constraint
        if constraint is None or (hasattr(constraint, "start_date") and constraint.active(when)):
            chosen = conditional.prices
    return chosen


def _per_mtok(value: Any) -> float | None:
    if value is None:
        return None
    base = getattr(value, "base", value)  # TieredPrices: the price below the first tier
    return float(base) if isinstance(base, (Decimal, int, float)) else None


def _exact_names(clause: Any) -> Iterator[str]:
    equals = getattr(clause, "equals", None)
    if isinstance(equals, str):
        yield equals
    for child in getattr(clause, "or_", None) or ():
        yield from _exact_names(child)

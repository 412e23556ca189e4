"""Build ``_prices.json``, llmtrace's compact price table, from genai-prices (run at release time).

genai-prices' bundled data is ~1.6 MB of Python building Decimal dataclasses: importing it
costs ~10-26 MB of RSS and, done lazily, an import on whatever thread prices first. The
table keeps only what pricing a call by its token counts needs: each provider's match
rules and, per model, its match rule and prices as USD per token for the four token kinds
(input, output, cache read, cache write), per input-size tier, with their date or
time-of-day constraints. Prices are measured by asking genai-prices' own calculation, so
the table inherits its semantics (tiers, cache fallbacks, per-request fees); a price the
four kinds cannot express is stored as null (no cost rather than a wrong one).

genai-prices lacks a few models llmtrace's providers serve; :data:`SUPPLEMENT` prices those from a
named public source, after genai-prices' own models of the provider (so genai-prices wins once it has
one; ``tests/test_price_table.py`` then says to drop ours).

Regenerate with ``python -m llmtrace._price_table`` after upgrading genai-prices (and move the
``[dev]`` pin in pyproject.toml to that version); ``tests/test_price_table.py`` checks the shipped
table against the installed genai-prices.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("_prices.json")

_PROBE = 1_000  # tokens per probe in the base segment (below any long-context tier)


@dataclass(frozen=True)
class Supplement:
    """A price genai-prices lacks: USD per million tokens (cache at the input price), and where it is from."""

    provider: str  # genai-prices' provider id
    match: list[Any]  # a match rule in the table's form, e.g. ["contains", "cohere.command-r-v1"]
    input_mtok: float
    output_mtok: float
    source: str


_AWS = "aws.amazon.com/bedrock/pricing (on-demand, us-east-1), as LiteLLM's table carried it before dropping the model"
_LITELLM = "LiteLLM model_prices_and_context_window.json (litellm 1.110.2)"
SUPPLEMENT: tuple[Supplement, ...] = (
    # Bedrock ids contain the model id after an optional cross-region prefix (us./eu./apac.) or ARN.
    Supplement(
        "aws", ["contains", "mistral.mistral-large-2407"], 2.0, 6.0, f"{_LITELLM}: mistral.mistral-large-2407-v1:0"
    ),
    Supplement("aws", ["contains", "cohere.command-r-plus-v1"], 3.0, 15.0, f"{_AWS}: Cohere Command R+"),
    Supplement("aws", ["contains", "cohere.command-r-v1"], 0.5, 1.5, f"{_AWS}: Cohere Command R"),
    Supplement("aws", ["contains", "cohere.command-text-v14"], 1.0, 2.0, f"{_LITELLM}: cohere.command-text-v14"),
    Supplement(
        "aws", ["contains", "cohere.command-light-text-v14"], 0.3, 0.6, f"{_LITELLM}: cohere.command-light-text-v14"
    ),
    Supplement("aws", ["contains", "cohere.embed-english-v3"], 0.1, 0.0, f"{_LITELLM}: cohere.embed-english-v3"),
    Supplement(
        "aws", ["contains", "cohere.embed-multilingual-v3"], 0.1, 0.0, f"{_LITELLM}: cohere.embed-multilingual-v3"
    ),
    Supplement("cohere", ["starts_with", "embed-english-v3.0"], 0.1, 0.0, f"{_LITELLM}: embed-english-v3.0 (cohere)"),
    Supplement("cohere", ["starts_with", "embed-multilingual-v3.0"], 0.1, 0.0, f"{_LITELLM}: embed-multilingual-v3.0"),
    Supplement(
        "cohere",
        ["equals", "command-a-plus-05-2026"],
        2.5,
        10.0,
        "models.dev api.json (provider cohere): Command A+ at Command A's rate; LiteLLM lists it at 0/0 (unknown)",
    ),
)


def _supplement(provider_id: str) -> list[list[Any]]:
    """The provider's :data:`SUPPLEMENT` models in the table's form."""
    return [
        [
            s.match,
            [[None, [[-1, 0.0, s.input_mtok / 1e6, s.output_mtok / 1e6, s.input_mtok / 1e6, s.input_mtok / 1e6]]]],
        ]
        for s in SUPPLEMENT
        if s.provider == provider_id
    ]


def _clause(logic: Any) -> Any:
    """genai-prices' match logic as a compact JSON list: ``["starts_with", "gpt-4o"]``, ``["or", [...]]``."""
    from genai_prices import types as t

    if logic is None:
        return None
    if isinstance(logic, t.ClauseOr):
        return ["or", [_clause(c) for c in logic.or_]]
    if isinstance(logic, t.ClauseAnd):
        return ["and", [_clause(c) for c in logic.and_]]
    for kind in ("starts_with", "ends_with", "contains", "regex", "equals"):
        if isinstance(logic, getattr(t, "Clause" + kind.title().replace("_", ""))):
            return [kind, getattr(logic, kind)]
    raise TypeError(f"unknown genai-prices clause {logic!r}: update llmtrace._price_table")


def _constraint(constraint: Any) -> Any:
    if constraint is None:
        return None
    if hasattr(constraint, "start_date"):
        return ["since", constraint.start_date.isoformat()]
    return ["daily", _utc(constraint.start_time), _utc(constraint.end_time)]


def _utc(value: time) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return datetime.combine(date(1970, 1, 1), value).astimezone(timezone.utc).time().isoformat()


def _tier_starts(price: Any) -> list[int]:
    from genai_prices.types import TieredPrices

    starts = {tier.start for value in vars(price).values() if isinstance(value, TieredPrices) for tier in value.tiers}
    return sorted(starts)


def _segments(price: Any) -> list[list[float]] | None:
    """``[[start, fee, input, output, cache_read, cache_write], ...]``: the last segment whose start is below a
    call's input tokens applies (genai-prices' cliff tiers); None when token counts cannot express the price."""
    from genai_prices.types import Usage

    def cost(inp: int, out: int = 0, read: int = 0, write: int = 0) -> Decimal:
        usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write)
        return Decimal(price.calc_price(usage)["total_price"])

    starts = _tier_starts(price)
    bounds = [-1, *starts]
    segments: list[list[float]] = []
    for index, start in enumerate(bounds):
        end = bounds[index + 1] if index + 1 < len(bounds) else 10_000_000
        n = max(min(_PROBE, end), 1) if start < 0 else start + 1
        try:
            fee = cost(0)  # a per-request price, if any
            rates = [(cost(n) - fee) / n, (cost(n, out=n) - cost(n)) / n]
            rates += [(cost(n, read=n) - fee) / n, (cost(n, write=n) - fee) / n]
        except (ValueError, LookupError, ArithmeticError, TypeError):
            return None
        segment = [start, float(fee), *(float(r) for r in rates)]
        for inp in {n, end, (n + end) // 2}:
            read, write, out = inp // 3, inp // 7, 1 + inp // 11
            expected = float(cost(inp, out, read, write))
            if abs(_cost(segment, inp, out, read, write) - expected) > 1e-9 * max(expected, 1e-12):
                return None
        segments.append(segment)
    return segments


def _cost(segment: list[float], inp: int, out: int, read: int, write: int) -> float:
    """What the runtime computes for one segment (kept identical to ``llmtrace.pricing``)."""
    _, fee, per_in, per_out, per_read, per_write = segment
    return fee + max(inp - read - write, 0) * per_in + out * per_out + read * per_read + write * per_write


def _model(model: Any) -> list[Any]:
    from genai_prices.types import ModelPrice

    conditional = [(None, model.prices)] if isinstance(model.prices, ModelPrice) else [
        (c.constraint, c.prices) for c in model.prices
    ]  # fmt: skip
    return [_clause(model.match), [[_constraint(c), _segments(p)] for c, p in conditional]]


def build() -> dict[str, Any]:
    """The table as JSON-ready data; each provider's models are a nested JSON string, parsed on first use."""
    from importlib.metadata import version

    from genai_prices.data import providers

    return {
        "genai_prices": version("genai-prices"),
        "providers": [
            {
                "id": p.id,
                "provider_match": _clause(p.provider_match),
                "model_match": _clause(p.model_match),
                "fallback": p.fallback_model_providers or [],
                "models": json.dumps([*(_model(m) for m in p.models), *_supplement(p.id)], separators=(",", ":")),
            }
            for p in providers
        ],
    }


def main() -> int:
    table = build()
    rows = ",\n".join(json.dumps(p, separators=(",", ":")) for p in table["providers"])  # a provider per line
    TABLE.write_text(f'{{"genai_prices":"{table["genai_prices"]}","providers":[\n{rows}\n]}}\n')
    prices = [price for p in table["providers"] for _, model in json.loads(p["models"]) for price in model]
    unpriced = sum(segments is None for _, segments in prices)
    print(
        f"wrote {TABLE} ({TABLE.stat().st_size // 1024} KiB) from genai-prices {table['genai_prices']}: "
        f"{len(prices)} prices, {unpriced} not expressible in token counts (stored as no price)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped price table (``llmtrace/_prices.json``) against the installed genai-prices.

The table is built at release time by ``python -m llmtrace._price_table``; these tests fail when
it no longer matches genai-prices (after an upgrade: regenerate it) or when the runtime's reading
of it (matching, tiers, fallbacks, date constraints) drifts from genai-prices' own calculation.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from importlib.metadata import version

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers

from llmtrace import _price_table, pricing


def test_table_was_built_from_the_installed_genai_prices() -> None:
    shipped = json.loads(_price_table.TABLE.read_text())
    assert shipped["genai_prices"] == version("genai-prices")
    assert shipped == _price_table.build(), "stale table: run `python -m llmtrace._price_table`"


def _sample() -> list[tuple[str, str]]:
    """Every provider's first and last models plus a fixed random sample, by a name each model matches."""
    rng = random.Random(13)
    refs = []
    for provider in providers:
        models = provider.models
        for model in {models[0].id, models[-1].id, *(m.id for m in rng.sample(models, min(4, len(models))))}:
            refs.append((provider.id, model))
    return sorted(refs)


USAGES = [
    Usage(input_tokens=1_234, output_tokens=567),
    Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000, cache_write_tokens=300),
    Usage(input_tokens=250_000, output_tokens=4_000, cache_read_tokens=100_000),
]


def _genai_prices(usage: Usage, model: str, provider: str) -> float | None:
    """genai-prices' cost, with llmtrace's one addition: a model the provider does not list is priced by
    its name alone (OpenAI-compatible hosts serving a known model)."""
    now = datetime.now(timezone.utc)
    for provider_id in (provider, None):
        try:
            return float(
                calc_price(usage, model_ref=model, provider_id=provider_id, genai_request_timestamp=now).total_price
            )
        except LookupError:
            continue
    return None


@pytest.mark.parametrize(("provider", "model"), _sample())
def test_cost_matches_genai_prices_for_a_sample_of_models(provider: str, model: str) -> None:
    for usage in USAGES:
        expected = _genai_prices(usage, model, provider)
        tokens = pricing.TokenUsage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cache_read_tokens=usage.cache_read_tokens or 0,
            cache_write_tokens=usage.cache_write_tokens or 0,
        )
        got = pricing.cost_usd(provider, [model], tokens)
        assert got == (None if expected is None else pytest.approx(expected, rel=1e-9, abs=1e-15))


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini-2024-07-18"),  # a dated snapshot
        ("openai", "GPT-4o"),  # case
        ("azure", "gpt-4o"),  # a fallback provider's model
        ("google", "claude-3-5-sonnet"),
        ("openai", "gpt-4o-20240806"),  # compact date form
        ("deepseek", "deepseek-chat"),  # time-of-day prices
    ],
)
def test_lookup_rules_match_genai_prices(provider: str, model: str) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=1_000)
    expected = calc_price(usage, model_ref=model, provider_id=provider).total_price
    tokens = pricing.TokenUsage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=1_000)
    assert pricing.cost_usd(provider, [model], tokens) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("supplement", _price_table.SUPPLEMENT, ids=lambda s: f"{s.provider}:{s.match[1]}")
def test_genai_prices_still_lacks_each_supplemented_model(supplement: _price_table.Supplement) -> None:
    """Once genai-prices prices one of ours, its price wins at lookup: drop ours from SUPPLEMENT."""
    model = supplement.match[1]
    assert _genai_prices(Usage(input_tokens=1_000, output_tokens=100), model, supplement.provider) is None


@pytest.mark.parametrize(
    ("provider", "model", "per_mtok"),
    [
        ("aws.bedrock", "cohere.command-r-v1:0", (0.5, 1.5)),
        ("aws.bedrock", "us.cohere.command-r-plus-v1:0", (3.0, 15.0)),  # cross-region inference profile
        ("aws.bedrock", "arn:aws:bedrock:us-east-1::foundation-model/cohere.command-r-plus-v1:0", (3.0, 15.0)),
        ("aws.bedrock", "cohere.embed-english-v3", (0.1, 0.0)),
        ("aws.bedrock", "mistral.mistral-large-2407-v1:0", (2.0, 6.0)),
        ("aws.bedrock", "mistral.mistral-large-2402-v1:0", (4.0, 12.0)),  # genai-prices' own, untouched
        ("cohere", "embed-english-v3.0", (0.1, 0.0)),
        ("cohere", "command-a-plus-05-2026", (2.5, 10.0)),
    ],
)
def test_models_genai_prices_lacks_are_priced_from_the_supplement(
    provider: str, model: str, per_mtok: tuple[float, float]
) -> None:
    million = pricing.TokenUsage(input_tokens=1_000_000)
    assert pricing.cost_usd(provider, [model], million) == pytest.approx(per_mtok[0])
    output = pricing.TokenUsage(output_tokens=1_000_000)
    assert pricing.cost_usd(provider, [model], output) == pytest.approx(per_mtok[1])

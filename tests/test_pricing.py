"""Cost from llmtrace's price table: it must agree with genai-prices' own calculation."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price

from llmtrace import pricing


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-3-5-haiku-latest"),
    ],
)
def test_linear_price_matches_genai_prices(provider: str, model: str) -> None:
    usage = pricing.TokenUsage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000, cache_write_tokens=300)
    expected = calc_price(
        Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000, cache_write_tokens=300),
        model_ref=model,
        provider_id=provider,
    ).total_price
    assert pricing.cost_usd(provider, [model], usage) == pytest.approx(float(expected), rel=1e-9)


def test_dated_response_model_falls_back_to_request_model() -> None:
    usage = pricing.TokenUsage(input_tokens=1000, output_tokens=100)
    assert pricing.cost_usd("openai", ["not-a-real-snapshot-2031", "gpt-4o-mini"], usage) == pytest.approx(
        (1000 * 0.15 + 100 * 0.6) / 1e6
    )


def test_unknown_model_has_no_cost() -> None:
    assert pricing.cost_usd("openai", ["house-model-zzz"], pricing.TokenUsage(input_tokens=10)) is None


def test_openai_compatible_host_prices_a_known_model_by_name() -> None:
    cost = pricing.cost_usd("together_ai", ["gpt-4o-mini"], pricing.TokenUsage(input_tokens=1_000_000))
    assert cost == pytest.approx(0.15)


def test_tiered_model_is_exact_below_at_and_above_its_tier() -> None:
    for input_tokens in (1_000, 199_999, 200_000, 200_001, 300_000):
        usage = pricing.TokenUsage(input_tokens=input_tokens, output_tokens=2_000, cache_read_tokens=500)
        expected = calc_price(Usage(input_tokens=input_tokens, output_tokens=2_000, cache_read_tokens=500),
                              model_ref="claude-sonnet-4-5", provider_id="anthropic").total_price  # fmt: skip
        assert pricing.cost_usd("anthropic", ["claude-sonnet-4-5"], usage) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.usefixtures("engine_overrides")  # set_price is process-wide: undone after (tests/conftest.py)
def test_the_quick_lookup_prices_exactly_as_the_general_path_tiers_and_overrides_included() -> None:
    counts = [(1_000, 200, 0, 0), (250_000, 2_000, 500, 100), (10, 5, 20, 0)]  # the last: more cache than input
    for provider, model in (("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o-mini")):
        for tokens in counts:
            general = pricing.tokens_cost_usd(provider, [model], *tokens)  # prices it: quick_cost has it now
            assert pricing.quick_cost(provider, model, *tokens) == general  # the same float, not approximately
    assert pricing.quick_cost("openai", "house-model-zzz", 10, 5, 0, 0) is None  # unpriced: the general path says
    pricing.set_price("openai", "gpt-4o-mini", input_per_mtok=1.0, output_per_mtok=2.0)
    assert pricing.quick_cost("openai", "gpt-4o-mini", 1_000, 200, 0, 0) is None  # an override: the general path
    assert pricing.tokens_cost_usd("openai", ["gpt-4o-mini"], 1_000, 200, 0, 0) == pytest.approx(1.4e-3)

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

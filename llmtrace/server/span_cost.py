"""Price at ingest the model calls that arrive without a cost: other instrumentations' spans.

The GenAI conventions define no cost attribute, and the OTel contrib instrumentations, OpenLLMetry
and OpenInference record none, so their calls would be stored unpriced: the Cost page, drift and
the cost anomalies would not see them until a re-pricing pass (``llmtrace.store.prices``, every
``--reprice-every`` seconds) ran. The server's decode workers price them here instead, with the
engine the app uses (:mod:`llmtrace.pricing`), before the span is logged and stored: the span gets
``llmtrace.cost.usd`` and ``llmtrace.cost.source = "server"``. A span that came with a cost or a
cost status of its own (llmtrace's, OpenLIT's ``gen_ai.usage.cost``, OpenInference's
``llm.cost.total``) is left as it is, and so is one whose model has no known price.

Which attributes name the provider, the models and the tokens is what ``llm_calls_mv`` reads
(schemas/030), in the same order; ``tests/test_span_cost.py`` checks the two agree on every
spelling. Price overrides stored in the server apply through the re-pricing pass, which re-prices
every call of an overridden model.
"""

from __future__ import annotations

import json
from typing import Any

from llmtrace import semconv as sc
from llmtrace.pricing import tokens_cost_usd
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS

__all__ = ["leave_to_repricing", "price_unpriced"]

_ATTRIBUTES = OTEL_TRACES_COLUMNS.index("SpanAttributes")
_COST = sc.COST_USD
# A span with any of these was priced (or judged unpriceable) by its own instrumentation.
_PRICED = (_COST, sc.COST_STATUS, "gen_ai.usage.cost", "llm.cost.total")
# llm_calls_mv's filter: the operations it keeps, and OpenInference's span kinds it reads as them.
_CALL_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "completion", "embedding", "rerank"}
)
_OPENINFERENCE_CALLS = frozenset({"LLM", "EMBEDDING", "RERANKER"})
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.request.model_name")
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "llm.response.model_name")
_INPUT = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.usage.prompt_tokens",
    "llm.token_count.prompt",
)
_OUTPUT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens",
    "llm.token_count.completion",
)
_UINT64 = 2**64
# (provider or "" for any, model) with a price override stored in the server: the workers do not hold
# the overrides, so those calls stay unpriced for the re-pricing pass, which prices them right.
_OVERRIDDEN: frozenset[tuple[str, str]] = frozenset()


def leave_to_repricing(overridden: tuple[tuple[str, str], ...]) -> None:
    """Set at a decode worker's start: the models whose calls it must not price."""
    global _OVERRIDDEN
    _OVERRIDDEN = frozenset(overridden)


_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read")
_CACHE_WRITE = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.prompt_details.cache_write",
)


def price_unpriced(rows: list[tuple[Any, ...]]) -> int:
    """Add a cost to each model call in ``rows`` that has none and whose model has a price; how
    many were priced. The attribute dicts are changed in place (the rows are the decoder's own)."""
    priced = 0
    for row in rows:
        attrs = row[_ATTRIBUTES]
        if _COST in attrs or not _is_call(attrs) or any(key in attrs for key in _PRICED):
            continue
        cost = _cost(attrs)
        if cost is not None:
            attrs[_COST] = repr(cost)
            attrs[sc.COST_SOURCE] = "server"
            priced += 1
    return priced


def _is_call(attrs: dict[str, str]) -> bool:
    """A model call, as ``llm_calls_mv``'s filter decides."""
    operation = attrs.get("gen_ai.operation.name") or attrs.get("llm.request.type")
    if operation:
        return operation in _CALL_OPERATIONS
    if attrs.get("openinference.span.kind") in _OPENINFERENCE_CALLS:
        return True
    return bool(attrs.get("gen_ai.system") or attrs.get("gen_ai.provider.name"))


def _cost(attrs: dict[str, str]) -> float | None:
    input_tokens, output_tokens = _count(attrs, _INPUT), _count(attrs, _OUTPUT)
    if input_tokens + output_tokens == 0:
        return None  # nothing to price: the view stores it as 'no_usage'
    provider = _first(attrs, _PROVIDER).lower()
    models = (_response_model(attrs), _request_model(attrs))
    if not any(models) or (_OVERRIDDEN and any(_overridden(provider, model) for model in models if model)):
        return None
    return tokens_cost_usd(
        provider, models, input_tokens, output_tokens, _count(attrs, _CACHE_READ), _count(attrs, _CACHE_WRITE)
    )


def _overridden(provider: str, model: str) -> bool:
    return (provider, model) in _OVERRIDDEN or ("", model) in _OVERRIDDEN


def _request_model(attrs: dict[str, str]) -> str:
    return _first(attrs, _REQUEST_MODEL) or _invocation_model(attrs) or attrs.get("llm.model_name", "")


def _response_model(attrs: dict[str, str]) -> str:
    found = _first(attrs, _RESPONSE_MODEL)
    if found:
        return found
    # OpenInference's OpenAI instrumentor names the response's model in llm.model_name; its
    # Anthropic one names the request's there too, with llm.request.model_name beside it.
    return attrs.get("llm.model_name", "") if not attrs.get("llm.request.model_name") else ""


def _invocation_model(attrs: dict[str, str]) -> str:
    text = attrs.get("llm.invocation_parameters")
    if not text:
        return ""
    try:
        model = json.loads(text).get("model")
    except (ValueError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return ""


def _count(attrs: dict[str, str], keys: tuple[str, ...]) -> int:
    """The first non-empty of ``keys`` as a token count, as ``toUInt64OrZero`` reads it."""
    text = _first(attrs, keys)
    if not (text.isascii() and text.isdigit()):  # int() would also take " 12", "1_000", "+5"
        return 0
    value = int(text)
    return value if value < _UINT64 else 0

"""LiteLLM (``litellm``): ``completion``, ``acompletion``, ``embedding``, ``aembedding``, streamed or not.

One span per call, naming the provider LiteLLM routes to (its ``custom_llm_provider``: the model's
``provider/`` prefix, the ``custom_llm_provider`` argument, or LiteLLM's own lookup), with the model
without that prefix, so cost is the provider's own price. LiteLLM speaks OpenAI's shapes on both
sides, so the OpenAI chat and embeddings mappings read requests, responses and stream chunks.

Underneath, LiteLLM calls the ``openai`` SDK for OpenAI-compatible providers (httpx for others):
that call runs inside llmtrace's span, where the core's suppression flag keeps the openai patch from
adding a second span. LiteLLM shows a stream's chunks under the requested model; the model the provider
named (``gpt-4-0613`` for ``gpt-4``) is its ``_hidden_params["provider_response_model"]``, which the span
records. LiteLLM replaces Anthropic's message id with an id of its own: the span has LiteLLM's. The
module functions are patched on the ``litellm`` package, as apps call them (``litellm.completion(...)``);
a ``from litellm import completion`` made before ``instrument()`` keeps the unpatched function.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation._model import Request, Response, Usage
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get, server_of
from llmtrace.instrumentation.openai import Chat, ChatStream, Embeddings, chat_usage

SDK = "litellm"

# LiteLLM's provider names -> gen_ai.provider.name, where they differ.
_PROVIDER_NAMES = {
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "sagemaker": "aws.sagemaker",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "cohere_chat": "cohere",
    "ollama_chat": "ollama",
    "xai": "x_ai",
    "fireworks_ai": "fireworks",
    "watsonx": "ibm.watsonx.ai",
}


@functools.lru_cache(maxsize=256)
def _route(model: str, explicit: str | None, api_base: str | None) -> tuple[str, str]:
    """``(provider, model)`` as LiteLLM routes the call (cached: an app uses a handful of models)."""
    litellm: Any = sys.modules.get("litellm")
    try:
        routed, provider, _key, _base = litellm.get_llm_provider(model, custom_llm_provider=explicit, api_base=api_base)
    except Exception:  # LiteLLM cannot route it either: the call will fail, and say why
        prefix, _, rest = model.partition("/")
        routed, provider = (rest, prefix) if rest else (model, explicit or "litellm")
    name = str(getattr(provider, "value", provider))
    return _PROVIDER_NAMES.get(name, name), str(routed)


def _request(operation: str, kwargs: dict[str, Any], stream: bool) -> Request:
    model, explicit, base = kwargs.get("model"), kwargs.get("custom_llm_provider"), kwargs.get("api_base")
    provider, routed = "litellm", None
    if isinstance(model, str) and model:
        provider, routed = _route(
            model, explicit if isinstance(explicit, str) else None, base if isinstance(base, str) else None
        )
    host, port = server_of(base if isinstance(base, str) else None)
    return Request(operation, provider, routed, stream, server_address=host, server_port=port)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any], positional: tuple[str, ...]) -> dict[str, Any]:
    return {**dict(zip(positional, args, strict=False)), **kwargs}


def _usage(usage: Any) -> Usage:
    """OpenAI's counts, plus the cache writes LiteLLM reports for Anthropic and Bedrock."""
    counted = chat_usage(usage)
    written = get(usage, "cache_creation_input_tokens") or get(
        get(usage, "prompt_tokens_details"), "cache_write_tokens"
    )
    counted.cache_write_tokens = written or None
    counted.cache_read_tokens = counted.cache_read_tokens or None
    return counted


def _provider_model(obj: Any) -> str | None:
    """The model the provider's reply named, which LiteLLM keeps aside (its chunks show the requested one)."""
    model = get(getattr(obj, "_hidden_params", None), "provider_response_model")
    return model if isinstance(model, str) and model else None


class Stream(ChatStream):
    """OpenAI's chunk fold, with the provider's model from LiteLLM's hidden parameters."""

    __slots__ = ("provider_model",)

    def __init__(self) -> None:
        super().__init__()
        self.provider_model: str | None = None

    def add(self, chunk: Any) -> bool:
        if self.provider_model is None:
            self.provider_model = _provider_model(chunk)
        return super().add(chunk)

    def result(self, request: Request) -> Response:
        response = super().result(request)
        response.model = self.provider_model or response.model
        return response


class Completion(Chat):
    """``completion`` / ``acompletion``: OpenAI's chat mapping on LiteLLM's ``ModelResponse``."""

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        call = _arguments(args, kwargs, ("model", "messages"))
        request = _request(sc.OP_CHAT, call, call.get("stream") is True)
        request.one_text_choice = False  # LiteLLM's chunks are its own models: the general fold reads them
        return request

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().describe_request(request, (), _arguments(args, kwargs, ("model", "messages")))

    def parse_response(self, request: Request, result: Any) -> Response:
        response = super().parse_response(request, result)
        response.usage = _usage(get(result, "usage"))
        response.model = _provider_model(result) or response.model
        return response

    def new_stream(self, request: Request) -> Stream:
        return Stream()


class Embedding(Embeddings):
    """``embedding`` / ``aembedding``."""

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return _request(sc.OP_EMBEDDINGS, _arguments(args, kwargs, ("model", "input")), False)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().describe_request(request, (), _arguments(args, kwargs, ("model", "input")))


def patches() -> list[Patch]:
    completion, embedding = Completion(), Embedding()
    return [
        Patch("litellm", "completion", completion),
        Patch("litellm", "acompletion", completion),
        Patch("litellm", "embedding", embedding),
        Patch("litellm", "aembedding", embedding),
    ]

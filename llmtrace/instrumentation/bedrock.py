"""Amazon Bedrock through boto3's ``bedrock-runtime`` client: ``converse``, ``converse_stream``,
``invoke_model`` and ``invoke_model_with_response_stream`` (provider ``aws.bedrock``).

boto3 builds its client methods at run time, so the patch sits at botocore's one entry point for every
AWS call, ``BaseClient._make_api_call``: any other operation costs one dict lookup before it calls
through, and only the four operation names above are checked for the ``bedrock-runtime`` service.
llmtrace never imports botocore (or boto3): the patch is applied when the app imports it.

Responses are dicts. A stream is the ``EventStream`` under ``stream`` (Converse) or ``body`` (invoke),
replaced in the dict by the core's stream proxy. ``invoke_model``'s ``body`` is a ``StreamingBody`` the
app can read once: llmtrace reads it as soon as the call returns and puts a ``StreamingBody`` over the
same bytes in its place, so the app reads identical content. A failure of that read, which the app
would have met at ``read()``, is recorded and raised by the call itself.

aiobotocore (which aioboto3 uses) is patched the same way at ``AioBaseClient._make_api_call``.

Bedrock answers with the model it was asked for, and most bodies do not name it: the response model is
the requested id unless the body names one (Anthropic's does).

A Bedrock model id names what the call is billed under (``us.``/``eu.``/``apac.``/``global.``
cross-region profiles): calls are priced by it before the response body's model name. Foundation-model
and inference-profile ARNs are recorded as the id they end with.
"""

from __future__ import annotations

import io
from typing import Any

from llmtrace import semconv as sc
from llmtrace.instrumentation import _bedrock_converse as converse
from llmtrace.instrumentation import _bedrock_invoke as invoke
from llmtrace.instrumentation._core import Endpoint, Invocation
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._model import Request, Response, StreamAccumulator
from llmtrace.instrumentation._patching import Patch, start_invocation
from llmtrace.instrumentation._sdk import get, server_of
from llmtrace.instrumentation._streams import AsyncStreamProxy, wrap_stream

SDK = "botocore"
PROVIDER = "aws.bedrock"
_SERVICE = "bedrock-runtime"
_ARN_MODELS = ("foundation-model", "inference-profile")
_CHAT_KEYS = (b'"messages"', b'"message"')


def model_id(value: Any) -> str | None:
    """The model id of a ``modelId``: ARNs of foundation models and inference profiles give their id;
    other ARNs (provisioned throughput, application profiles) name nothing more and are kept whole."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("arn:"):
        kind, _, name = value.split(":", 5)[-1].partition("/")
        if kind in _ARN_MODELS and name:
            return name
    return value


def _new_request(instance: Any, params: dict[str, Any], operation: str, stream: bool) -> Request:
    host, port = server_of(get(get(instance, "meta"), "endpoint_url"))
    model = model_id(params.get("modelId"))
    return Request(operation, PROVIDER, model, stream, host, port, priced_by_request_model=True)


class _Operation(Endpoint):
    """One Bedrock operation; ``observe`` hands the response dict back with its stream or body observed."""

    buffers_body = False

    def __init__(self, stream: bool, key: str) -> None:
        self.stream = stream
        self.key = key  # where the response dict keeps the stream

    def observe(self, invocation: Invocation, result: Any, body: bytes | None, asynchronous: bool = False) -> Any:
        if self.stream and isinstance(result, dict) and self.key in result:
            stream = result[self.key]
            proxy = _AioEventStreamProxy(stream, invocation) if asynchronous else wrap_stream(stream, invocation, False)
            result[self.key] = proxy
        else:
            invocation.finish(self._outcome(result, body))
        return result

    def _outcome(self, result: Any, body: bytes | None) -> Any:
        return dict(result) if isinstance(result, dict) else result


class Converse(_Operation):
    """``converse`` / ``converse_stream``: Bedrock's model-neutral messages API."""

    def __init__(self, stream: bool) -> None:
        super().__init__(stream, "stream")

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return _new_request(instance, kwargs, sc.OP_CHAT, self.stream)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Model-native fields (``top_k``) may ride in additionalModelRequestFields; inferenceConfig wins.
        converse.put_parameters(
            request.attributes, kwargs.get("additionalModelRequestFields"), kwargs.get("inferenceConfig")
        )
        request.system_instructions = converse.system(kwargs.get("system"))
        request.input_messages = converse.messages(kwargs.get("messages"))
        request.tool_definitions = converse.tools(kwargs.get("toolConfig"))

    def parse_response(self, request: Request, result: Any) -> Response:
        return converse.response(result, model=request.model)

    def new_stream(self, request: Request) -> StreamAccumulator:
        return converse.ConverseEvents()


class InvokeModel(_Operation):
    """``invoke_model`` / ``invoke_model_with_response_stream``: the model family's own JSON body."""

    def __init__(self, stream: bool) -> None:
        super().__init__(stream, "body")
        self.buffers_body = not stream

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        model = kwargs.get("modelId")
        embeds = isinstance(model, str) and "embed" in model  # Titan / Cohere / Nova embedding models
        return _new_request(
            instance, kwargs, sc.OP_EMBEDDINGS if embeds else _operation(kwargs.get("body")), self.stream
        )

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        body = invoke.parse_body(kwargs.get("body"))
        if isinstance(body, dict):
            invoke.describe(request, body)

    def _outcome(self, result: Any, body: bytes | None) -> Any:
        headers = get(get(result, "ResponseMetadata"), "HTTPHeaders") or {}
        return body, headers

    def parse_response(self, request: Request, result: Any) -> Response:
        body, headers = result
        return invoke.response(request, invoke.parse_body(body), headers)

    def new_stream(self, request: Request) -> StreamAccumulator:
        return invoke.InvokeEvents()


def _operation(body: Any) -> str:
    """``chat`` for message bodies, ``text_completion`` for prompts: a substring test, cheap enough for the
    app's thread (quotes inside strings are escaped, so only a key, or a value that is exactly that word,
    matches; at worst such a prompt is named ``chat``)."""
    if isinstance(body, str):
        return sc.OP_CHAT if any(key.decode() in body for key in _CHAT_KEYS) else sc.OP_TEXT_COMPLETION
    if isinstance(body, bytes | bytearray):
        return sc.OP_CHAT if any(key in body for key in _CHAT_KEYS) else sc.OP_TEXT_COMPLETION
    return sc.OP_CHAT  # a file object: not read here


_ENDPOINTS: dict[str, _Operation] = {
    "Converse": Converse(stream=False),
    "ConverseStream": Converse(stream=True),
    "InvokeModel": InvokeModel(stream=False),
    "InvokeModelWithResponseStream": InvokeModel(stream=True),
}


def _bedrock_endpoint(instance: Any, args: tuple[Any, ...]) -> _Operation | None:
    """The endpoint for this call, or None for every other AWS operation (the common case: one lookup)."""
    endpoint = _ENDPOINTS.get(args[0]) if args and isinstance(args[0], str) else None
    if endpoint is None:
        return None
    try:
        return endpoint if instance._service_model.service_name == _SERVICE else None
    except Exception as exc:
        internal_error("bedrock service check", exc)
        return None


def _buffer(result: Any) -> bytes | None:
    """Read ``invoke_model``'s body (the SDK's read: its errors are the app's) and put an identical
    ``StreamingBody`` back for the app."""
    body = result.get("body") if isinstance(result, dict) else None
    if body is None or not callable(getattr(body, "read", None)):
        return None
    data: bytes = body.read()
    from botocore.response import StreamingBody  # loaded: botocore is making this very call

    result["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


def _make_api_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``BaseClient._make_api_call(operation_name, api_params)``: one span per Bedrock call."""
    endpoint = _bedrock_endpoint(instance, args)
    if endpoint is None:
        return wrapped(*args, **kwargs)
    params = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    invocation = start_invocation(endpoint, instance, (), params)  # params as kwargs: their lists are copied
    if invocation is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
        body = _buffer(result) if endpoint.buffers_body else None
    except BaseException as exc:
        invocation.exit()
        invocation.fail(exc)
        raise
    invocation.exit()
    try:
        return endpoint.observe(invocation, result, body)
    except Exception as exc:
        internal_error("bedrock response", exc)
        return result


# --- aiobotocore (aioboto3): the same operations, awaited --------------------------------------


class _AioEventStreamProxy(AsyncStreamProxy):
    """aiobotocore's event stream is iterated with ``async for`` but closed synchronously, like botocore's."""

    def close(self) -> None:  # type: ignore[override]
        try:
            self.__wrapped__.close()
        finally:
            self._self_invocation.end_stream("closed")


class _Read:
    """Stands in for the HTTP response under an aiobotocore body (aiohttp's or httpx's): the bytes read."""

    def __init__(self, data: bytes, url: Any) -> None:
        self._data = io.BytesIO(data)
        self._size = len(data)
        self.url = url
        self.content = self  # aiohttp: response.content.read(n)

    async def read(self, n: int | None = -1) -> bytes:
        return self._data.read(None if n is None or n < 0 else n)

    def at_eof(self) -> bool:
        return self._data.tell() >= self._size

    async def aiter_raw(self) -> Any:  # httpx
        rest = self._data.read()
        if rest:
            yield rest

    def close(self) -> None:
        self._data.close()

    async def aclose(self) -> None:
        self._data.close()


async def _abuffer(result: Any) -> bytes | None:
    """:func:`_buffer` for aiobotocore: the body is read and a body of the same class over the bytes put back."""
    body = result.get("body") if isinstance(result, dict) else None
    if body is None or not callable(getattr(body, "read", None)):
        return None
    data: bytes = await body.read()
    try:
        raw = getattr(body, "raw_stream", None)
        result["body"] = type(body)(_Read(data, getattr(raw, "url", None)), len(data))
    except Exception as exc:  # an aiobotocore body llmtrace cannot rebuild: the app reads what is left
        internal_error("bedrock async body", exc)
    return data


def _amake_api_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AioBaseClient._make_api_call``: other AWS calls get their coroutine back untouched, unwrapped."""
    endpoint = _bedrock_endpoint(instance, args)
    if endpoint is None:
        return wrapped(*args, **kwargs)
    return _atraced(endpoint, wrapped, instance, args, kwargs)


async def _atraced(endpoint: _Operation, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    params = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    invocation = start_invocation(endpoint, instance, (), params)
    if invocation is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
        body = await _abuffer(result) if endpoint.buffers_body else None
    except BaseException as exc:
        invocation.exit()
        invocation.fail(exc)
        raise
    invocation.exit()
    try:
        return endpoint.observe(invocation, result, body, asynchronous=True)
    except Exception as exc:
        internal_error("bedrock response", exc)
        return result


def patches() -> list[Patch]:
    return [
        Patch("botocore.client", "BaseClient._make_api_call", wrapper=_make_api_call),
        Patch("aiobotocore.client", "AioBaseClient._make_api_call", wrapper=_amake_api_call),
    ]

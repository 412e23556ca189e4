"""OpenAI SDK (and OpenAI-compatible endpoints): Chat Completions, legacy Completions, Embeddings.

The Responses API lives in :mod:`llmtrace.instrumentation.openai_responses`. Streams without
usage (no ``stream_options.include_usage``) get token counts estimated from the streamed
content and are marked ``llmtrace.usage.estimated``: llmtrace never changes the request.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from opentelemetry.util.types import AttributeValue

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import Endpoint
from llmtrace.instrumentation._model import (
    Message,
    Part,
    Request,
    Response,
    Usage,
    estimate_tokens,
    text_part,
    tool_call_part,
)
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import client_base_url, get, given, json_arguments, put, server_of, text_of
from llmtrace.instrumentation._streams import StreamEnd, fold_or_stop, follow_each, lead

SDK = "openai"

# Host suffix -> gen_ai.provider.name, for OpenAI-compatible endpoints reached through this SDK.
_HOSTS = (
    ("openai.azure.com", "azure.ai.openai"),
    ("azure.com", "azure.ai.openai"),
    ("api.groq.com", "groq"),
    ("together.xyz", "together_ai"),
    ("together.ai", "together_ai"),
    ("deepseek.com", "deepseek"),
    ("mistral.ai", "mistral_ai"),
    ("openrouter.ai", "openrouter"),
    ("x.ai", "x_ai"),
    ("perplexity.ai", "perplexity"),
    ("fireworks.ai", "fireworks"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("cohere.com", "cohere"),
)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_OLLAMA_PORT = 11434


@functools.lru_cache(maxsize=256)
def provider_for(host: str | None, port: int | None) -> str:
    """``gen_ai.provider.name`` for an endpoint; local servers speak OpenAI's protocol unless on Ollama's port."""
    if not host:
        return "openai"
    host = host.lower()
    if host in _LOCAL_HOSTS or host.endswith(".local"):
        return "ollama" if port == _OLLAMA_PORT else "openai"
    for suffix, name in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return "openai"


def new_request(instance: Any, operation: str, kwargs: dict[str, Any], api_type: str | None) -> Request:
    host, port = server_of(client_base_url(get(instance, "_client")))
    request = Request(
        operation=operation,
        provider=provider_for(host, port),
        model=kwargs.get("model") if isinstance(kwargs.get("model"), str) else None,
        stream=kwargs.get("stream") is True,
        server_address=host,
        server_port=port,
    )
    if api_type:
        request.attributes[sc.OPENAI_API_TYPE] = api_type
    tier = kwargs.get("service_tier")
    if tier is not None:  # the usual call sets none: no put() call
        put(request.attributes, sc.OPENAI_REQUEST_SERVICE_TIER, tier, str)
    return request


_SAMPLING_KEYS = frozenset(("temperature", "top_p", "frequency_penalty", "presence_penalty", "stop", "n"))


def put_sampling(attrs: dict[str, AttributeValue], kwargs: dict[str, Any], seed_key: str = "seed") -> None:
    """The OpenAI-shaped sampling parameters (also Mistral's, whose seed is ``random_seed``)."""
    if seed_key not in kwargs and _SAMPLING_KEYS.isdisjoint(kwargs):
        return  # the usual call sets none: one set test instead of eight lookups
    put(attrs, sc.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
    put(attrs, sc.REQUEST_TOP_P, kwargs.get("top_p"), float)
    put(attrs, sc.REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"), float)
    put(attrs, sc.REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"), float)
    put(attrs, sc.REQUEST_SEED, kwargs.get(seed_key), int)
    stop = kwargs.get("stop")
    put(attrs, sc.REQUEST_STOP_SEQUENCES, [stop] if isinstance(stop, str) else stop)
    n = kwargs.get("n")
    if given(n) and n != 1:
        put(attrs, sc.REQUEST_CHOICE_COUNT, n, int)


def _input_part(part: Any) -> Part:
    kind = get(part, "type")
    if kind == "text":
        return text_part(get(part, "text", ""))
    if kind == "image_url":
        url = get(get(part, "image_url"), "url", "")
        if isinstance(url, str) and url.startswith("data:"):
            return {
                "type": "blob",
                "modality": "image",
                "mime_type": url[5:].split(";", 1)[0],
                "content": url,
            }
        return {"type": "uri", "modality": "image", "uri": url}
    if kind == "input_audio":
        audio = get(part, "input_audio")
        return {
            "type": "blob",
            "modality": "audio",
            "mime_type": f"audio/{get(audio, 'format', '')}",
            "content": get(audio, "data", ""),
        }
    return {"type": str(kind or "unknown"), "content": part}


def chat_messages(messages: Any) -> tuple[list[Part], list[Message]]:
    """Split chat messages into system instructions and semconv input messages."""
    system: list[Part] = []
    out: list[Message] = []
    for message in messages if isinstance(messages, list | tuple) else []:
        if message.__class__ is dict and len(message) == 2:  # the usual message, read without a helper per field
            role, content = message.get("role"), message.get("content")
            if role.__class__ is str and content.__class__ is str and role != "tool":  # one text part
                if role in ("system", "developer"):
                    system.append({"type": "text", "content": content})
                else:
                    out.append({"role": role, "parts": [{"type": "text", "content": content}]})
                continue
        role = get(message, "role", "user")
        content = get(message, "content")
        if role in ("system", "developer"):
            system.append(text_part(text_of(content)))
            continue
        parts: list[Part] = []
        if role == "tool":
            parts.append({"type": "tool_call_response", "id": get(message, "tool_call_id"), "response": content})
        elif isinstance(content, str):
            parts.append(text_part(content))
        elif isinstance(content, list):
            parts.extend(_input_part(p) for p in content)
        for call in get(message, "tool_calls") or []:
            function = get(call, "function")
            parts.append(
                tool_call_part(get(call, "id"), get(function, "name"), json_arguments(get(function, "arguments")))
            )
        entry: Message = {"role": role, "parts": parts}
        if get(message, "name"):
            entry["name"] = get(message, "name")
        out.append(entry)
    return system, out


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not given(tools):
        return None
    defs = []
    for tool in tools:
        function = get(tool, "function") or tool
        defs.append(
            {
                "type": get(tool, "type", "function"),
                "name": get(function, "name"),
                "description": get(function, "description"),
                "parameters": get(function, "parameters"),
            }
        )
    return defs or None


def chat_usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    try:  # the SDK's model: plain reads (this runs at every call's end, on cold caches)
        prompt, completion = usage.prompt_tokens_details, usage.completion_tokens_details
        return Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=get(prompt, "cached_tokens"),
            reasoning_tokens=get(completion, "reasoning_tokens"),
        )
    except AttributeError:  # dicts, or SDK versions without the details
        pass
    return Usage(
        input_tokens=get(usage, "prompt_tokens"),
        output_tokens=get(usage, "completion_tokens"),
        cache_read_tokens=get(get(usage, "prompt_tokens_details"), "cached_tokens"),
        reasoning_tokens=get(get(usage, "completion_tokens_details"), "reasoning_tokens"),
    )


def _response_extras(obj: Any) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    put(attrs, sc.OPENAI_RESPONSE_SERVICE_TIER, get(obj, "service_tier"), str)
    put(attrs, sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, get(obj, "system_fingerprint"), str)
    return attrs


def _completion_response(result: Any, reasons: list[str], outputs: list[Message]) -> Response:
    """What chat and legacy completions share: id, model, usage and OpenAI's extras."""
    return Response(
        id=get(result, "id"),
        model=get(result, "model"),
        finish_reasons=reasons,
        usage=chat_usage(get(result, "usage")),
        output_messages=outputs,
        attributes=_response_extras(result),
    )


def _request_chars(request: Request) -> int:
    parts = [p for m in request.input_messages or [] for p in m["parts"]] + list(request.system_instructions or [])
    return sum(len(p["content"]) for p in parts if isinstance(p.get("content"), str))


# Arguments that can make a chat stream more than one choice of text.
_SHAPERS = frozenset(("tools", "functions", "response_format"))


class Chat(Endpoint):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        request = new_request(instance, sc.OP_CHAT, kwargs, "chat_completions")
        if request.stream:
            request.one_text_choice = kwargs.get("n") in (None, 1) and (
                _SHAPERS.isdisjoint(kwargs)  # the usual call sets none: one set test instead of three given()
                or not any(given(kwargs.get(key)) for key in _SHAPERS)
            )
        return request

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        attrs = request.attributes
        put(attrs, sc.REQUEST_MAX_TOKENS, kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"), int)
        put_sampling(attrs, kwargs)
        if "response_format" in kwargs and given(kwargs["response_format"]):
            fmt = kwargs["response_format"]
            attrs[sc.OUTPUT_TYPE] = "json" if isinstance(fmt, type) or get(fmt, "type") != "text" else "text"
        request.system_instructions, request.input_messages = chat_messages(kwargs.get("messages"))
        if "tools" in kwargs:  # absent in most calls: no helper call for them
            request.tool_definitions = tool_definitions(kwargs["tools"])

    def parse_response(self, request: Request, result: Any) -> Response:
        outputs: list[Message] = []
        reasons: list[str] = []
        for choice in get(result, "choices") or []:
            reason = get(choice, "finish_reason") or ""
            reasons.append(reason)
            message = get(choice, "message")
            parts: list[Part] = []
            if get(message, "content"):
                parts.append(text_part(get(message, "content")))
            if get(message, "refusal"):
                parts.append({"type": "refusal", "content": get(message, "refusal")})
            for call in get(message, "tool_calls") or []:
                function = get(call, "function")
                parts.append(
                    tool_call_part(get(call, "id"), get(function, "name"), json_arguments(get(function, "arguments")))
                )
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": reason})
        return _completion_response(result, reasons, outputs)

    def new_stream(self, request: Request) -> ChatStream:
        return TextChatStream() if request.one_text_choice else ChatStream()


class ChatStream:
    """Accumulates ``ChatCompletionChunk``s per choice index."""

    __slots__ = ("calls", "content_chunks", "extras", "id", "model", "reasons", "refusals", "text", "usage")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.extras: dict[str, AttributeValue] = {}
        self.text: dict[int, list[str]] = {}
        self.refusals: dict[int, list[str]] = {}
        self.reasons: dict[int, str] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.content_chunks = 0

    def add(self, chunk: Any) -> bool:
        # Hot path (once per chunk): plain attribute access on the SDK's models; dicts take the slow path.
        try:
            choices, usage = chunk.choices, chunk.usage
        except AttributeError:
            choices, usage = get(chunk, "choices") or [], get(chunk, "usage")
        if not self.id:  # Azure's first chunk (content-filter results) has an empty id and model
            self.id, self.model = get(chunk, "id"), get(chunk, "model")
            self.extras = _response_extras(chunk)
        if usage is not None:
            self.usage = usage
        carried = False
        for choice in choices:
            try:
                index, reason, delta = choice.index, choice.finish_reason, choice.delta
                content, calls = delta.content, delta.tool_calls
            except AttributeError:
                index, reason, delta = (
                    get(choice, "index", 0),
                    get(choice, "finish_reason"),
                    get(choice, "delta"),
                )
                content, calls = get(delta, "content"), get(delta, "tool_calls")
            if content:
                pieces = self.text.get(index)
                if pieces is None:
                    self.text[index] = [content]
                else:
                    pieces.append(content)
                carried = True
            if calls:
                self._add_tool_calls(index, calls)
                carried = True
            refusal = get(delta, "refusal")  # structured outputs may refuse (SDKs before 1.40 have no field)
            if refusal:
                self.refusals.setdefault(index, []).append(refusal)
                carried = True
            if reason:
                self.reasons[index] = reason
        self.content_chunks += carried
        return carried

    def _add_tool_calls(self, index: int, calls: Any) -> None:
        for call in calls:
            slot = self.calls.setdefault(index, {}).setdefault(get(call, "index", 0), {"args": []})
            function = get(call, "function")
            slot["id"] = slot.get("id") or get(call, "id")
            slot["name"] = slot.get("name") or get(function, "name")
            slot["args"].append(get(function, "arguments") or "")

    def result(self, request: Request) -> Response:
        indexes = sorted(set(self.text) | set(self.refusals) | set(self.calls) | set(self.reasons))
        outputs: list[Message] = []
        for index in indexes:
            parts: list[Part] = [text_part("".join(self.text[index]))] if index in self.text else []
            if index in self.refusals:
                parts.append({"type": "refusal", "content": "".join(self.refusals[index])})
            for call in self.calls.get(index, {}).values():
                parts.append(tool_call_part(call.get("id"), call.get("name"), json_arguments("".join(call["args"]))))
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": self.reasons.get(index, "")})
        usage = chat_usage(self.usage) if self.usage is not None else self._estimate(request)
        return Response(
            id=self.id,
            model=self.model,
            finish_reasons=[self.reasons.get(i, "") for i in indexes],
            usage=usage,
            output_messages=outputs,
            attributes=self.extras,
        )

    def _estimate(self, request: Request) -> Usage:
        """No usage chunk: OpenAI streams about one token per content chunk; input from prompt length."""
        if self.content_chunks == 0:
            return Usage()
        return Usage(
            input_tokens=estimate_tokens(_request_chars(request)),
            output_tokens=self.content_chunks,
            estimated=True,
        )


class TextChatStream(ChatStream):
    """The usual chat stream (one choice; no tools, no structured output, so no refusal).

    After the first chunk of text, chunks are folded by a closure over this one choice's state:
    in a real stream loop the SDK's own work between two chunks pushes our code and data out of
    the CPU's caches, and there five attribute reads and local variables per chunk cost ~40 µs
    less per 50-chunk stream than the general fold (measured in place, calls interleaved).
    Anything unexpected (several choices, dict chunks) still takes the general path.
    """

    __slots__ = ()

    def result(self, request: Request) -> Response:
        text, reasons_by_index = self.text, self.reasons
        if self.refusals or self.calls or len(text) > 1 or len(reasons_by_index) > 1:
            return super().result(request)
        # One choice of text (the usual stream): what the general result builds, without its index sets
        # (plain tests and no helper calls: this runs on the cold caches a stream's end leaves).
        pieces = text.get(0)
        if (text and pieces is None) or (reasons_by_index and 0 not in reasons_by_index):
            return super().result(request)  # one choice, but not index 0
        if pieces is None and not reasons_by_index:
            outputs: list[Message] = []
            reasons: list[str] = []
        else:
            reason = reasons_by_index.get(0, "")
            parts: list[Part] = [] if pieces is None else [{"type": "text", "content": "".join(pieces)}]
            outputs, reasons = [{"role": "assistant", "parts": parts, "finish_reason": reason}], [reason]
        usage = chat_usage(self.usage) if self.usage is not None else self._estimate(request)
        return Response(
            id=self.id,
            model=self.model,
            finish_reasons=reasons,
            usage=usage,
            output_messages=outputs,
            attributes=self.extras,
        )

    def tail(self) -> Callable[[Any], object]:
        if not self.id or list(self.text) != [0]:
            return self.add
        pieces, reasons, general = self.text[0], self.reasons, self.add

        def fold(chunk: Any) -> object:
            try:
                choices = chunk.choices
                if len(choices) != 1:
                    return general(chunk)
                choice = choices[0]
                content, reason, usage = choice.delta.content, choice.finish_reason, chunk.usage
            except (AttributeError, TypeError):
                return general(chunk)
            if content:
                pieces.append(content)
                self.content_chunks += 1
            if reason:
                reasons[0] = reason
            if usage is not None:
                self.usage = usage
            return None

        return fold

    def follow(
        self, chunks: Iterable[Any], head: Callable[[Any], bool] | None = None, end: StreamEnd | None = None
    ) -> Iterator[Any]:
        """Sync streams: :meth:`tail`'s fold inline in one generator, no call per chunk; with the core's
        ``head`` and ``end``, the whole stream (see ``StreamAccumulator``)."""
        chunks = iter(chunks)
        try:
            if head is not None:
                yield from lead(chunks, head)
            if not self.id or list(self.text) != [0]:
                yield from follow_each(self.add, chunks)
            else:
                pieces, reasons, general = self.text[0], self.reasons, self.add
                for chunk in chunks:
                    try:  # reads before writes: a chunk that fails here goes whole to the general fold
                        choices, usage = chunk.choices, chunk.usage
                        if choices:
                            (choice,) = choices  # one choice was asked for: several go to the general fold
                            content, reason = choice.delta.content, choice.finish_reason
                            if content:
                                pieces.append(content)
                                self.content_chunks += 1
                            if reason:
                                reasons[0] = reason
                        if usage is not None:
                            self.usage = usage
                    except Exception:  # a dict chunk, or a shape this fold does not know
                        if not fold_or_stop(general, chunk):
                            yield chunk
                            yield from chunks
                            break
                    yield chunk
        except GeneratorExit:
            raise  # closed or collected: the proxy's close() or its finaliser ends the span
        except BaseException as exc:
            if end is not None:
                end("error", exc)
            raise
        if end is not None:
            end("completed", None)

    async def afollow(
        self, chunks: AsyncIterable[Any], head: Callable[[Any], bool], end: StreamEnd
    ) -> AsyncIterator[Any]:
        """Async streams: :meth:`follow` with the core's ``head`` and ``end``, as one async generator (which
        cannot delegate: the head's loop is here too)."""
        chunks = aiter(chunks)
        try:
            async for chunk in chunks:
                if head(chunk):
                    yield chunk
                    break
                yield chunk
            inline, folding = bool(self.id) and list(self.text) == [0], True
            pieces, reasons, general = self.text.get(0), self.reasons, self.add
            async for chunk in chunks:
                if inline:
                    try:  # reads before writes, as in follow()
                        choices, usage = chunk.choices, chunk.usage
                        if choices:
                            (choice,) = choices
                            content, reason = choice.delta.content, choice.finish_reason
                            if content:
                                pieces.append(content)  # type: ignore[union-attr]
                                self.content_chunks += 1
                            if reason:
                                reasons[0] = reason
                        if usage is not None:
                            self.usage = usage
                    except Exception:  # the general fold takes it; if that fails, the rest passes unfolded
                        inline = folding = fold_or_stop(general, chunk)
                elif folding:
                    folding = fold_or_stop(general, chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            end("error", exc)
            raise
        end("completed", None)


class Completions(Endpoint):
    """Legacy ``completions.create``."""

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        return new_request(instance, sc.OP_TEXT_COMPLETION, kwargs, None)

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        put(request.attributes, sc.REQUEST_MAX_TOKENS, kwargs.get("max_tokens"), int)
        put_sampling(request.attributes, kwargs)
        prompt = kwargs.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []
        request.input_messages = [{"role": "user", "parts": [text_part(p)]} for p in prompts if isinstance(p, str)]

    def parse_response(self, request: Request, result: Any) -> Response:
        choices = get(result, "choices") or []
        reasons = [get(c, "finish_reason") or "" for c in choices]
        outputs: list[Message] = [
            {"role": "assistant", "parts": [text_part(get(c, "text") or "")], "finish_reason": r}
            for c, r in zip(choices, reasons, strict=False)
        ]
        return _completion_response(result, reasons, outputs)

    def new_stream(self, request: Request) -> CompletionStream:
        return CompletionStream()


class CompletionStream(ChatStream):
    def add(self, chunk: Any) -> bool:
        self.id = self.id or get(chunk, "id")
        self.model = self.model or get(chunk, "model")
        if get(chunk, "usage") is not None:
            self.usage = get(chunk, "usage")
        carried = False
        for choice in get(chunk, "choices") or []:
            index = get(choice, "index", 0)
            if get(choice, "text"):
                self.text.setdefault(index, []).append(get(choice, "text"))
                carried = True
            if get(choice, "finish_reason"):
                self.reasons[index] = get(choice, "finish_reason")
        self.content_chunks += carried
        return carried


class Embeddings(Endpoint):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        request = new_request(instance, sc.OP_EMBEDDINGS, kwargs, None)
        request.stream = False
        return request

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        put(request.attributes, sc.EMBEDDINGS_DIMENSION_COUNT, kwargs.get("dimensions"), int)
        fmt = kwargs.get("encoding_format")
        if given(fmt):
            request.attributes[sc.REQUEST_ENCODING_FORMATS] = [str(fmt)]

    def parse_response(self, request: Request, result: Any) -> Response:
        usage = get(result, "usage")
        response = Response(
            model=get(result, "model"),
            usage=Usage(input_tokens=get(usage, "prompt_tokens"), output_tokens=None),
        )
        data = get(result, "data") or []
        vector = get(data[0], "embedding") if data else None
        if isinstance(vector, list) and sc.EMBEDDINGS_DIMENSION_COUNT not in request.attributes:
            response.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        return response


def patches() -> list[Patch]:
    from llmtrace.instrumentation.openai_responses import Responses

    chat, completions, embeddings, responses = Chat(), Completions(), Embeddings(), Responses()
    targets: list[Patch] = []
    for cls in ("Completions", "AsyncCompletions"):
        targets.append(Patch("openai.resources.chat.completions", f"{cls}.create", chat))
        targets.append(Patch("openai.resources.chat.completions", f"{cls}.parse", chat))
        targets.append(Patch("openai.resources.beta.chat.completions", f"{cls}.parse", chat))
        targets.append(Patch("openai.resources.completions", f"{cls}.create", completions))
    for cls in ("Embeddings", "AsyncEmbeddings"):
        targets.append(Patch("openai.resources.embeddings", f"{cls}.create", embeddings))
    for cls in ("Responses", "AsyncResponses"):
        targets.append(Patch("openai.resources.responses", f"{cls}.create", responses))
        targets.append(Patch("openai.resources.responses", f"{cls}.parse", responses))
    return targets

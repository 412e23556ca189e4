"""Anthropic SDK: the Messages API (``create``, ``parse``, the ``stream()`` helper), also in ``client.beta``.

Anthropic's ``input_tokens`` excludes the prompt cache, so the span's input tokens are
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``. Streams take output
tokens from the final ``message_delta`` (cumulative, never added to ``message_start``'s).

anthropic >= 2 opens its own CLIENT span per call. Inside an llmtrace span that span is replaced
by a non-recording stand-in carrying llmtrace's span context (the path the SDK takes when a sampler
drops its span): one span per call, and requests still carry ``traceparent``. Calls llmtrace does
not trace (``count_tokens``, batches, files) keep the SDK's span.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry import trace

from llmtrace import semconv as sc
from llmtrace.instrumentation._core import Endpoint, Invocation, get_runtime, suppressed
from llmtrace.instrumentation._guard import internal_error
from llmtrace.instrumentation._model import Message, Part, Request, Response, Usage, text_part, tool_call_part
from llmtrace.instrumentation._patching import Patch, start_invocation
from llmtrace.instrumentation._sdk import client_base_url, get, given, put, server_of
from llmtrace.instrumentation._streams import StreamEnd, fold_or_stop, lead, wrap_stream

SDK = "anthropic"

# anthropic 0.3x-0.4x served prompt caching from its own beta resource.
_MODULES = tuple(f"anthropic.resources.{name}" for name in ("messages", "beta.messages", "beta.prompt_caching"))
_DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}
_USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")
_SAMPLING_KEYS = frozenset(("temperature", "top_p", "top_k", "stop_sequences"))
# The event types MessageEvents.add reads; it keeps nothing of any other.
_FOLDED = frozenset(("message_start", "content_block_start", "content_block_delta", "message_delta"))
_NOTHING: Any = ()  # MessageEvents.follow: the event needs no fold
_TEXT: Any = object()  # MessageEvents.blocks: a text block, kept as its text pieces alone


def _json_or_text(raw: str) -> Any:
    """Tool input as JSON when it parses, else the raw text (a stream can stop mid-way)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _media(block: Any, modality: str) -> Part:
    source = get(block, "source")
    kind = get(source, "type")
    if kind == "base64":
        mime_type, data = get(source, "media_type"), get(source, "data")
        return {"type": "blob", "modality": modality, "mime_type": mime_type, "content": data}
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": get(source, "url")}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": get(source, "file_id")}
    if kind == "text":
        return text_part(get(source, "data") or "")
    return {"type": str(get(block, "type")), "content": block}


def _part(block: Any) -> Part:
    """One content block (request dict or response model) as a semconv part."""
    if isinstance(block, str):
        return text_part(block)
    kind = get(block, "type")
    if kind == "text":
        return text_part(get(block, "text") or "")
    if kind in ("image", "document"):
        return _media(block, kind)
    if kind in ("tool_use", "server_tool_use"):
        return tool_call_part(get(block, "id"), get(block, "name"), get(block, "input"))
    if kind == "tool_result":
        content = get(block, "content")
        response = content if isinstance(content, str) or content is None else _parts(content)
        return {"type": "tool_call_response", "id": get(block, "tool_use_id"), "response": response}
    if kind == "thinking":
        return {"type": "reasoning", "content": get(block, "thinking") or ""}
    return {"type": str(kind or "unknown"), "content": block}


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [_part(block) for block in content] if isinstance(content, list | tuple) else []


def _usage(counts: dict[str, int]) -> Usage:
    """Anthropic counts as the conventions want them: input includes cache reads and writes."""
    fresh, read = counts.get("input_tokens"), counts.get("cache_read_input_tokens")
    write = counts.get("cache_creation_input_tokens")
    given_any = fresh is not None or read is not None or write is not None
    inputs = (fresh or 0) + (read or 0) + (write or 0) if given_any else None
    # positional: input, output, cache read, cache write, reasoning (a keyword call costs more on cold caches)
    return Usage(inputs, counts.get("output_tokens"), read, write, counts.get("thinking_tokens"))


def _counts(usage: Any) -> dict[str, int]:
    """The integer counters present in a usage object (model or dict); absent or null ones are left out.
    Plain reads, no helper per field: this runs at a stream's start and end, on cold caches."""
    counts: dict[str, int] = {}
    if usage is None:
        return counts
    is_dict = isinstance(usage, dict)
    for name in _USAGE_FIELDS:
        value = usage.get(name) if is_dict else getattr(usage, name, None)
        if isinstance(value, int):
            counts[name] = value
    details = usage.get("output_tokens_details") if is_dict else getattr(usage, "output_tokens_details", None)
    if details is not None:  # absent from most SDK versions' usage: no helper calls then
        thinking = get(details, "thinking_tokens")
        if isinstance(thinking, int):
            counts["thinking_tokens"] = thinking
    return counts


def _with_extra_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Newer SDKs dropped temperature/top_p/top_k from the signature; apps then send them in
    ``extra_body``, which the SDK merges over the named arguments."""
    extra = kwargs.get("extra_body")
    return {**kwargs, **extra} if isinstance(extra, dict) else kwargs


class Messages(Endpoint):
    """``messages.create`` / ``parse``; with ``helper=True`` the ``stream()`` helper (always streaming)."""

    def __init__(self, helper: bool = False) -> None:
        self.helper = helper

    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        if "extra_body" in kwargs:  # rare: no helper call otherwise
            kwargs = _with_extra_body(kwargs)
        host, port = server_of(client_base_url(get(instance, "_client")))
        model = kwargs.get("model")
        stream = self.helper or kwargs.get("stream") is True
        model = model if isinstance(model, str) else None
        return Request(sc.OP_CHAT, "anthropic", model, stream, host, port)  # ..., server address, server port

    def describe_request(self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Tests before helper calls: the usual call sets none of extra_body, sampling, format, system or tools,
        # and this runs on the caches a stream's end leaves cold, where each call costs.
        if "extra_body" in kwargs:
            kwargs = _with_extra_body(kwargs)
        attrs = request.attributes
        max_tokens = kwargs.get("max_tokens")
        if max_tokens.__class__ is int:
            attrs[sc.REQUEST_MAX_TOKENS] = max_tokens
        elif max_tokens is not None:
            put(attrs, sc.REQUEST_MAX_TOKENS, max_tokens, int)
        if not _SAMPLING_KEYS.isdisjoint(kwargs):  # the usual call sets none: one set test instead of four puts
            put(attrs, sc.REQUEST_TEMPERATURE, kwargs.get("temperature"), float)
            put(attrs, sc.REQUEST_TOP_P, kwargs.get("top_p"), float)
            put(attrs, sc.REQUEST_TOP_K, kwargs.get("top_k"), int)
            put(attrs, sc.REQUEST_STOP_SEQUENCES, kwargs.get("stop_sequences"))
        if ("output_format" in kwargs or "output_config" in kwargs) and (
            given(kwargs.get("output_format")) or get(get(kwargs, "output_config"), "format") is not None
        ):
            attrs[sc.OUTPUT_TYPE] = "json"
        system = kwargs.get("system")
        request.system_instructions = _parts(system) if system is not None and given(system) else None
        messages = kwargs.get("messages")
        request.input_messages = _messages(messages) if isinstance(messages, list | tuple) else []
        if "tools" in kwargs:  # absent in most calls: no helper call for them
            request.tool_definitions = _tools(kwargs["tools"])

    def parse_response(self, request: Request, result: Any) -> Response:
        parts, counts = _parts(get(result, "content") or []), _counts(get(result, "usage"))
        return _response(get(result, "id"), get(result, "model"), get(result, "stop_reason"), parts, counts)

    def new_stream(self, request: Request) -> MessageEvents:
        return MessageEvents()


def _messages(messages: list[Any] | tuple[Any, ...]) -> list[Message]:
    """Request messages as semconv messages; a plain ``{"role": str, "content": str}`` dict (the usual
    message) is read directly, with no helper call per field (this runs on a call's cold caches)."""
    out: list[Message] = []
    for m in messages:
        if m.__class__ is dict and len(m) == 2 and m.get("role").__class__ is str:
            content = m.get("content")
            if content.__class__ is str:
                out.append({"role": m["role"], "parts": [{"type": "text", "content": content}]})
                continue
        out.append({"role": get(m, "role", "user"), "parts": _parts(get(m, "content"))})
    return out


def _response(
    id_: str | None, model: str | None, reason: str | None, parts: list[Part], counts: dict[str, int]
) -> Response:
    output: Message = {"role": "assistant", "parts": parts, "finish_reason": reason or ""}
    reasons = [reason] if reason else []
    return Response(id_, model, reasons, _usage(counts), [output])  # id, model, finish reasons, usage, output


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    """Client tools as functions; server tools (web search, code execution) keep their own type."""
    if not given(tools):
        return None
    defs = []
    for tool in tools:
        schema = get(tool, "input_schema")
        kind = "function" if schema is not None else str(get(tool, "type", "function"))
        name, description = get(tool, "name"), get(tool, "description")
        defs.append({"type": kind, "name": name, "description": description, "parameters": schema})
    return defs or None


class MessageEvents:
    """Folds raw stream events (``message_start`` ... ``message_stop``) into a response."""

    __slots__ = ("blocks", "counts", "id", "model", "stop_reason")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.counts: dict[str, int] = {}
        self.blocks: dict[int, tuple[Any, list[str]]] = {}  # index: (content block or _TEXT, streamed pieces)

    def add(self, event: Any) -> bool:
        try:
            return self._add_model(event)
        except AttributeError:  # dict events, or a field this SDK version lacks: nothing was written yet
            return self._add_any(event)

    def _add_model(self, event: Any) -> bool:
        """:meth:`_add_any` for the SDK's event models, with plain attribute reads (no ``get()`` call per
        field: the stream's first events run on caches the SDK's work has made cold). Reads before writes."""
        kind = event.type
        if kind == "content_block_delta":
            delta, index = event.delta, event.index
            field = _DELTA_FIELDS.get(delta.type)
            if field is None:
                return False
            text = getattr(delta, field)
            self.blocks.setdefault(index, (None, []))[1].append(text or "")
            return True
        if kind == "message_start":
            message = event.message
            id_, model, counts = message.id, message.model, _counts(message.usage)
            self.id, self.model = id_, model
            self.counts.update(counts)
        elif kind == "content_block_start":
            index, block = event.index, event.content_block
            if block.type == "text":  # its text, read now: result() then reads no model on cold caches
                text = block.text
                self.blocks[index] = (_TEXT, [text] if text else [])
            else:
                self.blocks[index] = (block, [])
        elif kind == "message_delta":
            reason, counts = event.delta.stop_reason, _counts(event.usage)
            self.stop_reason = reason or self.stop_reason
            self.counts.update(counts)  # cumulative: replaces message_start's counts
        return False

    def _add_any(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self.id, self.model = get(message, "id"), get(message, "model")
            self.counts.update(_counts(get(message, "usage")))
        elif kind == "content_block_start":
            self.blocks[get(event, "index", 0)] = (get(event, "content_block"), [])
        elif kind == "content_block_delta":
            delta = get(event, "delta")
            field = _DELTA_FIELDS.get(get(delta, "type"))
            if field is not None:
                self.blocks.setdefault(get(event, "index", 0), (None, []))[1].append(get(delta, field) or "")
                return True
        elif kind == "message_delta":
            self.stop_reason = get(get(event, "delta"), "stop_reason") or self.stop_reason
            self.counts.update(_counts(get(event, "usage")))  # cumulative: replaces message_start's counts
        return False

    def tail(self) -> Callable[[Any], object]:
        """The fold after the first output: almost every later event is a ``content_block_delta``,
        taken with direct attribute reads and no allocation; any other event goes through ``add``."""
        blocks, fields, general = self.blocks, _DELTA_FIELDS, self.add

        def fold(event: Any) -> object:
            try:
                if event.type == "content_block_delta":
                    delta = event.delta
                    field, block = fields.get(delta.type), blocks.get(event.index)
                    if field is not None and block is not None:
                        block[1].append(getattr(delta, field) or "")
                        return None
            except AttributeError:  # dict events, or shapes this SDK version does not have
                pass
            return general(event)

        return fold

    def follow(
        self, events: Iterable[Any], head: Callable[[Any], bool] | None = None, end: StreamEnd | None = None
    ) -> Iterator[Any]:
        """Sync streams: :meth:`tail`'s fold inline in one generator, no call per event; with the core's
        ``head`` and ``end``, the whole stream (see ``StreamAccumulator``)."""
        events = iter(events)
        try:
            if head is not None:
                yield from lead(events, head)
            blocks, fields, general, other = self.blocks, _DELTA_FIELDS, self.add, _NOTHING
            index, pieces = None, []  # the last delta's block and its text pieces: deltas come in runs per block
            for event in events:
                piece = other  # other: the general fold takes the event; None: nothing to keep
                try:  # reads only: any other event, or one that fails here, goes to the general fold
                    kind = event.type
                    if kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":  # almost every event: no field lookup, no getattr()
                            piece = delta.text or ""
                        else:
                            field = fields.get(delta.type)
                            if field is not None:
                                piece = getattr(delta, field) or ""
                        if event.index != index and piece is not other:  # a new run: one block lookup per run
                            index, pieces = event.index, blocks[event.index][1]
                    elif kind not in _FOLDED:  # content_block_stop, message_stop, ping: add() would keep nothing
                        piece = None
                except Exception:  # dict events, shapes this SDK version lacks, a delta before its block's start
                    piece = other
                if piece is other:
                    index = None  # the general fold may replace a block
                    if not fold_or_stop(general, event):
                        yield event
                        yield from events
                        break
                elif piece is not None:
                    pieces.append(piece)
                yield event
        except GeneratorExit:
            raise  # closed or collected: the proxy's close() or its finaliser ends the span
        except BaseException as exc:
            if end is not None:
                end("error", exc)
            raise
        if end is not None:
            end("completed", None)

    async def afollow(
        self, events: AsyncIterable[Any], head: Callable[[Any], bool], end: StreamEnd
    ) -> AsyncIterator[Any]:
        """Async streams: :meth:`follow` with the core's ``head`` and ``end``, as one async generator (which
        cannot delegate: the head's loop is here too)."""
        events = aiter(events)
        try:
            async for event in events:
                if head(event):
                    yield event
                    break
                yield event
            blocks, fields, general, other, folding = self.blocks, _DELTA_FIELDS, self.add, _NOTHING, True
            index, pieces = None, []  # as in follow()
            async for event in events:
                if folding:
                    piece = other
                    try:  # reads only, as in follow()
                        kind = event.type
                        if kind == "content_block_delta":
                            delta = event.delta
                            if delta.type == "text_delta":
                                piece = delta.text or ""
                            else:
                                field = fields.get(delta.type)
                                if field is not None:
                                    piece = getattr(delta, field) or ""
                            if event.index != index and piece is not other:
                                index, pieces = event.index, blocks[event.index][1]
                        elif kind not in _FOLDED:
                            piece = None
                    except Exception:
                        piece = other
                    if piece is other:
                        index = None
                        folding = fold_or_stop(general, event)
                    elif piece is not None:
                        pieces.append(piece)
                yield event
        except GeneratorExit:
            raise
        except BaseException as exc:
            end("error", exc)
            raise
        end("completed", None)

    def result(self, request: Request) -> Response:
        blocks = self.blocks
        if len(blocks) == 1:  # the usual reply: one block, read without a sort and a comprehension (cold caches)
            block, pieces = next(iter(blocks.values()))
            part = {"type": "text", "content": "".join(pieces)} if block is _TEXT else self._block_part(block, pieces)
            parts = [part]
        else:
            parts = [self._block_part(*blocks[index]) for index in sorted(blocks)]
        reason = self.stop_reason  # _response, inline: two frames fewer on the cold caches of a stream's end
        output: Message = {"role": "assistant", "parts": parts, "finish_reason": reason or ""}
        return Response(self.id, self.model, [reason] if reason else [], _usage(self.counts), [output])

    @staticmethod
    def _block_part(block: Any, pieces: list[str]) -> Part:
        if block is _TEXT:
            return text_part("".join(pieces))
        kind, streamed = get(block, "type"), "".join(pieces)
        if kind in ("tool_use", "server_tool_use"):
            arguments = _json_or_text(streamed) if streamed else get(block, "input")
            return tool_call_part(get(block, "id"), get(block, "name"), arguments)
        if kind == "thinking":
            return {"type": "reasoning", "content": (get(block, "thinking") or "") + streamed}
        if kind in ("text", None):
            return text_part((get(block, "text") or "") + streamed)
        return _part(block)


# --- the stream() helper ------------------------------------------------------------------------
# ``messages.stream()`` builds a MessageStreamManager around ``partial(self._post, ...)``: no request
# is made until ``with`` enters it, and ``create`` is never called. So the helper's manager is proxied:
# entering it starts the span and makes the request, and the SDK's own MessageStream is returned with
# its ``_raw_stream`` (read lazily by its event generator, in every SDK version since 0.2x) swapped for
# the core's stream proxy. The app keeps the SDK's MessageStream, so events, ``text_stream``,
# ``get_final_message()`` and ``until_done()`` are untouched, and the core sees every raw event and
# ends the span once: on the last event, on close or ``with`` exit, on error, or when dropped.

Starter = Callable[[], Invocation | None]


@contextmanager
def _request(invocation: Invocation) -> Iterator[None]:
    """The SDK sends the request with our span current; its errors are recorded and re-raised untouched."""
    try:
        yield
    except BaseException as exc:
        invocation.exit()
        invocation.fail(exc)
        raise
    invocation.exit()


def _closed(invocation: Invocation | None) -> None:
    """``with`` exit ends the span, also where older SDKs close the response rather than the raw stream."""
    if invocation is not None:
        invocation.end_stream("closed")


def _observe(stream: Any, invocation: Invocation) -> Any:
    try:
        stream._raw_stream = wrap_stream(stream._raw_stream, invocation)
    except Exception as exc:
        invocation.end_stream("closed")
        internal_error("anthropic stream helper", exc)
    return stream


class _Manager(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, start: Starter) -> None:
        super().__init__(wrapped)
        self._self_start = start
        self._self_invocation: Invocation | None = None


class _StreamManager(_Manager):
    def __enter__(self) -> Any:
        invocation = self._self_invocation = self._self_start()
        if invocation is None:
            return self.__wrapped__.__enter__()
        with _request(invocation):
            stream = self.__wrapped__.__enter__()
        return _observe(stream, invocation)

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            _closed(self._self_invocation)


class _AsyncStreamManager(_Manager):
    async def __aenter__(self) -> Any:
        invocation = self._self_invocation = self._self_start()
        if invocation is None:
            return await self.__wrapped__.__aenter__()
        with _request(invocation):
            stream = await self.__wrapped__.__aenter__()
        return _observe(stream, invocation)

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            _closed(self._self_invocation)


def _stream_helper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    manager = wrapped(*args, **kwargs)  # builds the request; nothing is sent yet
    if get_runtime() is None:
        return manager
    try:
        start = functools.partial(start_invocation, _HELPER, instance, args, kwargs)
        return (_AsyncStreamManager if hasattr(manager, "__aenter__") else _StreamManager)(manager, start)
    except Exception as exc:
        internal_error("anthropic stream helper", exc)
        return manager


def _sdk_call_span(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The SDK's own call span; inside ours a non-recording one with our context: propagated, not exported."""
    if not suppressed():
        return wrapped(*args, **kwargs)
    context = trace.get_current_span().get_span_context()
    return trace.NonRecordingSpan(context) if context.is_valid else None


_HELPER = Messages(helper=True)


def patches() -> list[Patch]:
    """``create``/``parse`` get the standard wrapper; the ``stream()`` helpers a manager proxy; and, on
    anthropic >= 2, the SDK's own call span stands aside inside ours."""
    endpoint = Messages()
    standard = [
        Patch(module, f"{cls}.{method}", endpoint)
        for module in _MODULES
        for cls in ("Messages", "AsyncMessages")
        for method in ("create", "parse")
    ]
    helpers = [
        Patch(module, f"{cls}.stream", wrapper=_stream_helper)
        for module in _MODULES
        for cls in ("Messages", "AsyncMessages")
    ]
    return [*standard, *helpers, Patch("anthropic._base_client", "start_api_call_span", wrapper=_sdk_call_span)]

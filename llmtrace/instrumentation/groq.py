"""Groq SDK (``groq``): ``chat.completions.create``, sync and async, streamed or not.

Groq's SDK is OpenAI's shape (same generator, same request and response fields), so the OpenAI
chat mapping reads it; only the provider name and where a stream's usage arrives differ: Groq sends
it in ``x_groq.usage`` on the final chunk (and in ``usage`` only when ``stream_options`` asks).
The span is the one the ``openai`` SDK pointed at Groq's endpoint would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmtrace.instrumentation._model import Request
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get
from llmtrace.instrumentation.openai import Chat, ChatStream, TextChatStream

SDK = "groq"
PROVIDER = "groq"


class GroqChat(Chat):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        request = super().parse_request(instance, args, kwargs)
        request.provider = PROVIDER
        return request

    def new_stream(self, request: Request) -> ChatStream:
        return GroqTextStream() if request.one_text_choice else GroqStream()


class GroqStream(ChatStream):
    """OpenAI's chunk fold, also taking usage from ``x_groq``."""

    __slots__ = ()

    def add(self, chunk: Any) -> bool:
        carried = super().add(chunk)
        if self.usage is None:
            self.usage = get(get(chunk, "x_groq"), "usage")
        return carried


class GroqTextStream(GroqStream, TextChatStream):
    """The usual one-choice text stream: OpenAI's lean fold after the first text, plus ``x_groq``'s usage."""

    __slots__ = ()
    follow = afollow = None  # type: ignore[assignment]  # x_groq's usage: tail()'s fold below, chunk by chunk

    def tail(self) -> Callable[[Any], object]:
        fold = TextChatStream.tail(self)
        if fold == self.add:  # the general fold already reads x_groq
            return fold

        def groq_fold(chunk: Any) -> object:
            result = fold(chunk)
            if self.usage is None:
                x_groq = getattr(chunk, "x_groq", None)
                self.usage = getattr(x_groq, "usage", None) if x_groq is not None else None
            return result

        return groq_fold


def patches() -> list[Patch]:
    chat = GroqChat()
    return [
        Patch("groq.resources.chat.completions", f"{cls}.create", chat) for cls in ("Completions", "AsyncCompletions")
    ]

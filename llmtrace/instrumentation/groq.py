"""Groq SDK (``groq``): ``chat.completions.create``, sync and async, streamed or not.

Groq's SDK is OpenAI's shape (same generator, same request and response fields), so the OpenAI
chat mapping reads it; only the provider name and where a stream's usage arrives differ: Groq sends
it in ``x_groq.usage`` on the final chunk (and in ``usage`` only when ``stream_options`` asks).
The span is the one the ``openai`` SDK pointed at Groq's endpoint would give.
"""

from __future__ import annotations

from typing import Any

from llmtrace.instrumentation._model import Request
from llmtrace.instrumentation._patching import Patch
from llmtrace.instrumentation._sdk import get
from llmtrace.instrumentation.openai import Chat, ChatStream

SDK = "groq"
PROVIDER = "groq"


class GroqChat(Chat):
    def parse_request(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        request = super().parse_request(instance, args, kwargs)
        request.provider = PROVIDER
        return request

    def new_stream(self, request: Request) -> ChatStream:
        return GroqStream()


class GroqStream(ChatStream):
    """OpenAI's chunk fold, also taking usage from ``x_groq`` (every chunk goes through ``add``)."""

    __slots__ = ()

    def add(self, chunk: Any) -> bool:
        carried = super().add(chunk)
        if self.usage is None:
            self.usage = get(get(chunk, "x_groq"), "usage")
        return carried


def patches() -> list[Patch]:
    chat = GroqChat()
    return [
        Patch("groq.resources.chat.completions", f"{cls}.create", chat) for cls in ("Completions", "AsyncCompletions")
    ]

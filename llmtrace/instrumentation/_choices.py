"""Streamed output assembled per choice, for adapters whose chunks carry whole parts (Gemini, Mistral).

Consecutive text pieces (or reasoning pieces) of one choice join into one part, as the SDK's own
``response.text`` would read them; anything else (a tool call, an image) starts a new part.
"""

from __future__ import annotations

from llmtrace.instrumentation._model import Message, Part

_JOINED = ("text", "reasoning")


class Choices:
    """Output parts and finish reasons by choice index, in arrival order within a choice."""

    __slots__ = ("parts", "reasons")

    def __init__(self) -> None:
        self.parts: dict[int, list[Part]] = {}
        self.reasons: dict[int, str] = {}

    def add(self, index: int, part: Part) -> None:
        parts = self.parts.setdefault(index, [])
        if parts and part["type"] in _JOINED and parts[-1]["type"] == part["type"]:
            parts[-1] = {**parts[-1], "content": parts[-1]["content"] + part["content"]}
        else:
            parts.append(part)

    def finish(self, index: int, reason: str) -> None:
        self.reasons[index] = reason

    def outputs(self) -> tuple[list[Message], list[str]]:
        """Output messages for every choice seen, and the finish reasons of those that finished."""
        indexes = sorted(set(self.parts) | set(self.reasons))
        messages: list[Message] = [
            {"role": "assistant", "parts": self.parts.get(i, []), "finish_reason": self.reasons.get(i, "")}
            for i in indexes
        ]
        return messages, [self.reasons[i] for i in indexes if i in self.reasons]

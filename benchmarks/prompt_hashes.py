"""What the automatic prompt versions cost per call: the app thread reads one context variable; the
worker hashes the system instructions and the (masked) messages.

Prints microseconds per call (best of ``--repeat`` rounds of ``--number`` calls) for a short chat
without and with a declared variable, a 100 kB message, and the app thread's part.

    python benchmarks/prompt_hashes.py
"""

from __future__ import annotations

import argparse
import timeit

from llmtrace.instrumentation._model import Request
from llmtrace.instrumentation._prompt_hash import current_variables, prompt_hashes

SYSTEM = [{"type": "text", "content": "You are a friendly support agent for an online shop. Be brief and concrete."}]
QUESTION = "my order arrived damaged, can I get a refund"


def chat(text: str) -> Request:
    messages = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
    return Request("chat", "openai", "gpt-4o", system_instructions=SYSTEM, input_messages=messages)


def best_us(function: object, number: int, repeat: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    short, big = chat(f"Customer asks: {QUESTION}"), chat(QUESTION + "x" * 100_000)
    variables = {"question": QUESTION}
    rows = [
        ("worker: short chat, no variables", lambda: prompt_hashes(short, None), args.number),
        ("worker: short chat, 1 variable", lambda: prompt_hashes(short, variables), args.number),
        ("worker: 100 kB message, 1 variable", lambda: prompt_hashes(big, variables), max(1, args.number // 50)),
        ("app thread: current_variables()", current_variables, args.number * 20),
    ]
    for label, function, number in rows:
        print(f"{label:<38} {best_us(function, number, args.repeat):9.2f} us")


if __name__ == "__main__":
    main()

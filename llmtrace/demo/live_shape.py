"""Live demo traffic drawn as the bulk history draws its calls, at the history's pace for the hour.

The week ``llmtrace up --demo`` writes in bulk (:data:`~llmtrace.demo.scenarios.HISTORY_SQL`) is
what the Anomalies page learns as normal, so the live requests that follow it must look like it,
series by series (service x model x environment): the same calls per hour at that time of day,
two calls per request, the same input and output tokens, error share, latency, time to first
token and stream share. Live traffic once ran at a floor of 0.2 requests/s, 4-5x the week's pace
and flat over the day, with tool-call replies and short prompts the week never had: 15 minutes
after start the page showed ``calls up`` and ``tokens_per_call down`` warnings on healthy series.

:func:`profile` is the exact density of the history's daily warp, :func:`request_at` one request
drawn from the history's distributions after the week's story (model switch, release and prompt
v4 have happened, the incidents are over) and :func:`schedule` the times a live player sends
them, ``1 / rate`` apart where ``rate`` follows the profile.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from llmtrace.demo import scenarios
from llmtrace.demo.fake_llm_gemini import THOUGHT_TOKENS, thinks
from llmtrace.demo.fake_llm_openai import REASONING_TOKENS, is_reasoning_model
from llmtrace.demo.scenarios import Call, Request

__all__ = ["WEEK_S", "hidden_output", "mean_rate", "profile", "rate_at", "request_at", "schedule"]

DAY_S = 86400
WEEK_S = 7 * DAY_S
CALLS_PER_REQUEST = 2  # the history writes two LLM spans per trace
PROMPT_TOKENS = (120, 600)  # uniform input tokens: base + width * u, as HISTORY_SQL draws them
OUTPUT_SPREAD = 0.35  # output tokens: typical words x exp(0.35 z) x 1.3
TOKENS_PER_WORD = 1.3
MAX_OUTPUT_TOKENS = 1000  # below the players' max_tokens (1024): a live reply is never cut


def profile(t_ns: int) -> float:
    """The history's call density at ``t_ns``'s time of day over the day's mean (0.625 to 2.5).

    HISTORY_SQL moves a uniform time of day ``f`` to ``g(f) = f - s/2pi (sin 2pi(f - p) + sin 2pi p)``
    (``s`` the seasonality, ``p`` the peak hour as a share of the day), so the density at ``w = g(f)``
    is ``1 / g'(f)``; ``g`` rises strictly (``g' >= 1 - s``), so bisection finds ``f``."""
    s, p = scenarios.SEASONALITY, scenarios.PEAK_HOUR_UTC / 24
    w = (t_ns / 1e9 % DAY_S) / DAY_S
    lo, hi = 0.0, 1.0
    for _ in range(48):
        f = (lo + hi) / 2
        g = f - s / (2 * math.pi) * (math.sin(2 * math.pi * (f - p)) + math.sin(2 * math.pi * p))
        lo, hi = (f, hi) if g < w else (lo, f)
    return 1 / (1 - s * math.cos(2 * math.pi * ((lo + hi) / 2 - p)))


def mean_rate(calls: int, days: float = 7) -> float:
    """Requests per second of a history of ``calls`` LLM calls over ``days``, averaged over the day."""
    return calls / CALLS_PER_REQUEST / (days * DAY_S)


def rate_at(t_ns: int, rate: float) -> float:
    """Requests per second at ``t_ns`` of traffic whose daily mean is ``rate``."""
    return rate * profile(t_ns)


def schedule(start_ns: int, rate: float, until_ns: int | None = None) -> Iterator[int]:
    """Send times from ``start_ns`` on (to ``until_ns``): each ``1 / rate_at`` after the last."""
    t = start_ns
    while until_ns is None or t < until_ns:
        yield t
        t += int(1e9 / rate_at(t, rate))


def request_at(t_ns: int, key: str) -> Request:
    """One request at ``t_ns`` drawn as HISTORY_SQL draws a trace once the week's story is told
    (``key`` seeds it): service by share, model by weight (gpt-4o is claude-sonnet now),
    environment, stream or not, then two calls."""
    rng = random.Random(key)
    service = rng.choices(scenarios.SERVICES, weights=[s.share for s in scenarios.SERVICES])[0]
    model = rng.choices([m for m, _ in service.models], weights=[w for _, w in service.models])[0]
    model = scenarios.SWITCH_TO if model == scenarios.SWITCH_FROM else model
    environment = "production" if rng.random() < 0.85 else "staging"
    summarizer = service.name == "summarizer"
    stream = rng.random() < service.stream_share
    user = rng.randrange(scenarios.USERS)
    request = Request(
        start_ns=t_ns,
        service=service.name,
        environment=environment,
        release=scenarios.RELEASES[-1],
        prompt_name=service.prompt,
        prompt_version=scenarios.PROMPT_VERSIONS[-1] if summarizer else "2",
        user_id=f"user-{user:03d}",
        session_id=scenarios._session(user, t_ns),
        topic=rng.choice(scenarios.TOPICS),
    )
    factor = scenarios._episode("prompt_change").factor if summarizer else 1.0
    request.calls = [_call(rng, model, stream, factor) for _ in range(CALLS_PER_REQUEST)]
    return request


def _call(rng: random.Random, model: str, stream: bool, prompt_factor: float) -> Call:
    """One call as a HISTORY_SQL row: 2% fail (7 in 10 a 429) with no tokens; TTFT is the model's
    base x U(0.7, 1.3), the call that plus its output tokens at the model's pace."""
    profile_ = scenarios.MODELS[model]
    failed = rng.random() < scenarios.BASE_ERROR_RATE
    jitter = math.exp(rng.gauss(0, 1) * OUTPUT_SPREAD)
    output = 0 if failed else min(MAX_OUTPUT_TOKENS, int(profile_.words * jitter * TOKENS_PER_WORD))
    base, width = PROMPT_TOKENS
    prompt = 0 if failed else int((base + rng.random() * width) * prompt_factor)
    ttft = profile_.base_ms * (0.7 + 0.6 * rng.random())
    status = (429 if rng.random() < 0.7 else 500) if failed else 0
    words = max(1, output - hidden_output(model))
    return Call(model, stream, words, ttft + output * profile_.ms_per_token, ttft, status=status, prompt_tokens=prompt)


def hidden_output(model: str) -> int:
    """Output tokens the fake LLM adds to a reply's words for ``model`` (an o-series model's reasoning,
    a Gemini 2.5 model's thoughts): the player asks for that many fewer words, so the recorded output
    tokens are the history's (at least this many plus one)."""
    if is_reasoning_model(model):
        return REASONING_TOKENS
    if scenarios.MODELS[model].provider.startswith("gcp.") and thinks(model, {}):
        return THOUGHT_TOKENS
    return 0

"""A canary's releases as real traffic: one process per release, through the real openai SDK.

Each release runs as its own app process, as a deployment would: ``llmtrace.instrument(
service_name=..., release=...)`` (the release tag is llmtrace's setting), the openai SDK streaming
from an in-process fake LLM whose knobs make the differences (``x-fake-chunk-delay-ms`` slows
generation, ``x-fake-latency-ms`` is lowered by the same first-chunk delay so time to first token
stays put), the arm's model (a cheaper one is a cheaper release, priced by llmtrace at the call),
each request in an ``llmtrace.trace`` with its user and session, and a ``quality`` score given with
``llmtrace.score``. What is not an injected difference — output length, errors, the quality score's
spread — is drawn from the same distributions for every arm (seeded by release and request).

``python -m llmtrace.demo.canary --live --release v2.1.0 --endpoint http://127.0.0.1:4318``
plays one arm; :func:`play_arms` plays every arm of a canary at once, one process each.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from llmtrace.demo.canary import Arm, Canary

__all__ = ["UP_CALLS", "CanaryCall", "call_of", "compare_link", "live_rate", "load_for_up", "play", "play_arms",
           "start_arms", "up_scenario"]  # fmt: skip

# Drawn as the canary's bulk history draws its calls (canary.py's _DRAW), so live calls continue
# that history instead of looking like an incident at "now" (live calls once had a fifth of its
# output tokens and a twentieth of its latency: a critical `tokens_per_call down` on the Anomalies page).
TTFT_MS = 300  # median time to first token, x exp(0.25 z)
OUTPUT_WORDS = 135  # median reply words, x exp(0.35 z): ~150 output tokens (the fake's replies: ~1.1 per word)
WORD_MS = 9  # before each streamed word (~8 ms per token), x exp(0.2 z); an arm's `generation` scales it
QUALITY_MEAN, QUALITY_SD = 0.78, 0.12
ERROR_SHARE = 0.02
QUESTIONS = ("Where is my order?", "Can I change the delivery address?", "How do I return a jacket?",
             "Is the blue sofa in stock?", "Why was I charged twice?")  # fmt: skip
SYSTEM = """You are the checkout assistant of Northwind Home, an online shop for furniture, lighting and \
textiles. Answer the customer's question in two or three short sentences, in the language they wrote in.

Orders: an order can be changed or cancelled free of charge until it is packed, usually within two \
hours of payment; after that, offer a return instead. Give the order's status only after the \
customer has confirmed the e-mail address used for the order. Never read out a full card number, \
address or phone number; the last four digits or the postcode are enough to confirm.

Delivery: small parcels ship with the national post in 2-4 working days; furniture ships with a \
two-person crew in 5-10 working days and the customer chooses a four-hour slot by e-mail. A delivery \
address can be changed until the parcel is handed to the carrier. Delays of more than three working \
days get a 10% voucher without being asked for.

Returns: 30 days from delivery for unused items in their packaging, 14 days for made-to-measure \
curtains only when they are faulty. Returns of parcels are free; collection of furniture costs 39 EUR \
unless the item is faulty. Refunds go to the original payment method within five working days of the \
return arriving at the warehouse.

Payments: a double charge is almost always a card authorisation that lapses within seven days; check \
the order's payment log before you say so, and open a payment case when the log shows two captures. \
Stock: say "in stock" only when the warehouse shows at least three units; otherwise give the expected \
date. If the customer is upset, apologise once, then solve the problem. Hand over to a human agent \
when the customer asks for one, when a refund above 500 EUR is involved, or when you are unsure."""


@dataclass(frozen=True)
class CanaryCall:
    """One request of an arm: what the fake is asked for and the score it gets."""

    question: str
    words: int
    latency_ms: int
    chunk_ms: int
    status: int | None
    quality: float
    user: str
    session: str

    def headers(self) -> dict[str, str]:
        headers = {"x-fake-output-words": str(self.words), "x-fake-latency-ms": str(self.latency_ms),
                   "x-fake-chunk-delay-ms": str(self.chunk_ms)}  # fmt: skip
        if self.status:
            headers["x-fake-status"] = str(self.status)
        return headers


def call_of(canary: Canary, arm: Arm, index: int, changed: bool) -> CanaryCall:
    """Request ``index`` of ``arm`` (``changed``: the arm's differences apply to it)."""
    rng = random.Random(f"canary:{canary.seed}:{arm.release}:{index}")
    quality = rng.gauss(QUALITY_MEAN, QUALITY_SD) + (arm.quality_shift if changed else 0.0)
    # A canary routes each user to one release, so a session never spans releases.
    user = f"shopper-{canary.arms.index(arm) * 400 + rng.randrange(400):04d}"
    question = rng.choice(QUESTIONS)
    words = max(4, min(400, round(OUTPUT_WORDS * math.exp(0.35 * rng.gauss(0, 1)))))
    status = 500 if rng.random() < ERROR_SHARE else None
    session = f"{user}:{rng.randrange(3)}"
    ttft = TTFT_MS * math.exp(0.25 * rng.gauss(0, 1))
    chunk = round(WORD_MS * math.exp(0.2 * rng.gauss(0, 1)) * (arm.generation if changed else 1.0))
    return CanaryCall(
        question=question,
        words=words,
        latency_ms=max(0, round(ttft) - chunk),  # the first word waits `chunk` too: TTFT is not changed
        chunk_ms=chunk,
        status=status,
        quality=round(min(1.0, max(0.0, quality)), 3),
        user=user,
        session=session,
    )


def play(
    endpoint: str,
    canary: Canary,
    arm: Arm,
    requests: int | None,
    rate: float | None = None,
    clock_start_ns: int | None = None,
) -> int:
    """Play ``requests`` requests of ``arm`` (None: until stopped or the parent is gone), ``rate``
    per second (None: back to back). Returns the requests played. Call once per process: it
    instruments the process as the arm's release. ``clock_start_ns``: latencies on a simulated clock
    starting then, exactly as the knobs say (:mod:`llmtrace.demo.canary_clock`), for checks that must
    not depend on how busy the machine is (arms given the same start share one timeline)."""
    import openai

    import llmtrace
    from llmtrace.demo.fake_llm import FakeLLM

    llmtrace.instrument(service_name=canary.service, release=arm.release, endpoint=endpoint)
    parent, played, next_at = os.getppid(), 0, time.monotonic()
    try:
        with FakeLLM() as fake:
            paced = None if clock_start_ns is None else _simulated_http_client(clock_start_ns)
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="demo", max_retries=0, http_client=paced)
            while requests is None or played < requests:
                changed = requests is None or played >= arm.from_share * requests
                _request(client, arm, call_of(canary, arm, played, changed), canary.model)
                played += 1
                if rate and os.getppid() == parent:
                    next_at += 1 / rate
                    time.sleep(max(0.0, next_at - time.monotonic()))  # pacing live traffic
                elif rate:
                    break  # the parent (llmtrace up) is gone
    finally:
        llmtrace.flush()
        llmtrace.uninstrument()
    return played


def _simulated_http_client(start_ns: int) -> Any:
    """An httpx client whose transport plays the fake's delays on a clock this process now reads."""
    import httpx

    from llmtrace.demo.canary_clock import PacedTransport, SimulatedClock

    clock = SimulatedClock(start_ns)
    clock.install()
    return httpx.Client(transport=PacedTransport(clock))


def _request(client: Any, arm: Arm, call: CanaryCall, default_model: str) -> None:
    import openai

    import llmtrace

    with (
        llmtrace.trace("checkout request", user_id=call.user, session_id=call.session),
        llmtrace.prompt("checkout-answer", "1", variables={"question": call.question}),  # one template
    ):
        try:
            stream = client.chat.completions.create(
                model=arm.model or default_model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": call.question}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=call.headers(),
            )
            for _ in stream:
                pass
        except openai.APIError:
            return  # recorded on the span by llmtrace; a failed request gets no score
        llmtrace.score("quality", call.quality)


def _argv(
    endpoint: str,
    scenario: str,
    release: str,
    requests: int | None,
    rate: float | None,
    clock_start_ns: int | None = None,
) -> list[str]:
    argv = [sys.executable, "-m", "llmtrace.demo.canary", "--live", "--endpoint", endpoint,
            "--scenario", scenario, "--release", release]  # fmt: skip
    argv += ["--requests", str(requests)] if requests is not None else []
    argv += ["--simulated-clock", str(clock_start_ns)] if clock_start_ns is not None else []
    return argv + (["--rate", f"{rate:g}"] if rate else [])


def start_arms(
    endpoint: str,
    scenario: str,
    releases: Sequence[str],
    requests: int | None = None,
    rate: float | None = None,
    env: dict[str, str] | None = None,
    simulated: bool = False,
) -> list[subprocess.Popen[bytes]]:
    """One ``python -m llmtrace.demo.canary --live`` process per release, started at once
    (``simulated``: all on one simulated clock, started so that the longest arm ends about now,
    see :func:`play`: its calls take minutes of simulated time and must not land in the future)."""
    start = time.time_ns() - _simulated_ns(scenario, releases, requests) if simulated else None
    return [
        subprocess.Popen(_argv(endpoint, scenario, release, requests, rate, start), env=env, stdout=subprocess.DEVNULL)
        for release in releases
    ]


def _simulated_ns(scenario: str, releases: Sequence[str], requests: int | None) -> int:
    """The simulated time the longest of these arms takes for ``requests`` requests."""
    from llmtrace.demo.canary import SCENARIOS

    if not requests:
        return 0
    canary = SCENARIOS[scenario]
    arms = [arm for arm in canary.arms if arm.release in releases]
    spans = [
        sum(
            (call := call_of(canary, arm, i, i >= arm.from_share * requests)).latency_ms + call.chunk_ms * call.words
            for i in range(requests)
        )
        for arm in arms
    ]
    return int(max(spans, default=0) * 1_000_000)


def play_arms(endpoint: str, scenario: str, releases: Sequence[str], requests: int, timeout: float = 600) -> None:
    """Play ``requests`` requests of every release at once (one process each); raise if one fails."""
    processes = start_arms(endpoint, scenario, releases, requests)
    failed = [release for release, p in zip(releases, processes, strict=True) if p.wait(timeout) != 0]
    if failed:
        raise RuntimeError(f"the canary's {', '.join(failed)} process(es) failed")


# The canary's last day in `llmtrace up --demo`: 6,000 per release, and live 0.069 requests/s per release
# (a call every 4.8 s of the three together) so the demo's dashboard visibly moves while the main
# services keep the week's slower pace (0.03-0.12 calls/s).
UP_CALLS = 18_000


def live_rate(canary: Canary) -> float:
    """Requests per second per release that continue ``canary``'s bulk history at its pace (flat over
    its window): once 0.1, 4.3x the 6,000-call day's, a `calls up 250 vs 52` warning 15 minutes in."""
    return canary.calls / len(canary.arms) / (canary.hours * 3600)


def up_scenario(end: datetime) -> Canary:
    """The canary ``llmtrace up --demo`` loads: :data:`~llmtrace.demo.canary.DEMO`'s last day up to
    ``end``, :data:`UP_CALLS` calls. Its live arms never cut a reply, so neither does its day: 3%
    "length" there (none in the week's history) was a critical `truncation_rate up` for the whole
    openai provider from the canary's first call."""
    from llmtrace.demo import canary

    return dataclasses.replace(canary.DEMO, end=end, calls=UP_CALLS, truncated=0.0)


def compare_link(dashboard_url: str, canary: Canary, candidate: int = 1) -> str:
    """The Compare page opened on the canary: its baseline against one of its candidates, within its service."""
    base, other = canary.arms[0].release, canary.arms[candidate].release
    query = urlencode({"by": "release", "baseline": base, "candidate": other, "service": canary.service})
    return f"{dashboard_url.rstrip('/')}/compare?{query}"


def load_for_up(query_url: str, otlp_url: str, dashboard_url: str, env: dict[str, str], live: bool = True) -> bool:
    """``llmtrace up --demo``'s canary: the last day of :data:`~llmtrace.demo.canary.DEMO` in bulk,
    then each release live through the openai SDK (one process each, at the day's pace: :func:`live_rate`), stopped
    with this process. Says where to compare them; on a store error says so and returns False."""
    from datetime import timezone

    from llmtrace.demo import canary
    from llmtrace.demo.live import in_background
    from llmtrace.store.client import connect

    scenario = up_scenario(datetime.now(timezone.utc))
    try:
        client = connect(query_url)
        try:
            calls = canary.insert(client, scenario)
        finally:
            client.close()
    except Exception as exc:  # the store's own error: up keeps serving what it has
        print(f"The canary demo could not be loaded ({exc}).", file=sys.stderr)
        return False
    releases = [a.release for a in scenario.arms]
    if live:
        for process in start_arms(otlp_url, "demo", releases, None, live_rate(scenario), env):
            in_background(process)
    print(
        f"Canary: {scenario.service} serves {', '.join(releases)} side by side ({calls:,} calls over the last "
        f"day{'; live through the openai SDK from now on' if live else ''}). Compare them: "
        f"{compare_link(dashboard_url, scenario)}",
        flush=True,
    )
    return True

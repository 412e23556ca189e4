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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from llmtrace.demo.canary import Arm, Canary

__all__ = ["LIVE_RATE", "CanaryCall", "call_of", "compare_link", "load_for_up", "play", "play_arms", "start_arms"]

LATENCY_MS = 6  # before the reply's first byte
CHUNK_MS = 2  # before each streamed word (x-fake-chunk-delay-ms); an arm's `generation` scales it
QUALITY_MEAN, QUALITY_SD = 0.78, 0.12
ERROR_SHARE = 0.02
QUESTIONS = ("Where is my order?", "Can I change the delivery address?", "How do I return a jacket?",
             "Is the blue sofa in stock?", "Why was I charged twice?")  # fmt: skip
SYSTEM = "You are the checkout assistant of an online shop. Answer in two sentences."


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
    chunk = round(CHUNK_MS * (arm.generation if changed else 1.0))
    quality = rng.gauss(QUALITY_MEAN, QUALITY_SD) + (arm.quality_shift if changed else 0.0)
    # A canary routes each user to one release, so a session never spans releases.
    user = f"shopper-{canary.arms.index(arm) * 400 + rng.randrange(400):04d}"
    return CanaryCall(
        question=rng.choice(QUESTIONS),
        words=max(4, min(80, round(24 * math.exp(0.35 * rng.gauss(0, 1))))),
        latency_ms=max(0, LATENCY_MS - (chunk - CHUNK_MS)),  # the first word waits `chunk` too: same TTFT
        chunk_ms=chunk,
        status=500 if rng.random() < ERROR_SHARE else None,
        quality=round(min(1.0, max(0.0, quality)), 3),
        user=user,
        session=f"{user}:{rng.randrange(3)}",
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
    (``simulated``: all on one simulated clock starting now, see :func:`play`)."""
    start = time.time_ns() if simulated else None
    return [
        subprocess.Popen(_argv(endpoint, scenario, release, requests, rate, start), env=env, stdout=subprocess.DEVNULL)
        for release in releases
    ]


def play_arms(endpoint: str, scenario: str, releases: Sequence[str], requests: int, timeout: float = 600) -> None:
    """Play ``requests`` requests of every release at once (one process each); raise if one fails."""
    processes = start_arms(endpoint, scenario, releases, requests)
    failed = [release for release, p in zip(releases, processes, strict=True) if p.wait(timeout) != 0]
    if failed:
        raise RuntimeError(f"the canary's {', '.join(failed)} process(es) failed")


LIVE_RATE = 0.1  # requests per second per release in `llmtrace up --demo`
UP_CALLS = 6000  # the canary's last day in `llmtrace up --demo` (2,000 per release: verdicts are clear)


def compare_link(dashboard_url: str, canary: Canary, candidate: int = 1) -> str:
    """The Compare page opened on the canary: its baseline against one of its candidates, within its service."""
    base, other = canary.arms[0].release, canary.arms[candidate].release
    query = urlencode({"by": "release", "baseline": base, "candidate": other, "service": canary.service})
    return f"{dashboard_url.rstrip('/')}/compare?{query}"


def load_for_up(query_url: str, otlp_url: str, dashboard_url: str, env: dict[str, str], live: bool = True) -> bool:
    """``llmtrace up --demo``'s canary: the last day of :data:`~llmtrace.demo.canary.DEMO` in bulk,
    then each release live through the openai SDK (one process each, :data:`LIVE_RATE`), stopped
    with this process. Says where to compare them; on a store error says so and returns False."""
    import atexit
    from datetime import datetime, timezone

    from llmtrace.demo import canary
    from llmtrace.demo.live import _stop
    from llmtrace.store.client import connect

    scenario = dataclasses.replace(canary.DEMO, end=datetime.now(timezone.utc), calls=UP_CALLS)
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
        for process in start_arms(otlp_url, "demo", releases, None, LIVE_RATE, env):
            atexit.register(_stop, process)
    print(
        f"Canary: {scenario.service} serves {', '.join(releases)} side by side ({calls:,} calls over the last "
        f"day{'; live through the openai SDK from now on' if live else ''}). Compare them: "
        f"{compare_link(dashboard_url, scenario)}",
        flush=True,
    )
    return True

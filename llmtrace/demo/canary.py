"""A canary release in demo traffic: releases served side by side that differ only where we say.

``llmtrace compare`` must name exactly the injected differences, in the right direction, and
no others. :data:`DEMO` serves three releases of one service at once (traffic split evenly):
``v2.0.0`` (baseline), ``v2.1.0`` (generation twice as slow, so latency but not time to first
token, and a ``quality`` score 0.08 lower) and ``v2.2.0`` (a cheaper model, gpt-4.1-nano, for
the same calls). Everything else — tokens, errors, truncation, finish reasons — is drawn from the
same distributions. An :class:`Arm`'s change may start part-way through (``from_share``), for
judging a canary that gets worse while traffic flows (:data:`WORSENING`).

Two ways in, as ``llmtrace up --demo`` uses them: the canary's past in bulk and its present live.
:func:`insert` writes the past (``hours`` before ``end``) as LLM spans and one ``quality`` score
span per scored call into ``otel_traces`` as the Collector would, so ``llm_calls`` and
``llm_scores`` fill through the real materialized views (cost at the arm model's price from
:mod:`llmtrace.pricing`); random numbers are hashes of (seed, row, purpose). Live traffic is
real: one process per release through the openai SDK (:mod:`llmtrace.demo.canary_live`).

    python -m llmtrace.demo.canary --url chdb:///path          # the past of DEMO, in bulk
    python -m llmtrace.demo.canary --live --release v2.1.0 --endpoint http://127.0.0.1:4318
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from llmtrace import pricing, semconv

__all__ = ["DEMO", "SCENARIOS", "WORSENING", "Arm", "Canary", "insert"]


@dataclass(frozen=True)
class Arm:
    """One release and what differs about it (factors of 1 and a shift of 0: nothing)."""

    release: str
    generation: float = 1.0  # multiplies the time after the first token
    model: str | None = None  # served by this model instead of the canary's
    quality_shift: float = 0.0  # added to the quality score
    from_share: float = 0.0  # the changes apply from this share of the window on


@dataclass(frozen=True)
class Canary:
    """A canary's releases over ``hours`` up to ``end`` (``None``: the last whole hour when it is
    loaded, so the demo is dated by its run, not by when this module was imported)."""

    arms: tuple[Arm, ...]
    end: datetime | None = None
    calls: int = 12_000
    hours: float = 24.0
    seed: int = 5
    service: str = "checkout-assistant"
    model: str = "gpt-4o-mini"
    score_share: float = 0.6  # share of calls an evaluator scored
    truncated: float = 0.03  # share of calls cut at max tokens (finish reason "length")

    @property
    def start(self) -> datetime:
        if self.end is None:
            raise ValueError("this canary has no end yet: date it first (canary.dated())")
        return self.end - timedelta(hours=self.hours)

    def dated(self, now: datetime | None = None) -> Canary:
        """This canary with its ``end`` fixed: kept if set, else the last whole hour before ``now``
        (default: the clock, read now). Tests pass ``now`` (or set ``end``) to pin the clock."""
        if self.end is not None:
            return self
        now = now or datetime.now(timezone.utc)
        return dataclasses.replace(self, end=now.replace(minute=0, second=0, microsecond=0))


DEMO = Canary(
    arms=(Arm("v2.0.0"), Arm("v2.1.0", generation=2.0, quality_shift=-0.08), Arm("v2.2.0", model="gpt-4.1-nano")),
)
# The sequential case: the candidate is like the baseline for the first half, then worse.
WORSENING = Canary(arms=(Arm("v3.0.0"), Arm("v3.1.0", generation=3.0, quality_shift=-0.1, from_share=0.5)),
                   service="checkout-assistant-worsening")  # fmt: skip
SCENARIOS = {"demo": DEMO, "worsening": WORSENING}

_COLUMNS = (
    "Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ResourceAttributes, "
    "ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage"
)
_CALL_KEYS = [
    semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.REQUEST_MODEL, semconv.RESPONSE_MODEL,
    semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS, semconv.COST_USD, semconv.REQUEST_STREAM,
    semconv.RESPONSE_TIME_TO_FIRST_CHUNK, semconv.RESPONSE_FINISH_REASONS, semconv.RELEASE, semconv.ERROR_TYPE,
]  # fmt: skip
_SCORE_KEYS = [
    semconv.SCORE_NAME, semconv.SCORE_VALUE, semconv.SCORE_DATA_TYPE, semconv.SCORE_TRACE_ID,
    semconv.SCORE_SPAN_ID, semconv.SCORE_SOURCE,
]  # fmt: skip
# Per row: u(k) uniform in [0, 1), z(k) standard normal; the arm by row number; 'changed' once
# the arm's changes apply.
_DRAW = """
    (x, k) -> (cityHash64({seed:UInt64}, x, k) % 1000000007) / 1000000007.0 AS u,
    (x, k) -> sqrt(-2 * log(greatest(u(x, k), 1e-12))) * cos(2 * pi() * u(x, k + 1000)) AS z,
    {start_s:Float64} + {span_s:Float64} * u(number, 1) AS t,
    (number % length({releases:Array(String)})) + 1 AS ai,
    (t - {start_s:Float64}) / {span_s:Float64} >= {from_share:Array(Float64)}[ai] AS changed,
    u(number, 2) < 0.02 AS failed,
    u(number, 3) < 0.5 AS stream,
    multiIf(failed, '', u(number, 4) < {truncated:Float64}, 'length', 'stop') AS finish,
    if(failed, 0, toUInt64(round(500 * exp(0.3 * z(number, 5))))) AS input_tokens,
    if(failed, 0, toUInt64(round(if(finish = 'length', 16, 150 * exp(0.35 * z(number, 6)))))) AS output_tokens,
    300 * exp(0.25 * z(number, 7)) AS ttft_ms,
    if(failed, 60 + 200 * u(number, 8),
       ttft_ms + output_tokens * 8 * exp(0.2 * z(number, 9)) * if(changed, {generation:Array(Float64)}[ai], 1))
        AS duration_ms,
    if(changed, {models:Array(String)}[ai], {model:String}) AS model,
    input_tokens * if(changed, {p_in:Array(Float64)}[ai], {p_in:Array(Float64)}[1])
        + output_tokens * if(changed, {p_out:Array(Float64)}[ai], {p_out:Array(Float64)}[1]) AS cost,
    concat(leftPad(lower(hex(cityHash64({seed:UInt64}, number, 'trace'))), 16, '0'),
           leftPad(lower(hex(cityHash64({seed:UInt64}, number, 'trace2'))), 16, '0')) AS trace_id,
    leftPad(lower(hex(cityHash64({seed:UInt64}, number, 'span'))), 16, '0') AS span_id,
    {releases:Array(String)}[ai] AS release"""

_CALLS_SQL = f"""
INSERT INTO otel_traces ({_COLUMNS})
WITH {_DRAW}
SELECT fromUnixTimestamp64Nano(toInt64(t * 1e9)), trace_id, span_id, '', concat('chat ', model), 'Client',
    {{service:String}}, map('service.name', {{service:String}}, 'service.version', release), 'llmtrace.demo.canary',
    mapFromArrays({{keys:Array(String)}}, [
        'chat', 'openai', model, if(failed, '', model),
        toString(input_tokens), toString(output_tokens), if(failed, '', toString(cost)),
        if(stream, 'true', ''), if(stream AND NOT failed, toString(ttft_ms / 1000), ''),
        if(failed, '', concat('["', finish, '"]')), release, if(failed, 'openai.InternalServerError', '')]),
    toUInt64(duration_ms * 1e6), if(failed, 'Error', 'Unset'), if(failed, 'provider error', '')
FROM numbers({{rows:UInt64}})
"""

_SCORES_SQL = f"""
INSERT INTO otel_traces ({_COLUMNS})
WITH {_DRAW},
    greatest(0, least(1, 0.78 + 0.12 * z(number, 10) + if(changed, {{quality_shift:Array(Float64)}}[ai], 0)))
        AS quality
SELECT fromUnixTimestamp64Nano(toInt64((t + duration_ms / 1000 + 1) * 1e9)), trace_id,
    leftPad(lower(hex(cityHash64({{seed:UInt64}}, number, 'score'))), 16, '0'), span_id, 'score quality', 'Internal',
    {{service:String}}, map('service.name', {{service:String}}), 'llmtrace.demo.canary',
    mapFromArrays({{keys:Array(String)}}, ['quality', toString(quality), 'numeric', trace_id, span_id, 'eval:judge']),
    0, 'Unset', ''
FROM numbers({{rows:UInt64}})
WHERE NOT failed AND u(number, 11) < {{score_share:Float64}}
"""


def insert(client: Any, canary: Canary) -> int:
    """Write the canary's calls and scores into ``otel_traces``; return the number of calls.

    A canary without an ``end`` ends at the last whole hour before this call."""
    canary = canary.dated()
    models = [a.model or canary.model for a in canary.arms]
    params = {
        "seed": canary.seed,
        "rows": canary.calls,
        "start_s": canary.start.timestamp(),
        "span_s": canary.hours * 3600.0,
        "releases": [a.release for a in canary.arms],
        "generation": [a.generation for a in canary.arms],
        "models": models,
        "p_in": [_price(m)[0] for m in models],
        "p_out": [_price(m)[1] for m in models],
        "quality_shift": [a.quality_shift for a in canary.arms],
        "from_share": [a.from_share for a in canary.arms],
        "service": canary.service,
        "model": canary.model,
        "score_share": canary.score_share,
        "truncated": canary.truncated,
    }
    client.command(_CALLS_SQL, parameters={**params, "keys": _CALL_KEYS})
    client.command(_SCORES_SQL, parameters={**params, "keys": _SCORE_KEYS})
    return canary.calls


def _price(model: str) -> tuple[float, float]:
    """USD per input and output token of an OpenAI ``model``, from the one cost engine."""
    segments = pricing.price_segments("openai", [model])
    if not segments:
        raise ValueError(f"no price for {model}: the canary's models must be priced by genai-prices")
    return float(segments[0][2]), float(segments[0][3])


def main(argv: Sequence[str] | None = None) -> int:
    """Load a canary's past (``--url``), or play one release live (``--live``)."""
    parser = argparse.ArgumentParser(prog="python -m llmtrace.demo.canary", description=main.__doc__)
    parser.add_argument("--url", help="store to load the past into, e.g. chdb:///tmp/canary")
    parser.add_argument("--live", action="store_true", help="play --release through the openai SDK")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo")
    parser.add_argument("--release", help="with --live: the arm to play")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4318", help="with --live: OTLP/HTTP endpoint")
    parser.add_argument("--requests", type=int, help="with --live: stop after this many (default: until stopped)")
    parser.add_argument("--rate", type=float, help="with --live: requests per second (default: back to back)")
    parser.add_argument("--simulated-clock", type=int, metavar="START_NS",
                        help="with --live: latencies on a simulated clock from START_NS, as the knobs say")  # fmt: skip
    args = parser.parse_args(argv)
    canary = SCENARIOS[args.scenario]
    if args.live:
        arms = {a.release: a for a in canary.arms}
        if args.release not in arms:
            parser.error(f"--release must be one of {', '.join(arms)}")
        import contextlib
        import signal

        from llmtrace.demo.canary_live import play

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `llmtrace up` stopping: flush, then end
        with contextlib.suppress(KeyboardInterrupt):
            play(args.endpoint, canary, arms[args.release], args.requests, args.rate, args.simulated_clock)
        return 0
    if not args.url:
        parser.error("give --url (load the past) or --live")
    return _load(args.url, canary)


def _load(url: str, canary: Canary) -> int:
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(url)
    try:
        apply_migrations(client_runner(client))
        calls = insert(client, canary)
    finally:
        client.close()
    base, *candidates = (a.release for a in canary.arms)
    print(f"loaded {calls} calls of {canary.service} ({', '.join(a.release for a in canary.arms)}) into {url}")
    for candidate in candidates:
        print(f"  llmtrace compare --url {url} --baseline release={base} --candidate release={candidate} --window 1d")
    return 0


if __name__ == "__main__":
    sys.exit(main())

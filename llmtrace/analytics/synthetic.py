"""Synthetic LLM traffic with known, injected events, for detection tests and benchmarks.

Drift and anomaly detection can only be checked against traffic whose truth is known. A
:class:`Scenario` is a set of series (one service calling one model, with its volume,
latency, token, price and error profile), daily seasonality (volume and latency peak at
``peak_hour`` UTC, quietest twelve hours later; these peaks are normal, not anomalies) and a
list of :class:`Event` s injected into given series for given windows.

:func:`insert` writes the scenario into ``otel_traces`` as the OpenTelemetry Collector would
(all attribute values strings), so the materialized views fill ``llm_calls`` and the
rollups exactly as for real traffic. Each batch is one ``INSERT ... SELECT FROM numbers()``:
a million calls take a few seconds. Random numbers are hashes of (seed, row, purpose), so a
scenario always produces the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from llmtrace import semconv

__all__ = ["EVENT_KINDS", "Event", "Scenario", "Series", "insert", "reference_scenario", "seed_store"]

# kind -> what ``factor`` means (``value`` is used by the kinds that set a label).
EVENT_KINDS: dict[str, str] = {
    "latency": "multiplies call duration (and time to first token)",
    "errors": "error rate during the event (value: error.type, default openai.RateLimitError)",
    "cost": "multiplies the cost of each call (a price change)",
    "input_tokens": "multiplies input tokens (and so cost)",
    "output_tokens": "multiplies output tokens (and so cost and duration)",
    "volume": "multiplies call volume (< 1 drops calls, > 1 adds calls)",
    "truncation": "share of successful calls cut at max_tokens (finish reason 'length')",
    "empty_output": "share of successful calls with no output tokens",
    "tool_calls": "share of successful calls ending in tool calls",
    "model_switch": "calls go to model ``value``; factor multiplies duration",
    "release": "calls carry release ``value`` (factor unused)",
    "prompt_version": "calls carry prompt version ``value`` (factor unused)",
    "retry_storm": "adds ``factor`` traces of 3-5 failed attempts followed by a success",
}


@dataclass(frozen=True)
class Series:
    """One service calling one model, and how its calls normally look."""

    service: str
    model: str
    provider: str = "openai"
    calls_per_hour: float = 60.0
    latency_ms: float = 900.0
    input_tokens: float = 400.0
    output_tokens: float = 120.0
    price_in: float = 1.0  # USD per million tokens
    price_out: float = 4.0
    error_rate: float = 0.02
    stream_share: float = 0.5
    tool_share: float = 0.1
    truncation_rate: float = 0.01
    release: str = "v1.0.0"
    prompt_name: str = "main"
    prompt_version: str = "1"
    environment: str = "production"


@dataclass(frozen=True)
class Event:
    """Something injected into series ``series`` (an index into :attr:`Scenario.series`)
    from ``start`` to ``end`` (``None``: until the end of the scenario)."""

    kind: str
    series: int
    start: datetime
    end: datetime | None = None
    factor: float = 1.0
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; choose one of {', '.join(EVENT_KINDS)}")


@dataclass(frozen=True)
class Scenario:
    """``days`` of traffic ending at ``end`` (UTC), with seasonality and events."""

    end: datetime
    days: float
    series: tuple[Series, ...]
    events: tuple[Event, ...] = ()
    seed: int = 1
    seasonality: float = 0.6  # volume: 1 + 0.6 cos(...) -> peak hour has 4x the calls of the trough
    latency_seasonality: float = 0.15  # duration is 15% above average at the peak
    peak_hour: float = 15.0

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def expected_calls(self) -> int:
        return round(sum(s.calls_per_hour for s in self.series) * 24 * self.days)


# --------------------------------------------------------------------------- SQL
_COLUMNS = (
    "Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ResourceAttributes, "
    "ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage"
)
_KEYS = [
    semconv.OPERATION_NAME,
    semconv.PROVIDER_NAME,
    semconv.REQUEST_MODEL,
    semconv.RESPONSE_MODEL,
    semconv.USAGE_INPUT_TOKENS,
    semconv.USAGE_OUTPUT_TOKENS,
    semconv.COST_USD,
    semconv.REQUEST_STREAM,
    semconv.RESPONSE_TIME_TO_FIRST_CHUNK,
    semconv.RESPONSE_FINISH_REASONS,
    semconv.ENVIRONMENT,
    semconv.RELEASE,
    semconv.PROMPT_NAME,
    semconv.PROMPT_VERSION,
    semconv.SESSION_ID,
    semconv.ERROR_TYPE,
]
_RESOURCE_KEYS = [semconv.SERVICE_NAME, semconv.DEPLOYMENT_ENVIRONMENT_NAME, semconv.SERVICE_VERSION]


def _active(kind: str) -> str:
    """Indexes of events of ``kind`` active for this row (series ``si`` at time ``t``)."""
    return f"arrayFilter(i -> {{ev_kind:Array(String)}}[i] = '{kind}', active)"


def _factor(kind: str) -> str:
    return f"exp(arraySum(arrayMap(i -> log({{ev_factor:Array(Float64)}}[i]), {_active(kind)})))"


def _rate(kind: str, base: str) -> str:
    return (
        f"if(empty({_active(kind)}), {base}, arrayMax(arrayMap(i -> {{ev_factor:Array(Float64)}}[i], {_active(kind)})))"
    )


def _value(kind: str, base: str) -> str:
    return f"if(empty({_active(kind)}), {base}, {{ev_value:Array(String)}}[{_active(kind)}[1]])"


# u(k): a uniform number in [0, 1) from (seed, row, k); z(k): a standard normal (Box-Muller).
_CALLS_SQL = f"""
INSERT INTO otel_traces ({_COLUMNS})
WITH
    (x, k) -> (cityHash64({{seed:UInt64}}, x, k) % 1000000007) / 1000000007.0 AS u,
    (x, k) -> sqrt(-2 * log(greatest(u(x, k), 1e-12))) * cos(2 * pi() * u(x, k + 1000)) AS z,
    {{start_s:Float64}} + {{span_s:Float64}} * u(number, 1) AS t,
    arrayFirstIndex(c -> u(number, 2) <= c, {{s_cum:Array(Float64)}}) AS si,
    cos(2 * pi() * ((t % 86400) / 3600 - {{peak_hour:Float64}}) / 24) AS season,
    arrayFilter(i -> {{ev_series:Array(UInt32)}}[i] = si AND t >= {{ev_start:Array(Float64)}}[i]
        AND t < {{ev_end:Array(Float64)}}[i], arrayEnumerate({{ev_kind:Array(String)}})) AS active,
    (1 + {{amp:Float64}} * season) / (1 + {{amp:Float64}}) * least({_factor("volume")}, 1) AS keep,
    u(number, 3) < {_rate("errors", "{s_error:Array(Float64)}[si]")} AS failed,
    {_value("model_switch", "{s_model:Array(String)}[si]")} AS model,
    u(number, 4) < {{s_stream:Array(Float64)}}[si] AS stream,
    u(number, 5) < {_rate("empty_output", "0")} AS empty,
    multiIf(failed, '', u(number, 6) < {_rate("truncation", "{s_trunc:Array(Float64)}[si]")}, 'length',
        u(number, 7) < {_rate("tool_calls", "{s_tool:Array(Float64)}[si]")}, 'tool_calls', 'stop') AS finish,
    if(failed, 0, toUInt64(round({{s_in:Array(Float64)}}[si] * exp(0.3 * z(number, 8))
        * {_factor("input_tokens")}))) AS input_tokens,
    if(failed OR empty, 0, toUInt64(round({{s_out:Array(Float64)}}[si] * exp(0.35 * z(number, 9))
        * {_factor("output_tokens")}))) AS output_tokens,
    if(failed, 50 + 250 * u(number, 10), {{s_latency:Array(Float64)}}[si]
        * (0.4 + 0.6 * output_tokens / {{s_out:Array(Float64)}}[si]) * exp(0.25 * z(number, 11))
        * (1 + {{lat_amp:Float64}} * season) * {_factor("latency")} * {_factor("model_switch")}) AS duration_ms,
    duration_ms * (0.15 + 0.2 * u(number, 12)) AS ttft_ms,
    if(failed, '', toString((input_tokens * {{s_price_in:Array(Float64)}}[si]
        + output_tokens * {{s_price_out:Array(Float64)}}[si]) / 1e6 * {_factor("cost")})) AS cost,
    {_value("release", "{s_release:Array(String)}[si]")} AS release,
    {_value("prompt_version", "{s_prompt_version:Array(String)}[si]")} AS prompt_version,
    if(failed, {_value("errors", "if(u(number, 13) < 0.5, 'openai.APITimeoutError', 'openai.InternalServerError')")},
        '') AS error_type,
    {{s_service:Array(String)}}[si] AS service,
    {{s_env:Array(String)}}[si] AS env
SELECT
    fromUnixTimestamp64Nano(toInt64(t * 1e9)),
    concat(leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, number, 'trace'))), 16, '0'),
           leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, number, 'trace2'))), 16, '0')),
    leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, number, 'span'))), 16, '0'),
    '', concat('chat ', model), 'Client', service,
    mapFromArrays({{resource_keys:Array(String)}}, [service, env, release]),
    'llmtrace.synthetic',
    mapFromArrays({{keys:Array(String)}}, [
        'chat', {{s_provider:Array(String)}}[si], model, if(failed, '', model),
        toString(input_tokens), toString(output_tokens), cost,
        if(stream, 'true', ''), if(stream AND NOT failed, toString(ttft_ms / 1000), ''),
        if(failed, '', concat('["', finish, '"]')), env, release,
        {{s_prompt:Array(String)}}[si], prompt_version,
        concat('sess-', toString(cityHash64({{seed:UInt64}}, number) % 5000)), error_type]),
    toUInt64(duration_ms * 1e6),
    if(failed, 'Error', 'Unset'),
    if(failed, 'provider error', '')
FROM numbers({{rows:UInt64}})
WHERE u(number, 14) < keep
"""

# One trace per storm: n - 1 rate-limited attempts 1.5 s apart, then a success.
_STORM_SQL = f"""
INSERT INTO otel_traces ({_COLUMNS})
WITH
    (x, k) -> (cityHash64({{seed:UInt64}}, {{batch:UInt32}}, x, k) % 1000000007) / 1000000007.0 AS u,
    {{start_s:Float64}} + {{span_s:Float64}} * u(tr, 1) AS t0,
    attempt = attempts - 1 AS ok,
    t0 + attempt * 1.5 AS t
SELECT
    fromUnixTimestamp64Nano(toInt64(t * 1e9)),
    concat(leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, tr, 'trace'))), 16, '0'),
           leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, tr, 'trace2'))), 16, '0')),
    leftPad(lower(hex(cityHash64({{seed:UInt64}}, {{batch:UInt32}}, tr, attempt, 'span'))), 16, '0'),
    '', concat('chat ', {{model:String}}), 'Client', {{service:String}},
    mapFromArrays({{resource_keys:Array(String)}}, [{{service:String}}, {{env:String}}, {{release:String}}]),
    'llmtrace.synthetic',
    mapFromArrays({{keys:Array(String)}}, [
        'chat', {{provider:String}}, {{model:String}}, if(ok, {{model:String}}, ''),
        if(ok, '300', '0'), if(ok, '80', '0'), if(ok, '0.0006', ''), '', '',
        if(ok, '["stop"]', ''), {{env:String}}, {{release:String}}, {{prompt:String}}, {{prompt_version:String}},
        concat('storm-', toString(tr)), if(ok, '', 'openai.RateLimitError')]),
    toUInt64(if(ok, 900, 120) * 1e6),
    if(ok, 'Unset', 'Error'),
    if(ok, '', 'rate limited')
FROM (SELECT number AS tr, toUInt32(4 + cityHash64({{seed:UInt64}}, number) % 3) AS attempts,
             arrayJoin(range(attempts)) AS attempt FROM numbers({{traces:UInt64}}))
"""


def _ts(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    out, running = [], 0.0
    for w in weights:
        running += w / total if total else 0.0
        out.append(running)
    out[-1] = 1.0
    return out


def _params(scenario: Scenario) -> dict[str, Any]:
    series, events = scenario.series, scenario.events
    end_s = _ts(scenario.end)
    return {
        "seed": scenario.seed,
        "keys": _KEYS,
        "resource_keys": _RESOURCE_KEYS,
        "amp": scenario.seasonality,
        "lat_amp": scenario.latency_seasonality,
        "peak_hour": scenario.peak_hour,
        "s_service": [s.service for s in series],
        "s_model": [s.model for s in series],
        "s_provider": [s.provider for s in series],
        "s_latency": [s.latency_ms for s in series],
        "s_in": [s.input_tokens for s in series],
        "s_out": [s.output_tokens for s in series],
        "s_price_in": [s.price_in for s in series],
        "s_price_out": [s.price_out for s in series],
        "s_error": [s.error_rate for s in series],
        "s_stream": [s.stream_share for s in series],
        "s_tool": [s.tool_share for s in series],
        "s_trunc": [s.truncation_rate for s in series],
        "s_release": [s.release for s in series],
        "s_prompt": [s.prompt_name for s in series],
        "s_prompt_version": [s.prompt_version for s in series],
        "s_env": [s.environment for s in series],
        "ev_kind": [e.kind for e in events],
        "ev_series": [e.series + 1 for e in events],
        "ev_start": [_ts(e.start) for e in events],
        "ev_end": [_ts(e.end) if e.end else end_s + 1 for e in events],
        "ev_factor": [max(e.factor, 1e-9) for e in events],
        "ev_value": [e.value for e in events],
    }


def _candidates(calls: float, scenario: Scenario) -> int:
    """Rows to draw so that, after seasonal thinning (mean keep 1 / (1 + amp)), ``calls`` remain."""
    return max(0, round(calls * (1 + scenario.seasonality)))


def insert(client: Any, scenario: Scenario) -> int:
    """Write ``scenario`` into ``otel_traces``; return the number of candidate rows drawn.

    Extra calls of volume events (factor > 1) and retry storms are separate batches.
    """
    params = _params(scenario)
    weights = [s.calls_per_hour for s in scenario.series]
    span_s = scenario.days * 86400.0
    rows = _candidates(sum(weights) * 24 * scenario.days, scenario)
    base = {**params, "s_cum": _cumulative(weights), "start_s": _ts(scenario.start), "span_s": span_s}
    client.command(_CALLS_SQL, parameters={**base, "batch": 0, "rows": rows})
    for number, event in enumerate(scenario.events, start=1):
        if event.kind == "volume" and event.factor > 1:
            rows += _insert_extra_volume(client, scenario, params, event, number)
        elif event.kind == "retry_storm":
            _insert_storm(client, scenario, params, event, number)
    return rows


def _window(scenario: Scenario, event: Event) -> tuple[float, float]:
    start = max(_ts(event.start), _ts(scenario.start))
    end = min(_ts(event.end) if event.end else _ts(scenario.end), _ts(scenario.end))
    return start, max(end - start, 0.0)


def _insert_extra_volume(client: Any, scenario: Scenario, params: dict[str, Any], event: Event, batch: int) -> int:
    start_s, span_s = _window(scenario, event)
    weights = [0.0] * len(scenario.series)
    weights[event.series] = 1.0
    calls = scenario.series[event.series].calls_per_hour * span_s / 3600 * (event.factor - 1)
    rows = _candidates(calls, scenario)
    extra = {"s_cum": _cumulative(weights), "start_s": start_s, "span_s": span_s, "batch": batch, "rows": rows}
    client.command(_CALLS_SQL, parameters={**params, **extra})
    return rows


def _insert_storm(client: Any, scenario: Scenario, params: dict[str, Any], event: Event, batch: int) -> None:
    start_s, span_s = _window(scenario, event)
    s = scenario.series[event.series]
    client.command(
        _STORM_SQL,
        parameters={
            "seed": scenario.seed,
            "batch": batch,
            "keys": params["keys"],
            "resource_keys": params["resource_keys"],
            "start_s": start_s,
            "span_s": span_s,
            "traces": round(event.factor),
            "service": s.service,
            "model": s.model,
            "provider": s.provider,
            "env": s.environment,
            "release": s.release,
            "prompt": s.prompt_name,
            "prompt_version": s.prompt_version,
        },
    )


# --------------------------------------------------------------------------- scenarios
_OPENAI, _ANTHROPIC = "openai", "anthropic"
REFERENCE_SERIES: tuple[Series, ...] = (
    # service, model, provider, calls/h, latency ms, input and output tokens, $/M in and out, ...
    Series("support-bot", "gpt-4o", _OPENAI, 120, 1400, 900, 220, 2.5, 10.0, tool_share=0.3),
    Series("support-bot", "gpt-4o-mini", _OPENAI, 60, 700, 400, 120, 0.15, 0.6),
    Series("search-api", "gpt-4o-mini", _OPENAI, 150, 600, 300, 60, 0.15, 0.6, stream_share=0.1, tool_share=0.0),
    Series("summarizer", "claude-3-5-haiku-latest", _ANTHROPIC, 80, 1100, 2000, 300, 0.8, 4.0,
           prompt_name="summarize", prompt_version="3", stream_share=0.8, tool_share=0.0),
    Series("agent", "claude-sonnet-4-5", _ANTHROPIC, 40, 2500, 3000, 500, 3.0, 15.0, tool_share=0.5),
    Series("chat-ui", "gpt-4o-mini", _OPENAI, 100, 800, 600, 150, 0.15, 0.6, stream_share=0.9),
)  # fmt: skip


def reference_scenario(end: datetime, days: int = 7, seed: int = 11, scale: float = 1.0) -> Scenario:
    """A week of six series with strong daily peaks (normal traffic) and one injected event of
    each kind the detectors must find, at fixed offsets from ``end``:

    * the first four days are clean (a drift baseline);
    * short anomalies in the last three days: an error burst (support-bot / gpt-4o, 40% for
      2 hours from end-60h), a cost jump (support-bot / gpt-4o-mini, x3 for 4 hours from
      end-50h), a latency spike (search-api, x4 for 3 hours from end-40h) and a retry storm
      (support-bot / gpt-4o, 12 traces from end-30h); 30% of search-api's outputs are cut
      at max_tokens for 2 hours from end-10h;
    * drift in the last day, lasting to the end: summarizer's output tokens grow 80% with
      prompt version 4 and release v1.1.0 (from end-20h), and agent moves from
      claude-sonnet-4-5 to gpt-4o (from end-18h);
    * chat-ui is never touched.

    ``scale`` multiplies every series' volume.
    """
    h = timedelta(hours=1)
    series = tuple(replace(s, calls_per_hour=s.calls_per_hour * scale) for s in REFERENCE_SERIES)
    events = (
        Event("errors", 0, end - 60 * h, end - 58 * h, factor=0.4, value="openai.RateLimitError"),
        Event("cost", 1, end - 50 * h, end - 46 * h, factor=3.0),
        Event("latency", 2, end - 40 * h, end - 37 * h, factor=4.0),
        Event("retry_storm", 0, end - 30 * h, end - 29 * h, factor=round(12 * scale)),
        Event("output_tokens", 3, end - 20 * h, None, factor=1.8),
        Event("prompt_version", 3, end - 20 * h, None, value="4"),
        Event("release", 3, end - 20 * h, None, value="v1.1.0"),
        Event("model_switch", 4, end - 18 * h, None, factor=0.8, value="gpt-4o"),
        Event("truncation", 2, end - 10 * h, end - 8 * h, factor=0.3),
    )
    return Scenario(end=end, days=days, series=series, events=events, seed=seed)


def seed_store(url: str, scenario: Scenario) -> Any:
    """Connect to ``url``, apply the schema and insert ``scenario``; return the open client.

    The raw-span TTL is set to cover the scenario, so old synthetic history is not dropped.
    """
    from llmtrace.store.client import connect
    from llmtrace.store.migrations import apply_migrations, client_runner

    client = connect(url)
    days_back = (datetime.now(timezone.utc) - scenario.start).days + 2
    apply_migrations(client_runner(client), ttl_days=max(30, days_back))
    insert(client, scenario)
    return client

"""The demo world: services, models, releases and scripted episodes, planned as calls.

Both ways of filling a store use this one description, so they tell the same story:
:func:`plan` gives the request-by-request script ``llmtrace demo`` plays through the real
SDKs, and :func:`history_sql` writes a large history of the same shape straight into
``otel_traces`` with one ``INSERT ... SELECT`` (benchmarks, tests). The episodes are what the
drift and anomaly views must find: a latency spike, an error burst, a cost jump after a
prompt version change and token drift after a model switch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
PEAK_HOUR_UTC = 15  # daily seasonality: busiest mid-afternoon, quietest at night
SEASONALITY = 0.6


@dataclass(frozen=True)
class Model:
    provider: str
    base_ms: float  # latency before the first token
    ms_per_token: float
    words: int  # typical reply length
    price_in: float | None = None  # USD per million tokens (for history_sql; the demo prices at the call)
    price_out: float | None = None


MODELS: dict[str, Model] = {
    "gpt-4o-mini": Model("openai", 350, 9, 70, 0.15, 0.6),
    "gpt-4o": Model("openai", 550, 18, 90, 2.5, 10.0),
    "o3-mini": Model("openai", 2200, 12, 60, 1.1, 4.4),
    "claude-sonnet-4-6": Model("anthropic", 700, 16, 170, 3.0, 15.0),
    "claude-haiku-4-5": Model("anthropic", 300, 7, 80, 1.0, 5.0),
    # Amazon Nova Pro on Bedrock, through a US cross-region inference profile (boto3's Converse API).
    "us.amazon.nova-pro-v1:0": Model("aws.bedrock", 450, 9, 85, 0.8, 3.2),
    # Gemini 2.5 Flash on the Gemini API (google-genai; gcp.gemini), text prices below 200k input tokens.
    "gemini-2.5-flash": Model("gcp.gemini", 380, 6, 75, 0.3, 2.5),
    # Gemini 2.5 Pro on Vertex AI (google-genai with vertexai=True; gcp.vertex_ai), prices below 200k input tokens.
    "gemini-2.5-pro": Model("gcp.vertex_ai", 900, 14, 160, 1.25, 10.0),
    # A fine-tune behind an OpenAI-compatible endpoint: no public price, so it stays unpriced.
    "acme-support-ft": Model("openai", 400, 10, 60),
}


# The exception each provider's SDK raises for a 429 and a 500 (``error.type``), for the bulk history.
ERROR_TYPES: dict[str, tuple[str, str]] = {
    "openai": ("openai.RateLimitError", "openai.InternalServerError"),
    "anthropic": ("anthropic.RateLimitError", "anthropic.InternalServerError"),
    "aws.bedrock": ("botocore.errorfactory.ThrottlingException", "botocore.errorfactory.InternalServerException"),
    "gcp.gemini": ("google.genai.errors.ClientError", "google.genai.errors.ServerError"),
    "gcp.vertex_ai": ("google.genai.errors.ClientError", "google.genai.errors.ServerError"),
}


@dataclass(frozen=True)
class Service:
    name: str
    share: float
    models: tuple[tuple[str, float], ...]  # (model, weight)
    prompt: str
    stream_share: float
    uses_tools: bool = False


SERVICES: tuple[Service, ...] = (
    Service("support-bot", 0.4, (("gpt-4o", 0.85), ("acme-support-ft", 0.15)), "support-reply", 0.5, True),
    Service(
        "search-api", 0.35, (("gpt-4o-mini", 0.7), ("o3-mini", 0.15), ("gemini-2.5-flash", 0.15)), "query-rewrite", 0.1
    ),
    Service(
        "summarizer",
        0.25,
        (("claude-haiku-4-5", 0.5), ("gpt-4o-mini", 0.25), ("us.amazon.nova-pro-v1:0", 0.15), ("gemini-2.5-pro", 0.1)),
        "summarize",
        0.8,
    ),
)
ENVIRONMENTS = (("production", 0.85), ("staging", 0.15))
RELEASES = ("v1.4.0", "v1.5.0")
BASE_ERROR_RATE = 0.02


@dataclass(frozen=True)
class Episode:
    """Something that happens to one service, ``hours_ago`` before the end of a 7-day window
    (scaled to other window lengths), for ``minutes`` (0 = from then on)."""

    kind: str
    service: str
    hours_ago: float
    minutes: float = 0
    factor: float = 1.0
    detail: str = ""


EPISODES: tuple[Episode, ...] = (
    Episode("model_switch", "support-bot", 80, detail="gpt-4o -> claude-sonnet-4-6"),
    Episode("release", "*", 60, detail="v1.4.0 -> v1.5.0"),
    Episode("error_burst", "support-bot", 54, 90, factor=0.5, detail="429 and 500 from the provider"),
    Episode("prompt_change", "summarizer", 40, factor=3.0, detail="summarize v3 -> v4 (longer prompt)"),
    Episode("latency_spike", "search-api", 30, 120, factor=5.0, detail="provider slowdown"),
)
SWITCH_FROM, SWITCH_TO = "gpt-4o", "claude-sonnet-4-6"
PROMPT_VERSIONS = ("3", "4")


def episode_window(episode: Episode, end_ns: int, days: float) -> tuple[int, int]:
    """Absolute [start, end) in ns of an episode in a window of ``days`` ending at ``end_ns``."""
    start = end_ns - int(episode.hours_ago * HOUR_NS * days / 7)
    stop = start + int(episode.minutes * 60e9) if episode.minutes else end_ns + 1
    return start, stop


def _episode(kind: str) -> Episode:
    return next(e for e in EPISODES if e.kind == kind)


@dataclass
class Call:
    """One LLM request as the demo sends it; ``status`` != 0 makes the fake provider fail it."""

    model: str
    stream: bool
    output_words: int
    duration_ms: float
    ttft_ms: float
    status: int = 0
    offer_tools: bool = False
    max_tokens: int | None = None
    gap_ms: float = 0.0  # simulated pause before this call (retry backoff, tool execution)
    prompt_tokens: int | None = None  # input tokens to send (the question padded with context); None: as is


@dataclass
class Request:
    """One user-facing request (one trace) of a service, at a simulated time."""

    start_ns: int
    service: str
    environment: str
    release: str
    prompt_name: str
    prompt_version: str
    user_id: str
    session_id: str
    calls: list[Call] = field(default_factory=list)
    topic: str = ""


TOPICS = (
    "my order arrived damaged, can I get a refund",
    "how do I reset my password",
    "compare the pro and team plans",
    "summarize the quarterly report for the board",
    "find hiking boots under 150 dollars",
    "why was my card declined",
    "translate the onboarding guide into plain language",
    "what is the status of order 48213",
)


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _seasonal_time(rng: random.Random, start_ns: int, span_ns: int) -> int:
    """A time in the window, denser around PEAK_HOUR_UTC (rejection sampling)."""
    while True:
        t = start_ns + int(rng.random() * span_ns)
        hour = (t / HOUR_NS) % 24
        weight = 1 + SEASONALITY * math.cos(2 * math.pi * (hour - PEAK_HOUR_UTC) / 24)
        if rng.random() * (1 + SEASONALITY) <= weight:
            return t


def _in(episode: Episode, t: int, end_ns: int, days: float) -> bool:
    start, stop = episode_window(episode, end_ns, days)
    return start <= t < stop


def _call(rng: random.Random, model: str, stream: bool, slow: float, words_factor: float = 1.0) -> Call:
    profile = MODELS[model]
    words = max(5, int(rng.lognormvariate(math.log(profile.words * words_factor), 0.35)))
    ttft = profile.base_ms * rng.lognormvariate(0, 0.3) * slow
    duration = ttft + words * 1.3 * profile.ms_per_token * rng.lognormvariate(0, 0.2) * slow
    return Call(model, stream, words, duration, ttft)


USERS = 48  # few enough that a user comes back: sessions of several requests, users of several sessions
SESSION_NS = 6 * HOUR_NS  # a user's requests within one 6-hour block (UTC) form one session


def _session(user: int, t: int) -> str:
    return f"sess-{user:03d}-{t // SESSION_NS}"


INCIDENT_TRAFFIC = 0.02  # share of the demo's calls added inside each incident window (users retrying)


def _request(rng: random.Random, t: int, end_ns: int, days: float, service: Service | None = None) -> Request:
    service = service or rng.choices(SERVICES, weights=[s.share for s in SERVICES])[0]
    environment = _pick(rng, ENVIRONMENTS)
    release_at = episode_window(_episode("release"), end_ns, days)[0] - (DAY_NS if environment == "staging" else 0)
    prompt_v4 = service.name == "summarizer" and _in(_episode("prompt_change"), t, end_ns, days)
    user = 1 + rng.randrange(1, 240) % USERS
    rng.randrange(1, 10**6)  # drawn for the session id before sessions spanned requests: a seed keeps its story
    request = Request(
        start_ns=t,
        service=service.name,
        environment=environment,
        release=RELEASES[t >= release_at],
        prompt_name=service.prompt,
        prompt_version=PROMPT_VERSIONS[prompt_v4] if service.name == "summarizer" else "2",
        user_id=f"user-{user:03d}",
        session_id=_session(user, t),
        topic=rng.choice(TOPICS),
    )
    model = _pick(rng, service.models)
    if model == SWITCH_FROM and _in(_episode("model_switch"), t, end_ns, days):
        model = SWITCH_TO
    slow = _episode("latency_spike").factor if _spiking(service.name, t, end_ns, days) else 1.0
    first = _call(rng, model, rng.random() < service.stream_share, slow)
    request.calls.append(first)
    _maybe_fail(rng, request, first, t, end_ns, days)
    if service.uses_tools and rng.random() < 0.5:
        first.offer_tools, first.stream = True, False  # the tool call is read whole before the tool runs
        first.duration_ms = first.ttft_ms + 20 * MODELS[model].ms_per_token  # a short tool-call reply
        follow = _call(rng, model, first.stream, slow)
        follow.gap_ms = rng.uniform(40, 400)  # the tool runs between the two calls
        request.calls.append(follow)
    elif rng.random() < 0.03:
        first.max_tokens = 16  # truncated reply (finish reason "length")
        first.output_words = 40
    return request


def _spiking(service: str, t: int, end_ns: int, days: float) -> bool:
    episode = _episode("latency_spike")
    return service == episode.service and _in(episode, t, end_ns, days)


def _maybe_fail(rng: random.Random, request: Request, call: Call, t: int, end_ns: int, days: float) -> None:
    """Fail the call now and then (more during the error burst); a 429 is retried after a backoff."""
    burst = _episode("error_burst")
    rate = burst.factor if request.service == burst.service and _in(burst, t, end_ns, days) else BASE_ERROR_RATE
    if rng.random() >= rate:
        return
    status = 429 if rng.random() < 0.7 else 500
    failed = Call(call.model, call.stream, 0, rng.uniform(80, 400), 0.0, status=status)
    if status == 500:
        request.calls[-1] = failed
        return
    call.gap_ms = rng.choice((500, 1000, 2000))  # client backoff before the retry
    request.calls.insert(len(request.calls) - 1, failed)


def plan(calls: int, days: float, end_ns: int, seed: int = 7) -> list[Request]:
    """Requests (traces) totalling about ``calls`` LLM calls over ``days`` ending at ``end_ns``, oldest first.

    Times come from one random stream and each request's content from its own, so a seed gives
    the same requests whenever it runs; only which of them fall into an episode depends on ``end_ns``.
    """
    clock = random.Random(seed)
    span_ns = int(days * DAY_NS)
    requests: list[Request] = []
    total = 0
    while total < calls * (1 - 2 * INCIDENT_TRAFFIC):
        t = _seasonal_time(clock, end_ns - span_ns, span_ns)
        request = _request(random.Random(f"{seed}:{len(requests)}"), t, end_ns, days)
        requests.append(request)
        total += len(request.calls)
    requests.extend(_incident_traffic(clock, calls, days, end_ns, seed, len(requests)))
    requests.sort(key=lambda r: r.start_ns)
    return requests


def _incident_traffic(
    clock: random.Random, calls: int, days: float, end_ns: int, seed: int, first_index: int
) -> list[Request]:
    """Extra requests inside the error burst and the latency spike, so a short incident has
    enough calls to stand out from one hour's noise even in a small demo."""
    extra: list[Request] = []
    for kind in ("error_burst", "latency_spike"):
        episode = _episode(kind)
        service = next(s for s in SERVICES if s.name == episode.service)
        start, stop = episode_window(episode, end_ns, days)
        for _ in range(max(1, int(calls * INCIDENT_TRAFFIC))):
            t = start + int(clock.random() * (stop - start))
            rng = random.Random(f"{seed}:{first_index + len(extra)}")
            extra.append(_request(rng, t, end_ns, days, service))
    return extra


# --------------------------------------------------------------------- bulk history in SQL
HISTORY_SCOPE = "llmtrace.demo.history"  # instrumentation scope of the bulk history's spans


def history_params(rows: int, days: float, end_ns: int, seed: int = 7, offset: int = 0) -> dict[str, Any]:
    """Bind values for :data:`HISTORY_SQL` (episode times, model table, services).

    ``offset`` (even: two spans per trace) skips that many rows of the same history, so a large
    one can be inserted in chunks that together equal one INSERT of all rows."""
    if offset % 2:
        raise ValueError(f"history offset must be even (two spans per trace), got {offset}")
    models = list(MODELS)
    spike = episode_window(_episode("latency_spike"), end_ns, days)
    burst = episode_window(_episode("error_burst"), end_ns, days)
    return {
        "rows": rows,
        "offset": offset,
        "scope": HISTORY_SCOPE,
        "seed": seed,
        "end_s": end_ns / 1e9,
        "span_s": days * 86400.0,
        "services": [s.name for s in SERVICES],
        "service_cum": list(_cumulative([s.share for s in SERVICES])),
        "service_models": [[models.index(m) + 1 for m, _ in s.models] for s in SERVICES],
        "service_model_cum": [list(_cumulative([w for _, w in s.models])) for s in SERVICES],
        "service_stream": [s.stream_share for s in SERVICES],
        "service_prompt": [s.prompt for s in SERVICES],
        "models": models,
        "providers": [m.provider for m in MODELS.values()],
        "base_ms": [m.base_ms for m in MODELS.values()],
        "ms_per_token": [m.ms_per_token for m in MODELS.values()],
        "words": [float(m.words) for m in MODELS.values()],
        "price_in": [m.price_in if m.price_in is not None else -1.0 for m in MODELS.values()],
        "price_out": [m.price_out if m.price_out is not None else -1.0 for m in MODELS.values()],
        "error_429": [ERROR_TYPES[m.provider][0] for m in MODELS.values()],
        "error_500": [ERROR_TYPES[m.provider][1] for m in MODELS.values()],
        "switch_s": episode_window(_episode("model_switch"), end_ns, days)[0] / 1e9,
        "switch_from": models.index(SWITCH_FROM) + 1,
        "switch_to": models.index(SWITCH_TO) + 1,
        "release_s": episode_window(_episode("release"), end_ns, days)[0] / 1e9,
        "prompt_s": episode_window(_episode("prompt_change"), end_ns, days)[0] / 1e9,
        "spike": [spike[0] / 1e9, spike[1] / 1e9],
        "burst": [burst[0] / 1e9, burst[1] / 1e9],
        "base_error": BASE_ERROR_RATE,
        "burst_error": _episode("error_burst").factor,
        "spike_factor": _episode("latency_spike").factor,
        "prompt_factor": _episode("prompt_change").factor,
        "peak_hour": PEAK_HOUR_UTC,
        "seasonality": SEASONALITY,
        "users": USERS,
        "session_s": SESSION_NS // 10**9,
    }


def _cumulative(weights: list[float]) -> list[float]:
    total, out = sum(weights), []
    running = 0.0
    for w in weights:
        running += w / total
        out.append(running)
    out[-1] = 1.0
    return out


# Two LLM spans per trace (the second a child of the first), times with daily seasonality.
# u(k) is a uniform number from the hash of (seed, trace or row, k).
HISTORY_SQL = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage)
WITH
    (x, k) -> (cityHash64({seed:UInt64}, x, k) % 1000000) / 1000000.0 AS u,
    intDiv(number, 2) AS tr,
    {end_s:Float64} - {span_s:Float64} * u(tr, 1) AS flat,
    floor(flat / 86400) * 86400 AS day_start,
    (flat - day_start) / 86400 AS f,
    f - {seasonality:Float64} / (2 * pi())
        * (sin(2 * pi() * (f - {peak_hour:Float64} / 24)) + sin(2 * pi() * {peak_hour:Float64} / 24)) AS warped,
    day_start + warped * 86400 AS seasonal,
    -- the warp keeps each UTC day on itself; the window's partial first and last days wrap around (the
    -- span is whole days), else the minutes before "now" that the warp empties stay empty
    if(seasonal >= {end_s:Float64}, seasonal - {span_s:Float64},
       if(seasonal < {end_s:Float64} - {span_s:Float64}, seasonal + {span_s:Float64}, seasonal)) AS t0,
    arrayFirstIndex(c -> u(tr, 3) <= c, {service_cum:Array(Float64)}) AS si,
    {services:Array(String)}[si] AS service,
    arrayFirstIndex(c -> u(tr, 4) <= c, {service_model_cum:Array(Array(Float64))}[si]) AS mj,
    {service_models:Array(Array(UInt8))}[si][mj] AS m0,
    if(m0 = {switch_from:UInt8} AND t0 >= {switch_s:Float64}, {switch_to:UInt8}, m0) AS mi,
    {models:Array(String)}[mi] AS model,
    if(u(tr, 5) < 0.85, 'production', 'staging') AS env,
    if(t0 >= {release_s:Float64} - if(env = 'staging', 86400, 0), 'v1.5.0', 'v1.4.0') AS release,
    service = 'summarizer' AND t0 >= {prompt_s:Float64} AS prompt_v4,
    if(service = 'summarizer', if(prompt_v4, '4', '3'), '2') AS prompt_version,
    service = 'search-api' AND t0 >= {spike:Array(Float64)}[1] AND t0 < {spike:Array(Float64)}[2] AS spiking,
    service = 'support-bot' AND t0 >= {burst:Array(Float64)}[1] AND t0 < {burst:Array(Float64)}[2] AS bursting,
    u(number, 6) < if(bursting, {burst_error:Float64}, {base_error:Float64}) AS failed,
    u(tr, 7) < {service_stream:Array(Float64)}[si] AS stream,
    exp(sqrt(-2 * log(greatest(u(number, 8), 1e-9))) * cos(2 * pi() * u(number, 9)) * 0.35) AS jitter,
    if(failed, 0, toUInt64({words:Array(Float64)}[mi] * jitter * 1.3)) AS output_tokens,
    if(failed, 0, toUInt64((120 + u(number, 10) * 600) * if(prompt_v4, {prompt_factor:Float64}, 1)))
        AS input_tokens,
    {base_ms:Array(Float64)}[mi] * (0.7 + 0.6 * u(number, 11)) * if(spiking, {spike_factor:Float64}, 1) AS ttft_ms,
    ttft_ms + output_tokens * {ms_per_token:Array(Float64)}[mi] * if(spiking, {spike_factor:Float64}, 1)
        AS duration_ms,
    {price_in:Array(Float64)}[mi] AS pin,
    if(pin < 0 OR failed, '', toString((input_tokens * pin + output_tokens * {price_out:Array(Float64)}[mi]) / 1e6))
        AS cost,
    lower(hex(cityHash64({seed:UInt64}, tr, 'trace'))) AS trace_hi,
    number % 2 = 1 AS is_child,
    t0 + if(is_child, 0.2 + u(tr, 12) * 2, 0) AS start_s
SELECT
    fromUnixTimestamp64Nano(toInt64(start_s * 1e9)),
    concat(trace_hi, lower(hex(cityHash64({seed:UInt64}, tr, 'trace2')))),
    lower(hex(cityHash64({seed:UInt64}, number, 'span'))),
    if(is_child, lower(hex(cityHash64({seed:UInt64}, number - 1, 'span'))), ''),
    concat('chat ', model), 'Client', service,
    map('service.name', service, 'deployment.environment.name', env, 'service.version', release),
    {scope:String},
    mapFromArrays(
        ['gen_ai.operation.name', 'gen_ai.provider.name', 'gen_ai.request.model', 'gen_ai.response.model',
         'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'llmtrace.cost.usd',
         'gen_ai.request.stream', 'gen_ai.response.time_to_first_chunk', 'gen_ai.response.finish_reasons',
         'llmtrace.environment', 'llmtrace.release', 'gen_ai.prompt.name', 'gen_ai.prompt.version',
         'user.id', 'session.id', 'error.type', 'gen_ai.input.messages', 'gen_ai.output.messages',
         'llmtrace.prompt.system_hash', 'llmtrace.prompt.template_hash'],
        ['chat', {providers:Array(String)}[mi], model, if(failed, '', model),
         toString(input_tokens), toString(output_tokens), cost,
         if(stream, 'true', ''), if(stream AND NOT failed, toString(ttft_ms / 1000), ''),
         if(failed, '', '["stop"]'), env, release, {service_prompt:Array(String)}[si], prompt_version,
         concat('user-', toString(tr % {users:UInt32})),
         concat('sess-', toString(tr % {users:UInt32}), '-', toString(intDiv(toUInt64(t0), {session_s:UInt32}))),
         if(failed, if(u(number, 13) < 0.7, {error_429:Array(String)}[mi], {error_500:Array(String)}[mi]), ''),
         concat('[{"role":"user","parts":[{"type":"text","content":"request ', toString(tr), '"}]}]'),
         if(failed, '', concat('[{"role":"assistant","parts":[{"type":"text","content":"answer ',
             toString(number), '"}],"finish_reason":"stop"}]')),
         lower(hex(cityHash64({service_prompt:Array(String)}[si], prompt_version))),
         lower(hex(cityHash64({service_prompt:Array(String)}[si], 'template')))]),
    toUInt64(duration_ms * 1e6),
    if(failed, 'Error', 'Unset'),
    if(failed, 'provider error', '')
FROM numbers({offset:UInt64}, {rows:UInt64})
"""


def history_sql(rows: int, days: float, end_ns: int, seed: int = 7, offset: int = 0) -> tuple[str, dict[str, Any]]:
    """The statement and bind values that insert ``rows`` demo-like spans into ``otel_traces``
    (from row ``offset`` of the history on: see :func:`history_params`)."""
    return HISTORY_SQL, history_params(rows, days, end_ns, seed, offset)

"""``llmtrace demo``: a week of realistic traffic through the real SDKs, into any OTLP endpoint.

The openai, anthropic, google-genai (Gemini) and boto3 (Bedrock) SDKs, instrumented by
``llmtrace.instrument()``, call an in-process fake LLM service (:class:`~llmtrace.demo.fake_llm.FakeLLM`)
with no artificial delay, so the demo finishes in seconds. History is made by re-timing spans on their way out: a span
processor notes which planned call each span belongs to (the plan rides in a context
variable) and an exporter wrapper moves the span to its planned time, with its planned
duration and time to first token, and gives it the planned service, environment and
release. Everything else on the span is what the SDK and llmtrace really produced.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from llmtrace.demo import scenarios
from llmtrace.demo.scenarios import Call, Request
from llmtrace.store.settings import mask_url

__all__ = ["add_arguments", "demo_requests", "load_for_up", "run", "run_demo", "sdk_pipeline"]

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
SCOPE = "llmtrace.demo"  # instrumentation scope of the demo's request spans: how a store shows it holds the demo
SYSTEM_PROMPTS = {
    ("support-reply", "2"): "You are a friendly support agent for an online shop. Be brief and concrete.",
    ("query-rewrite", "2"): "Rewrite the user's search into keywords. Return only the keywords.",
    ("summarize", "3"): "Summarize the text in three bullet points.",
    ("summarize", "4"): (
        "You are an expert analyst. Summarize the text for a busy executive. Start with the single most "
        "important conclusion, then list the supporting facts, the risks, the open questions, and the "
        "decisions needed, each as short bullet points. Quote figures exactly. Avoid jargon. "
    )
    * 6,
}
DOCUMENT = "Revenue grew 12 percent while support tickets fell after the new help center launched. " * 12
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by id",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}
ANTHROPIC_TOOL = {
    "name": "lookup_order",
    "description": "Find an order by id",
    "input_schema": OPENAI_TOOL["function"]["parameters"],  # type: ignore[index]
}


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"OTLP/HTTP endpoint (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--days", type=float, default=7, help="days of history to create (default 7)")
    parser.add_argument("--calls", type=int, default=6000, help="LLM calls to make (default 6000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same story")
    parser.add_argument("--dashboard-url", help="where the dashboard runs (printed at the end)")
    parser.add_argument("--live", action="store_true", help="send requests as they happen, until stopped")
    parser.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="--live requests per second, the day's mean: busier mid-afternoon UTC as the history (default 1)",
    )


# ------------------------------------------------------------------ re-timing spans
@dataclass
class _Timeline:
    """Where the current request's spans go on the simulated clock."""

    request: Request
    cursor_ns: int
    call: Call | None = None
    root_span_id: int | None = None


@dataclass(frozen=True)
class _Placement:
    start_ns: int
    end_ns: int
    request: Request
    ttft_s: float | None = None


_timeline: ContextVar[_Timeline | None] = ContextVar("llmtrace_demo_timeline", default=None)


@dataclass
class _Placements:
    """span id -> simulated placement, written by the processor, read once by the exporter."""

    by_span: dict[int, _Placement] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, span_id: int, placement: _Placement) -> None:
        with self.lock:
            self.by_span[span_id] = placement

    def pop(self, span_id: int) -> _Placement | None:
        with self.lock:
            return self.by_span.pop(span_id, None)


def _processor(placements: _Placements) -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class Retime(SpanProcessor):  # type: ignore[misc]
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            timeline = _timeline.get()
            if timeline is None:
                return
            if timeline.call is None:
                if timeline.root_span_id is not None:  # a span after the calls (a score): at the request's end
                    at = timeline.cursor_ns
                    placements.put(span.context.span_id, _Placement(at, at + 100_000, timeline.request))
                return
            call = timeline.call
            start = timeline.cursor_ns + int(call.gap_ms * 1e6)
            end = start + int(call.duration_ms * 1e6)
            timeline.cursor_ns = end
            ttft = call.ttft_ms / 1000 if call.stream and not call.status else None
            placements.put(span.context.span_id, _Placement(start, end, timeline.request, ttft))

        def on_end(self, span: Any) -> None:
            timeline = _timeline.get()
            if timeline is not None and span.context.span_id == timeline.root_span_id:
                end = timeline.cursor_ns + 2_000_000  # the app's own work after the last call
                placements.put(span.context.span_id, _Placement(timeline.request.start_ns, end, timeline.request))

    return Retime()


def _exporter(inner: Any, placements: _Placements) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter

    class RetimingExporter(SpanExporter):  # type: ignore[misc]
        def export(self, spans: Sequence[Any]) -> Any:
            return inner.export([_moved(span, placements.pop(span.context.span_id)) for span in spans])

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return RetimingExporter()


def _moved(span: Any, placement: _Placement | None) -> Any:
    """A copy of ``span`` at its planned time, service, environment and release."""
    if placement is None:
        return span
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan

    from llmtrace import semconv as sc

    request = placement.request
    shift = placement.start_ns - span.start_time
    attributes = dict(span.attributes or {})
    attributes[sc.ENVIRONMENT] = request.environment
    attributes[sc.RELEASE] = request.release
    if placement.ttft_s is not None and sc.RESPONSE_TIME_TO_FIRST_CHUNK in attributes:
        attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = placement.ttft_s
    events = [
        Event(e.name, e.attributes, min(max(e.timestamp + shift, placement.start_ns), placement.end_ns))
        for e in span.events
    ]
    resource = Resource.create(
        {
            sc.SERVICE_NAME: request.service,
            sc.DEPLOYMENT_ENVIRONMENT_NAME: request.environment,
            sc.SERVICE_VERSION: request.release,
        }
    )
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=resource, attributes=attributes,
        events=events, links=span.links, kind=span.kind, status=span.status, start_time=placement.start_ns,
        end_time=placement.end_ns, instrumentation_scope=span.instrumentation_scope,
    )  # fmt: skip


# ------------------------------------------------------------------ playing requests
CONTEXT_WORDS = ("order", "refund", "invoice", "delivery", "account", "customer", "ticket", "plan", "report",
                 "quarter", "revenue", "policy", "warehouse", "payment", "address", "status")  # fmt: skip


def _padded(request: Request, index: int, system: str, tokens: int) -> str:
    """The request's question with context (retrieved notes) so that the call's prompt is about
    ``tokens`` input tokens as the fake LLM counts them (4 characters a token, with the system
    prompt; a few tokens of per-message overhead on top). The words are drawn per call, so no two
    long prompts share a prefix the fake's prompt cache would discount."""
    from llmtrace.demo.fake_llm_common import count_tokens

    chars = 4 * (tokens - count_tokens(system) - count_tokens(request.topic) - 8)
    if chars <= 0:
        return request.topic
    rng = random.Random(f"context:{request.start_ns}:{index}")
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(CONTEXT_WORDS))
    return f"{request.topic}\n\nContext: {' '.join(words)}"[: len(request.topic) + chars]


# Which _Player method sends a model's calls, by the model's provider (scenarios.MODELS); others speak OpenAI.
SENDERS = {"anthropic": "_anthropic", "aws.bedrock": "_bedrock", "gcp.gemini": "_gemini", "gcp.vertex_ai": "_gemini"}


class _Player:
    """Plays planned requests through the real SDKs against the fake service."""

    def __init__(self, fake: Any, tracer: Any) -> None:
        import anthropic
        import boto3
        import openai
        from botocore.config import Config
        from botocore.exceptions import ClientError
        from google import genai

        self.openai = openai.OpenAI(base_url=fake.openai_base_url, api_key="demo", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="demo", max_retries=0)
        self.bedrock = boto3.client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=fake.url, aws_access_key_id="demo",
            aws_secret_access_key="demo", config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        self.google = {  # the Gemini API and Vertex AI (express mode: an API key, no project)
            "gcp.gemini": genai.Client(api_key="demo", http_options={"base_url": fake.url}),
            "gcp.vertex_ai": genai.Client(vertexai=True, api_key="demo", http_options={"base_url": fake.url}),
        }
        self.bedrock_headers: dict[str, str] = {}
        self.bedrock.meta.events.register("before-sign.bedrock-runtime.*", self._add_bedrock_headers)
        self.errors = (openai.APIError, anthropic.APIError, ClientError, genai.errors.APIError)
        self.tracer = tracer

    def play(self, request: Request) -> None:
        from opentelemetry.trace import SpanKind

        import llmtrace

        timeline = _Timeline(request, request.start_ns + 3_000_000)
        token = _timeline.set(timeline)
        try:
            with self.tracer.start_as_current_span(f"{request.service} request", kind=SpanKind.SERVER) as root:
                timeline.root_span_id = root.get_span_context().span_id
                with (
                    llmtrace.prompt(request.prompt_name, request.prompt_version, variables={"question": request.topic}),
                    llmtrace.attributes(user_id=request.user_id, session_id=request.session_id),
                ):
                    self._conversation(request, timeline)
                _score(request)
        finally:
            _timeline.reset(token)

    def _conversation(self, request: Request, timeline: _Timeline) -> None:
        system = SYSTEM_PROMPTS[(request.prompt_name, request.prompt_version)]
        question = request.topic + (f"\n\n{DOCUMENT}" if request.service == "summarizer" else "")
        tool_result: str | None = None
        for i, call in enumerate(request.calls):
            timeline.call = call
            asked = question if call.prompt_tokens is None else _padded(request, i, system, call.prompt_tokens)
            try:
                send = getattr(self, SENDERS.get(scenarios.MODELS[call.model].provider, "_openai"))
                tool_result = send(call, system, asked, tool_result)
            except self.errors:
                pass  # recorded on the span by llmtrace; the plan retries or gives up
        timeline.call = None

    @staticmethod
    def _headers(call: Call) -> dict[str, str]:
        headers = {"x-fake-output-words": str(call.output_words), "x-fake-latency-ms": "0"}
        if call.status:
            headers["x-fake-status"] = str(call.status)
        return headers

    def _openai(self, call: Call, system: str, question: str, tool_result: str | None) -> str | None:
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        if tool_result is not None:
            function = {"name": "lookup_order", "arguments": tool_result}
            messages += [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_demo", "type": "function", "function": function}],
                },
                {"role": "tool", "tool_call_id": "call_demo", "content": json.dumps({"status": "shipped"})},
            ]
        kwargs: dict[str, Any] = {"model": call.model, "messages": messages, "extra_headers": self._headers(call)}
        if call.offer_tools:
            kwargs["tools"] = [OPENAI_TOOL]
        if call.max_tokens:
            kwargs["max_tokens"] = call.max_tokens
        if call.stream and not call.offer_tools:
            with self.openai.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **kwargs
            ) as stream:
                for _ in stream:
                    pass
            return None
        response = self.openai.chat.completions.create(**kwargs)
        calls = response.choices[0].message.tool_calls or []
        return calls[0].function.arguments if calls else None

    def _anthropic(self, call: Call, system: str, question: str, tool_result: str | None) -> str | None:
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        if tool_result is not None:
            messages += [
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_demo", "name": "lookup_order", "input": json.loads(tool_result)}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_demo", "content": '{"status": "shipped"}'}
                ]},
            ]  # fmt: skip
        kwargs: dict[str, Any] = {
            "model": call.model,
            "system": system,
            "messages": messages,
            "max_tokens": call.max_tokens or 1024,
            "extra_headers": self._headers(call),
        }
        if call.offer_tools:
            kwargs["tools"] = [ANTHROPIC_TOOL]
        if call.stream and not call.offer_tools:
            with self.anthropic.messages.create(stream=True, **kwargs) as stream:
                for _ in stream:
                    pass
            return None
        response = self.anthropic.messages.create(**kwargs)
        uses = [block for block in response.content if block.type == "tool_use"]
        return json.dumps(uses[0].input) if uses else None

    def _add_bedrock_headers(self, request: Any, **_: Any) -> None:
        for name, value in self.bedrock_headers.items():  # boto3 has no per-call headers: set before each call
            request.headers[name] = value

    def _bedrock(self, call: Call, system: str, question: str, tool_result: str | None) -> None:
        """Bedrock's Converse API (no tools in the demo's Bedrock traffic)."""
        self.bedrock_headers = self._headers(call)
        kwargs: dict[str, Any] = {
            "modelId": call.model,
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": question}]}],
            "inferenceConfig": {"maxTokens": call.max_tokens or 1024},
        }
        if call.stream:
            for _ in self.bedrock.converse_stream(**kwargs)["stream"]:
                pass
        else:
            self.bedrock.converse(**kwargs)

    def _gemini(self, call: Call, system: str, question: str, tool_result: str | None) -> None:
        """The Gemini API or Vertex AI through google-genai (no tools in the demo's Gemini traffic)."""
        from google.genai import types

        config = types.GenerateContentConfig(
            system_instruction=system,
            max_output_tokens=call.max_tokens or 1024,
            http_options=types.HttpOptions(headers=self._headers(call)),
        )
        models = self.google[scenarios.MODELS[call.model].provider].models
        if call.stream:
            for _ in models.generate_content_stream(model=call.model, contents=question, config=config):
                pass
        else:
            models.generate_content(model=call.model, contents=question, config=config)


# The "helpful" score an evaluator gives an answered request, by prompt version: the longer summarize
# v4 prompt (the demo's cost jump) answers better. Releases score alike.
HELPFUL = {("summarize", "3"): 0.7, ("summarize", "4"): 0.86}
HELPFUL_DEFAULT = 0.8
THUMBS_SHARE = 0.25  # share of requests whose user clicked thumbs up or down


def _score(request: Request) -> None:
    """Score the request's trace as an evaluator and, now and then, as its user would (deterministic)."""
    import random

    import llmtrace

    rng = random.Random(f"score:{request.start_ns}")
    answered = not request.calls[-1].status
    mean = HELPFUL.get((request.prompt_name, request.prompt_version), HELPFUL_DEFAULT)
    helpful = min(1.0, max(0.0, rng.gauss(mean, 0.08))) if answered else 0.0
    llmtrace.score("helpful", round(helpful, 2))
    if rng.random() < THUMBS_SHARE:
        llmtrace.score("thumbs_up", rng.random() < helpful, comment=None if answered else "no answer")


# ------------------------------------------------------------------ progress and main
class _Progress:
    """A plain-terminal progress bar (a line per 10% when not on a terminal)."""

    def __init__(self, total: int, out: Any = sys.stderr) -> None:
        self.total, self.out, self.done, self.started = max(total, 1), out, 0, time.monotonic()
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._shown = -1

    def advance(self, n: int) -> None:
        self.done += n
        percent = min(100, self.done * 100 // self.total)
        if self.tty:
            bar = "#" * (percent // 4) + "." * (25 - percent // 4)
            self.out.write(f"\r  [{bar}] {percent:3d}%  {self.done}/{self.total} calls")
            self.out.flush()
        elif percent // 10 != self._shown // 10:
            print(f"  {percent:3d}%  {self.done}/{self.total} calls", file=self.out, flush=True)
        self._shown = percent

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
        elapsed = time.monotonic() - self.started
        print(f"  {self.done} calls in {elapsed:.1f} s", file=self.out, flush=True)


@contextmanager
def sdk_pipeline(endpoint: str) -> Iterator[_Player]:
    """The real SDKs, instrumented by llmtrace, against an in-process fake LLM service, with spans
    re-timed on their way to ``endpoint`` (OTLP/HTTP). Yields the player; on exit flushes every span
    and raises RuntimeError if they could not be delivered within 60 s."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import llmtrace
    from llmtrace.demo.fake_llm import FakeLLM

    placements = _Placements()
    inner = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider = TracerProvider()
    provider.add_span_processor(_processor(placements))
    provider.add_span_processor(
        BatchSpanProcessor(
            _exporter(inner, placements), max_queue_size=200_000, max_export_batch_size=1000, schedule_delay_millis=500
        )
    )
    llmtrace.instrument(tracer_provider=provider, service_name="llmtrace-demo")
    try:
        with FakeLLM() as fake:
            yield _Player(fake, provider.get_tracer(SCOPE))
    finally:
        llmtrace.uninstrument()
        flushed = provider.force_flush(60_000)
        provider.shutdown()
    if not flushed:
        raise RuntimeError(
            f"could not deliver every span to {mask_url(endpoint)} within 60 s; is `llmtrace server` running?"
        )


def run_demo(endpoint: str, calls: int, days: float, seed: int, end_ns: int | None = None) -> int:
    """Send the planned traffic; returns the number of LLM calls made. Raises if export fails."""
    requests = scenarios.plan(calls, days, end_ns or time.time_ns(), seed)
    made = 0
    with sdk_pipeline(endpoint) as player:
        progress = _Progress(sum(len(r.calls) for r in requests))
        for request in requests:
            player.play(request)
            made += len(request.calls)
            progress.advance(len(request.calls))
        progress.finish()
    return made


def _describe(endpoint: str, calls: int, days: float) -> str:
    where = mask_url(endpoint)
    lines = [f"llmtrace demo: ~{calls} LLM calls over {days:g} days into {where}", "  episodes to look for:"]
    for episode in scenarios.EPISODES:
        hours = episode.hours_ago * days / 7
        lines.append(f"    {episode.kind:<14} {episode.service:<12} {hours:5.1f} h ago  {episode.detail}")
    return "\n".join(lines)


def _run_live(args: argparse.Namespace) -> int:
    """``llmtrace demo --live``: until Ctrl-C or SIGTERM, which end it quietly after the request
    under way and a flush (``llmtrace up`` counts on it: every call it says it sent is stored)."""
    import signal
    import threading

    from llmtrace.demo.live import run_live

    if args.rate <= 0:
        print("llmtrace demo: --rate must be > 0", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        run_live(args.endpoint, args.rate, args.seed, stop=stop)
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"llmtrace demo: {exc}", file=sys.stderr)
        return 1
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    if getattr(args, "live", False):
        return _run_live(args)
    if args.calls < 1 or args.days <= 0:
        print("llmtrace demo: --calls must be >= 1 and --days > 0", file=sys.stderr)
        return 2
    print(_describe(args.endpoint, args.calls, args.days), file=sys.stderr, flush=True)
    try:
        made = run_demo(args.endpoint, args.calls, args.days, args.seed)
    except ImportError as exc:
        print(f"llmtrace demo needs the openai, anthropic, google-genai and boto3 SDKs ({exc.name} missing): "
              'pip install "llmtrace[demo]"', file=sys.stderr)  # fmt: skip
        return 1
    except RuntimeError as exc:
        print(f"llmtrace demo: {exc}", file=sys.stderr)
        return 1
    where = f"open {args.dashboard_url}" if args.dashboard_url else "see them with `llmtrace dashboard`"
    print(f"llmtrace demo: sent {made} LLM calls; {where}", file=sys.stderr)
    return 0


def demo_requests(query_url: str) -> int:
    """How many demo requests (traces) the store at ``query_url`` already holds, played or bulk-loaded
    (0 for a store without the demo)."""
    from llmtrace.store.client import connect

    client = connect(query_url)
    try:
        sql = "SELECT uniqExact(TraceId) FROM otel_traces WHERE ScopeName IN {scopes:Array(String)}"
        scopes = [SCOPE, scenarios.HISTORY_SCOPE]
        return int(client.query(sql, parameters={"scopes": scopes}).result_rows[0][0])
    finally:
        client.close()


def load_for_up(
    otlp_url: str, query_url: str, dashboard_url: str, calls: int, force: bool, env: dict[str, str], live: bool = True
) -> bool:
    """``llmtrace up --demo``: load a week of ``calls`` LLM calls in bulk, then start live traffic
    through the real SDKs in the background (``live``; see :mod:`llmtrace.demo.live`), unless this store
    already has the demo (loading it again would double every figure and repeat each incident).
    True when new demo data was loaded."""
    from llmtrace.demo.live import live_rate, load_history, start_live

    existing = demo_requests(query_url)
    if existing and not force:
        print(
            f"Demo data is already in this data directory ({existing:,} demo requests): not loading it again.\n"
            f"Open {dashboard_url}  (--demo-force adds another copy; a new --data-dir starts empty)",
            flush=True,
        )
        return False
    started = time.monotonic()
    try:
        loaded = load_history(query_url, calls)
    except Exception as exc:  # the store's own error (disk, memory): up keeps serving what it has
        print(f"The demo history could not be loaded ({exc}); the server and dashboard keep running.", file=sys.stderr)
        return False
    print(
        f"Loaded a week of demo history ({loaded:,} LLM calls) in {time.monotonic() - started:.1f} s; "
        "live traffic through the real SDKs follows in the background.",
        flush=True,
    )
    if live:
        start_live(otlp_url, live_rate(calls), env)
    from llmtrace.demo.canary_live import load_for_up as load_canary

    load_canary(query_url, otlp_url, dashboard_url, env, live)  # releases side by side, for Compare
    return True

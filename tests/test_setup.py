"""instrument()/uninstrument()/flush(), settings from arguments and environment, the public API."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import llmtrace
from llmtrace import config
from llmtrace import semconv as sc
from tests.conftest import MEMORY_PROVIDER, SpanRecorder, run_script

KNOWN = ["openai", "anthropic"]


def test_public_api_is_pinned() -> None:
    assert sorted(llmtrace.__all__) == [
        "ConfigError",
        "__version__",
        "attributes",
        "flush",
        "instrument",
        "observe",
        "prompt",
        "score",
        "set_price",
        "tool",
        "trace",
        "uninstrument",
    ]


def test_uninstrument_restores_every_method_exactly() -> None:
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import Embeddings

    before = (vars(Completions)["create"], vars(AsyncCompletions)["create"], vars(Embeddings)["create"])
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider)
    patched = (vars(Completions)["create"], vars(AsyncCompletions)["create"], vars(Embeddings)["create"])
    llmtrace.uninstrument()
    after = (vars(Completions)["create"], vars(AsyncCompletions)["create"], vars(Embeddings)["create"])
    assert all(p is not b for p, b in zip(patched, before, strict=True))
    assert after == before


def test_second_instrument_warns_and_patches_nothing_twice(fake_llm: Any) -> None:
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider)
    try:
        with pytest.warns(UserWarning, match="already called"):
            llmtrace.instrument(tracer_provider=rec.provider)
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        llmtrace.uninstrument()
    assert len(rec.finished) == 1


def test_providers_argument_limits_patching(fake_llm: Any) -> None:
    from openai.resources.chat.completions import Completions

    original = vars(Completions)["create"]
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, providers=["anthropic"])
    try:
        assert vars(Completions)["create"] is original
    finally:
        llmtrace.uninstrument()


def test_no_spans_after_uninstrument(fake_llm: Any, recorder: SpanRecorder) -> None:
    llmtrace.uninstrument()
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert recorder.finished == []


def test_prompt_and_attributes_tag_spans(fake_llm: Any, spans: SpanRecorder) -> None:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    with llmtrace.prompt("support-answer", version=3), llmtrace.attributes(user_id="u1", session_id="s1"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    tagged, untagged = spans.finished
    assert tagged.attributes[sc.PROMPT_NAME] == "support-answer"
    assert tagged.attributes[sc.PROMPT_VERSION] == "3"
    assert tagged.attributes[sc.USER_ID] == "u1"
    assert tagged.attributes[sc.SESSION_ID] == "s1"
    assert sc.PROMPT_NAME not in (untagged.attributes or {})


def test_environment_and_release_land_on_spans(fake_llm: Any) -> None:
    rec = SpanRecorder()
    llmtrace.instrument(tracer_provider=rec.provider, environment="staging", release="v2.1.0")
    try:
        client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        llmtrace.uninstrument()
    span = rec.one()
    assert span.attributes[sc.ENVIRONMENT] == "staging"
    assert span.attributes[sc.RELEASE] == "v2.1.0"


@pytest.mark.usefixtures("engine_overrides")  # set_price is process-wide: undone after (tests/conftest.py)
def test_set_price_overrides_genai_prices(fake_llm: Any, spans: SpanRecorder) -> None:
    llmtrace.set_price("openai", "house-model", input_per_mtok=1.0, output_per_mtok=2.0)
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    result = client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": "hi"}])
    a = spans.one().attributes
    assert a[sc.COST_USD] == pytest.approx((result.usage.prompt_tokens * 1 + result.usage.completion_tokens * 2) / 1e6)


# --- settings ----------------------------------------------------------------


def resolve(env: dict[str, str], **kwargs: Any) -> config.Settings:
    return config.resolve(known_providers=KNOWN, env=env, **kwargs)


def test_arguments_win_over_environment() -> None:
    s = resolve({"OTEL_SERVICE_NAME": "from-env", "LLMTRACE_RELEASE": "v0"}, service_name="arg", release="v1")
    assert (s.service_name, s.release) == ("arg", "v1")


def test_service_name_falls_back_to_env_then_script() -> None:
    assert resolve({"OTEL_SERVICE_NAME": "svc"}).service_name == "svc"
    assert resolve({}).service_name  # script name, never empty


def test_endpoint_resolution_follows_otel_variables() -> None:
    assert resolve({}).endpoint == "http://localhost:4318/v1/traces"
    assert resolve({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).endpoint == "http://c:4318/v1/traces"
    specific = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/custom",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c",
    }
    assert resolve(specific).endpoint == "http://t:9/custom"
    assert resolve({}, endpoint="http://x:1").endpoint == "http://x:1/v1/traces"


def test_clickhouse_url_selects_the_direct_exporter() -> None:
    s = resolve({"LLMTRACE_CLICKHOUSE_URL": "http://ch:8123"})
    assert (s.endpoint, s.clickhouse_url) == (None, "http://ch:8123")
    assert resolve({}, clickhouse_url="http://a:8123").clickhouse_url == "http://a:8123"
    both = resolve({"LLMTRACE_CLICKHOUSE_URL": "http://ch:8123", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert both.clickhouse_url is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLMTRACE_CAPTURE_CONTENT": "false"}, False),
        ({"LLMTRACE_CAPTURE_CONTENT": "TRUE"}, True),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"}, True),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, False),
        ({}, True),
    ],
)
def test_capture_content_from_environment(env: dict[str, str], expected: bool) -> None:
    assert resolve(env).capture_content is expected


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LLMTRACE_CAPTURE_CONTENT": "maybe"}, "LLMTRACE_CAPTURE_CONTENT"),
        (
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "ALL"},
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        ),
        ({"LLMTRACE_MAX_CONTENT_CHARS": "lots"}, "LLMTRACE_MAX_CONTENT_CHARS"),
        ({"LLMTRACE_MAX_CONTENT_CHARS": "-5"}, "LLMTRACE_MAX_CONTENT_CHARS"),
        ({"LLMTRACE_DISABLED": "nah"}, "LLMTRACE_DISABLED"),
        ({"LLMTRACE_BACKGROUND": "sometimes"}, "LLMTRACE_BACKGROUND"),
    ],
)
def test_invalid_environment_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(config.ConfigError, match=variable):
        resolve(env)


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(config.ConfigError, match="not supported"):
        resolve({}, providers=["openia"])


def test_disabled_instruments_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from openai.resources.chat.completions import Completions

    original = vars(Completions)["create"]
    monkeypatch.setenv("LLMTRACE_DISABLED", "true")
    llmtrace.instrument(tracer_provider=SpanRecorder().provider)
    assert vars(Completions)["create"] is original
    llmtrace.uninstrument()


def test_own_provider_has_resource_and_otlp_exporter_without_network_at_init() -> None:
    result = run_script("""
        import socket
        def refuse(*a, **k):
            raise AssertionError("network call during instrument()")
        socket.socket.connect = refuse
        import llmtrace
        llmtrace.instrument(service_name="svc", environment="prod", release="v9", endpoint="http://127.0.0.1:9")
        from opentelemetry import trace
        provider = trace.get_tracer_provider()
        attrs = dict(provider.resource.attributes)
        proc = provider._active_span_processor._span_processors[-1]  # after the one that builds the exporter
        import sys
        imported_early = "llmtrace.exporters.otlp" in sys.modules
        inner = getattr(proc, "_batch_processor", None)  # SDK >= 1.34 wraps a shared batch processor
        exporter = (inner._exporter if inner is not None else proc.span_exporter).exporter  # built on first use
        print(attrs["service.name"], attrs["deployment.environment.name"], attrs["service.version"],
              type(proc).__name__, imported_early, type(exporter).__name__, exporter._endpoint)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "svc",
        "prod",
        "v9",
        "BatchSpanProcessor",
        "False",
        "OtlpHttpSpanExporter",
        "http://127.0.0.1:9/v1/traces",
    ]


def test_existing_global_provider_is_reused_without_a_second_exporter() -> None:
    result = run_script("""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        app_provider = TracerProvider()
        trace.set_tracer_provider(app_provider)
        import llmtrace
        llmtrace.instrument()
        print(trace.get_tracer_provider() is app_provider, len(app_provider._active_span_processor._span_processors))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "0"]


def test_import_and_instrument_do_not_import_sdks_chdb_or_streamlit() -> None:
    result = run_script("""
        import sys, llmtrace
        llmtrace.instrument(endpoint="http://127.0.0.1:9")
        print(sorted(m for m in ("openai", "anthropic", "chdb", "streamlit", "clickhouse_connect") if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_instrument_before_the_sdks_imports_no_wrapt_asyncio_or_provider_module() -> None:
    """wrapt 2.5 imports asyncio and importlib.metadata (~0.1 s of start-up): nothing needs it before an SDK
    is imported; then the provider is loaded on the importing thread and the SDK's module keeps its loader."""
    result = run_script("""
        import inspect, sys
        heavy = ("wrapt", "asyncio", "importlib.metadata", "llmtrace.instrumentation.anthropic")
        import opentelemetry.sdk.trace  # older SDKs (1.27) import some of them themselves: not ours to avoid
        theirs = {m for m in heavy if m in sys.modules}
        import llmtrace
        llmtrace.instrument(endpoint="http://127.0.0.1:9")
        print(sorted(m for m in heavy if m in sys.modules and m not in theirs))
        import anthropic.resources.messages as messages
        print(type(vars(messages.Messages)["create"]).__name__, type(messages.__loader__).__name__)
        print(bool(inspect.getsource(messages)), type(messages.__spec__.loader).__name__)
        llmtrace.uninstrument()
        print(type(vars(messages.Messages)["create"]).__name__)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "LLMTraceWrapper SourceFileLoader"
    assert lines[2] == "True SourceFileLoader"
    assert lines[3] == "function"


def test_an_sdk_imported_after_a_second_instrument_is_patched_once() -> None:
    result = run_script("""
        import llmtrace
        from opentelemetry.sdk.trace import TracerProvider
        llmtrace.instrument(tracer_provider=TracerProvider(), providers=["openai"])
        llmtrace.uninstrument()
        llmtrace.instrument(tracer_provider=TracerProvider(), providers=["openai"])
        from openai.resources.chat.completions import Completions
        create = vars(Completions)["create"]
        print(type(create).__name__, type(create.__wrapped__).__name__)
        llmtrace.uninstrument()
        print(type(vars(Completions)["create"]).__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["LLMTraceWrapper", "function", "function"]


def test_every_patch_target_lies_under_its_sdks_roots() -> None:
    """instrument() watches only the SDK roots and loads a provider when one is imported: a target
    outside them would never be patched."""
    import importlib

    from llmtrace.instrumentation import PROVIDERS, SDK_ROOTS

    assert set(SDK_ROOTS) == set(PROVIDERS)
    for key, module in PROVIDERS.items():
        for patch in importlib.import_module(module).patches():
            roots = SDK_ROOTS[key]
            assert any(patch.module == r or patch.module.startswith(r + ".") for r in roots), (key, patch.module)


def test_sdk_imported_after_instrument_is_patched() -> None:
    result = run_script("""
        import llmtrace
        from opentelemetry.sdk.trace import TracerProvider
        llmtrace.instrument(tracer_provider=TracerProvider())
        import wrapt
        from openai.resources.chat.completions import Completions
        print(isinstance(vars(Completions)["create"], wrapt.FunctionWrapper))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_method_instrumented_by_another_tool_gets_our_span_too_and_a_warning_naming_it() -> None:
    """OpenLLMetry, OpenLIT and the OTel instrumentations patch with wrapt too: stack on them, never skip silently."""
    result = run_script(
        """
        import json, wrapt, openai
        from openai.resources.chat.completions import Completions
        from llmtrace.demo.fake_llm import FakeLLM

        calls = []
        def other_tool(wrapped, instance, args, kwargs):
            calls.append(kwargs["model"])
            return wrapped(*args, **kwargs)
        other_tool.__module__ = "othertool.openai"
        wrapt.wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", other_tool)
        theirs = vars(Completions)["create"]

        llmtrace.instrument(tracer_provider=provider)
        with FakeLLM() as fake:
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            llmtrace.flush()
            llmtrace.uninstrument()
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        print(json.dumps({
            "spans": [s.name for s in exporter.get_finished_spans()],
            "cost": "llmtrace.cost.usd" in exporter.get_finished_spans()[0].attributes,
            "other_tool_calls": len(calls),
            "restored": vars(Completions)["create"] is theirs,
        }))
    """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "spans": ["chat gpt-4o-mini"],
        "cost": True,
        "other_tool_calls": 2,
        "restored": True,
    }
    warning = next(line for line in result.stderr.splitlines() if "already instrumented" in line)
    assert "othertool.openai" in warning and "Completions.create" in warning


def test_uninstrument_after_another_tool_wrapped_on_top_keeps_their_wrapper_and_drops_ours() -> None:
    result = run_script(
        """
        import json, wrapt, openai
        from openai.resources.chat.completions import Completions
        from llmtrace.demo.fake_llm import FakeLLM

        original = vars(Completions)["create"]
        llmtrace.instrument(tracer_provider=provider)
        calls = []
        def later_tool(wrapped, instance, args, kwargs):
            calls.append(1)
            return wrapped(*args, **kwargs)
        wrapt.wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", later_tool)
        theirs = vars(Completions)["create"]
        llmtrace.uninstrument()
        with FakeLLM() as fake:
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        llmtrace.flush()
        print(json.dumps({
            "theirs_in_place": vars(Completions)["create"] is theirs,
            "wraps_original": theirs.__wrapped__ is original,
            "their_calls": len(calls),
            "our_spans": len(exporter.get_finished_spans()),
        }))
    """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "theirs_in_place": True,
        "wraps_original": True,
        "their_calls": 1,
        "our_spans": 0,
    }


def test_flush_with_the_collector_down_returns_false_within_its_timeout_and_the_app_is_unaffected() -> None:
    result = run_script("""
        import time, llmtrace
        llmtrace.instrument(endpoint="http://127.0.0.1:9", service_name="down")
        import openai
        from llmtrace.demo.fake_llm import FakeLLM
        with FakeLLM() as fake:
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
            ids = [client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).id
                   for _ in range(3)]
        start = time.perf_counter()
        ok = llmtrace.flush(timeout_s=1.0)
        print(len(ids), ok, time.perf_counter() - start < 3.0)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "False", "True"]

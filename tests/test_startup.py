"""instrument() at start-up: it imports no SDK module, patches resources as the app imports them,
and nothing of llmtrace imports on a background thread (such an import races the app's own: the
SDK can read a module another thread is half-way through importing). Fresh processes throughout;
the fake LLM and the OTLP sink run as their own processes so their threads import nothing here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import MEMORY_PROVIDER, run_script
from tests.server_process import free_port

_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
        print(len(body), flush=True)
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
print("ready", flush=True)
server.serve_forever()
"""


def _serve(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # listening
        yield process
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def fake_llm_url() -> Iterator[str]:
    port = free_port()
    for _ in _serve([sys.executable, "-m", "llmtrace.demo.fake_llm", "--port", str(port)]):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def otlp_sink() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    for process in _serve([sys.executable, "-c", _SINK, str(port)]):
        yield f"http://127.0.0.1:{port}", process


def test_instrument_after_the_sdks_imports_no_sdk_module_and_no_price_data() -> None:
    result = run_script("""
        import sys, threading, openai, anthropic
        before = set(sys.modules)
        import llmtrace
        llmtrace.instrument(endpoint="http://127.0.0.1:9")
        new = set(sys.modules) - before
        print(sorted(m for m in new if m.split(".")[0] in ("openai", "anthropic", "genai_prices", "httpx", "httpx2")))
        print(sorted(t.name for t in threading.enumerate() if t.name.startswith("llmtrace")))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"]


def test_a_resource_imported_after_instrument_is_patched_then_restored_exactly(fake_llm_url: str) -> None:
    result = run_script(
        """
        import json, sys, openai
        sdk_imported_it = "openai.resources.embeddings" in sys.modules  # openai < 3 imports every resource
        llmtrace.instrument(tracer_provider=provider)
        lazy = "openai.resources.embeddings" in sys.modules and not sdk_imported_it
        client = openai.OpenAI(base_url=BASE + "/v1", api_key="t", max_retries=0)
        client.embeddings.create(model="text-embedding-3-small", input="hi")  # the SDK imports the resource now
        from openai.resources.embeddings import Embeddings
        from llmtrace.instrumentation._patching import LLMTraceWrapper
        patched = vars(Embeddings)["create"]
        llmtrace.uninstrument()
        print(json.dumps({
            "imported_by_instrument": lazy,
            "patched": isinstance(patched, LLMTraceWrapper),
            "restored": vars(Embeddings)["create"] is patched.__wrapped__,
            "spans": [s.name for s in exporter.get_finished_spans()],
        }))
    """,
        prelude=MEMORY_PROVIDER + f"BASE = {fake_llm_url!r}\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "imported_by_instrument": False,
        "patched": True,
        "restored": True,
        "spans": ["embeddings text-embedding-3-small"],
    }


def test_a_resource_imported_after_uninstrument_stays_unpatched_and_a_second_instrument_patches_it() -> None:
    result = run_script(
        """
        import sys, openai
        from llmtrace.instrumentation._patching import LLMTraceWrapper
        llmtrace.instrument(tracer_provider=provider)
        llmtrace.uninstrument()
        from openai.resources.embeddings import Embeddings
        after_uninstrument = isinstance(vars(Embeddings)["create"], LLMTraceWrapper)
        llmtrace.instrument(tracer_provider=provider)
        again = isinstance(vars(Embeddings)["create"], LLMTraceWrapper)
        llmtrace.uninstrument()
        print(after_uninstrument, again, isinstance(vars(Embeddings)["create"], LLMTraceWrapper))
    """,
        prelude=MEMORY_PROVIDER,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "False"]


_CALLS = """
import asyncio, openai, anthropic
import openai._base_client as sdk, anthropic._base_client as asdk  # the app's explicit HTTP clients, from the
http = getattr(sdk, "httpx2", None) or sdk.httpx                      # library each SDK uses (they may differ)
ahttp = getattr(asdk, "httpx2", None) or asdk.httpx
client = openai.OpenAI(base_url=BASE + "/v1", api_key="t", max_retries=0, http_client=http.Client(timeout=30))
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
for _ in client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True):
    pass
client.embeddings.create(model="text-embedding-3-small", input="hi")
aclient = anthropic.Anthropic(base_url=BASE, api_key="t", max_retries=0, http_client=ahttp.Client(timeout=30))
aclient.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
with aclient.messages.stream(model="claude-3-5-haiku-latest", max_tokens=16,
                             messages=[{"role": "user", "content": "hi"}]) as stream:
    stream.get_final_message()
async def main():
    async_client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="t", max_retries=0)
    await async_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
asyncio.run(main())
"""


def _background_imports(sink: str, calls: str) -> subprocess.CompletedProcess[str]:
    """Run ``calls`` after instrument() (OTLP to ``sink``) and flush; print what non-main threads imported."""
    return run_script(
        f"""
        import sys, threading
        background = []
        def audit(event, args):
            if event == "import" and threading.current_thread() is not threading.main_thread():
                background.append((threading.current_thread().name, args[0]))
        import llmtrace
        llmtrace.instrument(endpoint={sink!r}, service_name="imports")
        sys.addaudithook(audit)
        {calls.strip().replace(chr(10), chr(10) + " " * 8)}
        delivered = llmtrace.flush()
        from opentelemetry import trace
        trace.get_tracer_provider().shutdown()
        print(delivered, sorted(set(background)))
        """,
    )


def test_no_thread_imports_after_instrument_while_calls_are_priced_and_exported(
    fake_llm_url: str, otlp_sink: tuple[str, subprocess.Popen[str]]
) -> None:
    """Every module llmtrace needs after instrument() (the OTLP exporter, the price table's readers) is
    imported on the app's thread; the span worker, the batch exporter and flush() import nothing."""
    sink_url, sink = otlp_sink
    result = _background_imports(sink_url, f"BASE = {fake_llm_url!r}\n" + _CALLS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1) == ["True", "[]\n"]
    sink.terminate()
    assert sink.stdout is not None and sink.stdout.read().split(), "the sink received no spans"


def test_an_app_making_only_its_own_spans_exports_them_without_background_imports(
    otlp_sink: tuple[str, subprocess.Popen[str]],
) -> None:
    sink_url, sink = otlp_sink
    spans = """
        from opentelemetry import trace
        with trace.get_tracer("app").start_as_current_span("startup"):
            pass
    """
    result = _background_imports(sink_url, textwrap.dedent(spans))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1) == ["True", "[]\n"]
    sink.terminate()
    assert sink.stdout is not None and sink.stdout.read().split(), "the sink received no spans"


def test_clients_built_right_after_instrument_work_in_every_fresh_process(fake_llm_url: str) -> None:
    """The issue's failure: an app building its clients at once saw a half-imported module. 10 processes
    here (two orders); ``benchmarks/startup.py --race 200`` runs hundreds."""
    orders = [
        "import llmtrace\nllmtrace.instrument(endpoint='http://127.0.0.1:9')\n",
        "import openai, anthropic, llmtrace\nllmtrace.instrument(endpoint='http://127.0.0.1:9')\n",
    ]
    scripts = [f"BASE = {fake_llm_url!r}\n" + order + _CALLS for order in orders for _ in range(5)]
    with ThreadPoolExecutor(2) as pool:  # 2 cores: 4 at once only stretched each past run_script's 60 s
        results = list(pool.map(run_script, scripts))
    failures = [r.stderr.strip().splitlines()[-1] for r in results if r.returncode != 0]
    assert failures == []

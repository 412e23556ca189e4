"""A local fake OpenAI + Anthropic HTTP service for ``llmtrace demo`` and the tests.

The real ``openai`` and ``anthropic`` SDKs talk to it over real HTTP (point ``base_url`` at
``FakeLLM.openai_base_url`` / ``FakeLLM.anthropic_base_url``). Replies are deterministic and
shaped like the real APIs. Standard library only.

Endpoints: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/completions``,
``/v1/embeddings`` (OpenAI), ``POST /v1/messages`` (Anthropic), ``/{version}/…models/{model}:generateContent``
and friends (Gemini API and Vertex AI, ``http_options={"base_url": FakeLLM.url}``),
``/openai/v1/chat/completions`` (Groq, ``base_url=FakeLLM.url``), ``/v2/chat``, ``/v2/embed``, ``/v1/chat``
(Cohere, ``base_url=FakeLLM.url``), ``/mistral/v1/…`` (Mistral,
``server_url=FakeLLM.mistral_url``), ``/api/chat``, ``/api/generate``, ``/api/embed`` (Ollama,
``host=FakeLLM.url``), ``/model/{modelId}/converse``, ``/converse-stream``, ``/invoke``,
``/invoke-with-response-stream`` (Amazon Bedrock, boto3 ``endpoint_url=FakeLLM.url``), ``GET /health``.

Per-request controls, as headers (``extra_headers=`` in the SDKs):

========================== =========================================================================
``x-fake-status: N``       reply HTTP N (>= 400) with the provider's error JSON; 429 and 5xx carry
                           ``retry-after: 0`` and ``retry-after-ms: 1`` so SDK retries are instant
``x-fake-stream-error-after: N``  stream N content chunks (or all, if fewer) then the provider's
                           in-band error: OpenAI ``data: {"error": ...}``, Anthropic ``event: error``
                           (overloaded_error); ignored for non-streaming requests
``x-fake-output-words: N`` exactly N words of text (= N content chunks when streaming)
``x-fake-latency-ms: N``   wait N ms before the reply's first byte
``x-fake-chunk-delay-ms: N`` wait N ms before each streamed content chunk
``x-fake-malformed: 1``    200 with a truncated, invalid JSON body (or SSE data line)
``x-fake-replay: NAME``    the recorded real response ``RECORDED_DIR/NAME.json``, body verbatim
========================== =========================================================================

Run it standalone with ``python -m llmtrace.demo.fake_llm --port 9999``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llmtrace.demo import fake_llm_anthropic as anthropic_api
from llmtrace.demo import fake_llm_bedrock as bedrock_api
from llmtrace.demo import fake_llm_cohere as cohere_api
from llmtrace.demo import fake_llm_compat as compat_api
from llmtrace.demo import fake_llm_gemini as gemini_api
from llmtrace.demo import fake_llm_ollama as ollama_api
from llmtrace.demo import fake_llm_openai as openai_api
from llmtrace.demo import fake_llm_openai_responses as responses_api
from llmtrace.demo.fake_llm_common import (
    CacheState,
    Context,
    Controls,
    Frame,
    Handler,
    JsonReply,
    Reply,
    SseReply,
    cut_after_content,
    parse_controls,
)

__all__ = ["FakeLLM", "main"]

RECORDED_DIR = Path(
    os.environ.get("LLMTRACE_FAKE_RECORDED_DIR", Path(__file__).resolve().parents[2] / "tests/fixtures/recorded")
)
_REPLAY_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class _Provider:
    """How one provider says errors, in a response and in the middle of a stream."""

    def __init__(
        self,
        error_reply: Callable[[int, str | None], JsonReply],
        stream_error: Callable[[int], Frame],
        malformed: tuple[bytes, bytes],
    ) -> None:
        self.error_reply = error_reply
        self.stream_error = stream_error
        self.malformed_json, self.malformed_sse = malformed


_OPENAI = _Provider(
    openai_api.error_reply,
    openai_api.stream_error_frame,
    (
        b'{"id": "chatcmpl-malformed", "object": "chat.comp',
        b'data: {"id": "chatcmpl-malformed", "choices": [\n\n',
    ),
)
_RESPONSES = _Provider(
    openai_api.error_reply,
    responses_api.stream_error_frame,
    (
        b'{"id": "resp_malformed", "object": "resp',
        b'event: response.created\ndata: {"type": "response.cr\n\n',
    ),
)
_ANTHROPIC = _Provider(
    anthropic_api.error_reply,
    anthropic_api.stream_error_frame,
    (
        b'{"id": "msg_malformed", "type": "mess',
        b'event: message_start\ndata: {"type": "message_start", "mes\n\n',
    ),
)
_GEMINI = _Provider(
    gemini_api.error_reply,
    gemini_api.stream_error_frame,
    (b'{"candidates": [{"content": {"par', b'data: {"candidates": [{"cont\n\n'),
)
_COHERE = _Provider(
    cohere_api.error_reply,
    cohere_api.stream_error_frame,
    (b'{"id": "c14c80c3", "message": {"ro', b'event: message-start\ndata: {"id": "c14c80c3", "ty\n\n'),
)
_BEDROCK = _Provider(bedrock_api.error_reply, bedrock_api.stream_error_frame, bedrock_api.MALFORMED)
_OLLAMA = _Provider(ollama_api.error_reply, ollama_api.stream_error_frame, (b'{"model": "ll', b'{"model": "ll\n'))
_ROUTES: dict[str, tuple[Handler, _Provider]] = {
    "/v1/chat/completions": (openai_api.chat_completions, _OPENAI),
    "/v1/completions": (openai_api.completions, _OPENAI),
    "/v1/embeddings": (openai_api.embeddings, _OPENAI),
    "/v1/responses": (responses_api.responses, _RESPONSES),
    "/v1/messages": (anthropic_api.messages, _ANTHROPIC),
    "/openai/v1/chat/completions": (compat_api.groq_chat, _OPENAI),  # Groq's own path
    "/mistral/v1/chat/completions": (compat_api.mistral_chat, _OPENAI),
    "/mistral/v1/embeddings": (compat_api.mistral_embeddings, _OPENAI),
    "/v2/chat": (cohere_api.chat, _COHERE),  # Cohere (base_url=FakeLLM.url)
    "/v2/embed": (cohere_api.embed, _COHERE),
    "/v1/chat": (cohere_api.chat_v1, _COHERE),
    "/v1/embed": (cohere_api.embed_v1, _COHERE),
    "/api/chat": (ollama_api.chat, _OLLAMA),
    "/api/generate": (ollama_api.generate, _OLLAMA),
    "/api/embed": (ollama_api.embed, _OLLAMA),
    "/api/embeddings": (ollama_api.embeddings, _OLLAMA),
}


def _route(path: str) -> tuple[Handler, _Provider] | None:
    """The fixed routes, then Gemini's and Bedrock's, which name the model (and method) in the path."""
    route = _ROUTES.get(path)
    if route is None and (gemini := gemini_api.route(path)) is not None:
        return gemini, _GEMINI
    if route is None and (bedrock := bedrock_api.route(path)) is not None:
        return bedrock, _BEDROCK
    return route


def _replay(name: str, provider: _Provider, recorded_dir: Path) -> Reply:
    """The recorded response ``recorded_dir/NAME.json``: status, content type, body verbatim."""
    path = recorded_dir / f"{name}.json"
    if not _REPLAY_NAME.match(name) or not path.is_file():
        message = f"x-fake-replay: no recording {name!r} in {recorded_dir}; use the stem of a .json file there."
        return provider.error_reply(400, message)
    record = json.loads(path.read_text(encoding="utf-8"))
    headers = {k.lower(): str(v) for k, v in (record.get("headers") or {}).items()}
    content_type = str(record.get("content_type", "application/json"))
    if "body_base64" in record:  # binary bodies (Bedrock's event stream), sent as recorded
        return JsonReply(int(record.get("status", 200)), base64.b64decode(record["body_base64"]), headers, content_type)
    body = str(record["body"])
    if not content_type.startswith("text/event-stream"):
        return JsonReply(int(record.get("status", 200)), body.encode(), headers, content_type)
    events = re.findall(r".*?\n\n|.+$", body, re.S)  # frames end at blank lines; joined they are `body`
    return SseReply([Frame(e.encode(), content=True) for e in events], headers, content_type=content_type)


def _malformed(provider: _Provider, stream: bool) -> Reply:
    if stream:
        return SseReply([Frame(provider.malformed_sse)])
    return JsonReply(200, provider.malformed_json)


def _dispatch(fake: FakeLLM, path: str, headers: dict[str, str], raw: bytes) -> tuple[Reply, Controls]:
    """Decide the reply: 404, 400 for bad input, forced status, replay, malformed, or a real answer."""
    route = _route(path)
    provider = route[1] if route else (_ANTHROPIC if "anthropic-version" in headers else _OPENAI)
    try:
        controls = parse_controls(headers, latency_s=fake.latency_s, chunk_delay_s=fake.chunk_delay_s)
    except ValueError as exc:
        return provider.error_reply(400, str(exc)), Controls()
    if route is None:
        return provider.error_reply(404, f"Invalid URL ({path}): the fake LLM has no such endpoint."), controls
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        message = "We could not parse the JSON body of your request: send a JSON object."
        return provider.error_reply(400, message), controls
    if controls.status is not None and controls.status >= 400:
        return provider.error_reply(controls.status, None), controls
    if controls.replay:
        return _replay(controls.replay, provider, fake.recorded_dir), controls
    if controls.malformed:
        return _malformed(provider, bool(body.get("stream"))), controls
    reply = route[0](body, Context(controls, fake.cache, headers))
    if isinstance(reply, SseReply) and controls.stream_error_after is not None:
        kept = cut_after_content(reply.frames, controls.stream_error_after)
        reply.frames = [*kept, provider.stream_error(len(kept))]
    return reply, controls


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up (abandoned streams, closed pools, ``stop()``)."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Replies go out in two writes (head, then body or chunks); without this, Nagle plus
        # delayed ACKs can add ~40 ms per request on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo read no access log
        pass

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/health":
            self._write_json(JsonReply(200, b'{"status":"ok"}'))
        else:
            self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        fake._record({"method": method, "path": path, "headers": headers, "json": parsed})
        reply, controls = _dispatch(fake, path, headers, raw)
        if controls.latency_s > 0:
            time.sleep(controls.latency_s)
        try:
            if isinstance(reply, SseReply):
                self._write_sse(reply, controls.chunk_delay_s)
            else:
                self._write_json(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-reply, e.g. an abandoned stream

    def _head(self, status: int, content_type: str, headers: dict[str, str], framing: str) -> bytes:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
        lines = [f"HTTP/1.1 {status} {phrase}", f"Content-Type: {content_type}", framing]
        lines += [f"{k}: {v}" for k, v in headers.items() if k not in ("content-length", "transfer-encoding")]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write_json(self, reply: JsonReply) -> None:
        framing = f"Content-Length: {len(reply.body)}"
        self.wfile.write(self._head(reply.status, reply.content_type, reply.headers, framing) + reply.body)

    def _write_sse(self, reply: SseReply, chunk_delay_s: float) -> None:
        headers = {"cache-control": "no-cache", **reply.headers}
        self.wfile.write(self._head(reply.status, reply.content_type, headers, "Transfer-Encoding: chunked"))
        chunks = [b"%x\r\n%s\r\n" % (len(frame.data), frame.data) for frame in reply.frames]
        if chunk_delay_s <= 0:  # nothing to pace: one write is much cheaper than one per event
            self.wfile.write(b"".join(chunks) + b"0\r\n\r\n")
            return
        for frame, chunk in zip(reply.frames, chunks, strict=True):
            if frame.content:
                time.sleep(chunk_delay_s)
            self.wfile.write(chunk)
        self.wfile.write(b"0\r\n\r\n")


class FakeLLM:
    """The fake service on a background daemon thread; use as a context manager.

    ``latency_s`` delays every reply before its first byte and ``chunk_delay_s`` every streamed
    content chunk (both overridable per request by headers). ``requests`` lists every request
    received as ``{"method", "path", "headers", "json"}`` (the newest ``max_recorded``). Port 0
    picks a free port. ``recorded_dir`` holds the recordings ``x-fake-replay`` serves.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_s: float = 0.0,
        chunk_delay_s: float = 0.0,
        recorded_dir: Path | str | None = None,
        max_recorded: int = 100_000,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_s
        self.chunk_delay_s = chunk_delay_s
        self.recorded_dir = Path(recorded_dir) if recorded_dir is not None else RECORDED_DIR
        self.max_recorded = max_recorded
        self.requests: list[dict[str, Any]] = []
        self.cache = CacheState()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeLLM is not running: call start() or use it in a `with` block first.")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def mistral_url(self) -> str:
        """``server_url`` for the ``mistralai`` SDK (the fake keeps Mistral under ``/mistral``)."""
        return self.url + "/mistral"

    def start(self) -> FakeLLM:
        """Bind and serve in a daemon thread; raises OSError naming the port if it is taken."""
        try:
            server = _Server((self.host, self.port), _RequestHandler)
        except OSError as exc:
            raise OSError(f"FakeLLM cannot bind {self.host}:{self.port} ({exc}); pick another port or 0.") from exc
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections so their threads end too."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > self.max_recorded:  # a long demo run must not grow without bound
                del self.requests[: len(self.requests) - self.max_recorded]

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C: ``python -m llmtrace.demo.fake_llm --port 9999``."""
    parser = argparse.ArgumentParser(prog="python -m llmtrace.demo.fake_llm", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before every reply")
    parser.add_argument("--chunk-delay-ms", type=int, default=0, help="delay before every streamed chunk")
    args = parser.parse_args(argv)
    fake = FakeLLM(args.host, args.port, latency_s=args.latency_ms / 1000, chunk_delay_s=args.chunk_delay_ms / 1000)
    # Handlers first: the server answers as soon as its thread runs, so a Ctrl-C (or a test's SIGINT
    # after its first /health) can arrive before this thread reaches any try block.
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        fake.start()
    except OSError as exc:
        print(exc)
        return 1
    try:
        print(
            f"fake LLM at {fake.url}  (OpenAI base_url {fake.openai_base_url}, Anthropic base_url {fake.url})",
            flush=True,
        )
        while not stopping.wait(1.0):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Hundreds of malformed requests against both ports: clear 4xx answers, and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator

import pytest

from tests.server_process import ServerProcess, http, otlp_request, post_spans, start_server

REQUESTS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    yield process
    assert process.stop() == 0, process.output


def otlp_garbage(rnd: random.Random) -> tuple[str, bytes, dict[str, str]]:
    """(content type, body, extra headers) for one malformed OTLP request."""
    valid = otlp_request(3, seed=rnd.randrange(1000)).SerializeToString()
    choice = rnd.randrange(7)
    if choice == 0:  # random bytes
        return "application/x-protobuf", rnd.randbytes(rnd.randrange(1, 4000)), {}
    if choice == 1:  # a valid request cut short
        return "application/x-protobuf", valid[: rnd.randrange(1, len(valid) - 1)], {}
    if choice == 2:  # a valid request with flipped bytes, claiming gzip
        return "application/x-protobuf", bytes(b ^ 0x5A for b in valid), {"Content-Encoding": "gzip"}
    if choice == 3:  # JSON of the wrong shape
        shapes = [[], "x", {"resourceSpans": {}}, {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}]
        return "application/json", json.dumps(rnd.choice(shapes)).encode(), {}
    if choice == 4:  # not JSON at all
        return "application/json", rnd.randbytes(rnd.randrange(1, 500)), {}
    if choice == 5:  # wrong content type
        return rnd.choice(["text/plain", "application/xml", ""]), valid, {}
    return "application/x-protobuf", gzip.compress(valid)[:-8], {"Content-Encoding": "gzip"}  # truncated gzip


def query_garbage(rnd: random.Random) -> tuple[str, bytes, dict[str, str]]:
    """(url suffix, body, headers) for one malformed query-port request."""
    choice = rnd.randrange(5)
    if choice == 0:
        return "/", rnd.randbytes(rnd.randrange(1, 2000)), {}
    if choice == 1:
        return "/", b"SELECT " + rnd.randbytes(20), {}
    if choice == 2:
        return "/", rnd.randbytes(300), {"Content-Encoding": rnd.choice(["gzip", "zstd", "lz4", "br", "bogus"])}
    if choice == 3:
        return "/?query=INSERT+INTO+otel_traces+FORMAT+Native", rnd.randbytes(rnd.randrange(1, 3000)), {}
    return "/?query=SELECT+1&param_x=%ff&max_threads=banana", b"", {}


def test_garbage_gets_client_errors_and_stored_data_survives(server: ServerProcess) -> None:
    assert post_spans(server, otlp_request(50, service="before-fuzz").SerializeToString())[0] == 200
    rnd = random.Random(20241128)
    for _ in range(REQUESTS // 2):
        content_type, body, headers = otlp_garbage(rnd)
        status, _, reply = post_spans(server, body, content_type, headers)
        assert 400 <= status < 500, (status, reply[:200])
        suffix, body, headers = query_garbage(rnd)
        status, answer_headers, reply = http("POST", f"{server.http_url}{suffix}", body, headers)
        assert status >= 400 and "x-clickhouse-exception-code" in answer_headers, (status, reply[:200])
        assert reply.startswith(b"Code: "), reply[:200]
    assert post_spans(server, b"\0" * (17 * 1024 * 1024))[0] == 413
    count = server.client().command("SELECT count() FROM otel_traces WHERE ServiceName = 'before-fuzz'")
    assert count == 50
    assert http("GET", f"{server.http_url}/ping")[2] == b"Ok.\n"

"""With LLMTRACE_PASSWORD set, both ports require it, in the ways each protocol's clients send it."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.server_process import ServerProcess, http, otlp_request, post_spans, start_server

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("auth") / "data", {"LLMTRACE_PASSWORD": PASSWORD})
    yield process
    assert process.stop() == 0, process.output


def spans() -> bytes:
    return otlp_request(2, service="auth").SerializeToString()


def test_otlp_without_a_token_is_401(server: ServerProcess) -> None:
    status, headers, _ = post_spans(server, spans())
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")


def test_otlp_with_a_wrong_token_is_401(server: ServerProcess) -> None:
    assert post_spans(server, spans(), headers={"Authorization": "Bearer nope"})[0] == 401


def test_otlp_with_the_bearer_password_is_accepted(server: ServerProcess) -> None:
    assert post_spans(server, spans(), headers={"Authorization": f"Bearer {PASSWORD}"})[0] == 200


def test_queries_without_credentials_fail_authentication(server: ServerProcess) -> None:
    status, headers, body = http("GET", f"{server.http_url}/?query=SELECT+1")
    assert (status, headers["x-clickhouse-exception-code"]) == (403, "516") and b"Authentication failed" in body


def test_clickhouse_connect_with_the_password_works(server: ServerProcess) -> None:
    assert server.client(username="default", password=PASSWORD).command("SELECT 1") == 1


def test_clickhouse_connect_with_a_wrong_password_raises(server: ServerProcess) -> None:
    with pytest.raises(DatabaseError, match="516"):
        server.client(username="default", password="wrong")


@pytest.mark.parametrize(
    ("suffix", "headers"),
    [
        ("", {"Authorization": "Basic " + base64.b64encode(f"default:{PASSWORD}".encode()).decode()}),
        ("", {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}),
        (f"&user=default&password={PASSWORD}", {}),
    ],
    ids=["basic", "x-clickhouse-headers", "url-parameters"],
)
def test_each_clickhouse_credential_style_is_accepted(
    server: ServerProcess, suffix: str, headers: dict[str, str]
) -> None:
    assert http("GET", f"{server.http_url}/?query=SELECT+1{suffix}", headers=headers)[:3:2] == (200, b"1\n")


def test_health_checks_need_no_credentials(server: ServerProcess) -> None:
    assert http("GET", f"{server.http_url}/ping")[:3:2] == (200, b"Ok.\n")

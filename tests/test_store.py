"""Store plumbing: connection settings, the chDB client, OTLP -> rows, prices, and the CLI."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from llmtrace.cli import main as cli
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.client import StoreUnavailableError, connect
from llmtrace.store.otlp_rows import (
    OTEL_TRACES_COLUMNS,
    OtlpDecodeError,
    format_double,
    rows_from_json,
    rows_from_request,
)
from llmtrace.store.prices import read_overrides
from llmtrace.store.settings import StoreSettings, mask_url


# --- settings -----------------------------------------------------------------------------
def test_url_carries_user_password_port_and_database() -> None:
    s = StoreSettings.resolve("http://alice:s3cr%40t@db.local:9000/llm", env={})
    assert (s.scheme, s.host, s.port, s.username, s.password, s.database) == (
        "http", "db.local", 9000, "alice", "s3cr@t", "llm",
    )  # fmt: skip


def test_https_defaults_to_port_8443_and_http_to_8123() -> None:
    assert StoreSettings.resolve("https://ch.example", env={}).port == 8443
    assert StoreSettings.resolve("http://ch.example", env={}).port == 8123


def test_environment_fills_what_the_url_leaves_out() -> None:
    env = {
        "LLMTRACE_CLICKHOUSE_URL": "http://h:8123",
        "LLMTRACE_CLICKHOUSE_USER": "bob",
        "LLMTRACE_PASSWORD": "pw",
        "LLMTRACE_CLICKHOUSE_DATABASE": "obs",
    }
    s = StoreSettings.resolve(None, env=env)
    assert (s.host, s.username, s.password, s.database) == ("h", "bob", "pw", "obs")


def test_default_url_is_localhost_8123() -> None:
    s = StoreSettings.resolve(None, env={})
    assert (s.scheme, s.host, s.port, s.database) == ("http", "localhost", 8123, "default")


def test_chdb_url_names_a_data_directory_and_optional_database() -> None:
    s = StoreSettings.resolve("chdb:///var/lib/llmtrace?database=obs", env={})
    assert (s.scheme, s.path, s.database) == ("chdb", "/var/lib/llmtrace", "obs")


def test_unsupported_url_scheme_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="chdb:///path"):
        StoreSettings.resolve("ftp://x", env={})


def test_passwords_are_redacted_in_printable_urls() -> None:
    assert mask_url("http://u:secret@h:1/db") == "http://u:***@h:1/db"
    assert "secret" not in StoreSettings.resolve("http://u:secret@h:1/db", env={}).url


def test_unreachable_server_raises_an_error_naming_the_url_and_the_fix() -> None:
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1.*llmtrace server"):
        connect("http://127.0.0.1:1", connect_timeout=1)


# --- chDB client ----------------------------------------------------------------------------
def test_chdb_client_binds_typed_parameters_safely(empty_store: ChdbClient) -> None:
    params = {"s": "it's\ta \\ test", "a": ["x", "y'z"], "n": None, "d": datetime(2024, 1, 2, 3, 4, 5), "i": 7}
    row = empty_store.query(
        "SELECT {s:String}, {a:Array(String)}, {n:Nullable(UInt8)}, {d:DateTime}, {i:UInt32} + 1", parameters=params
    ).result_rows
    assert row == [("it's\ta \\ test", ["x", "y'z"], None, datetime(2024, 1, 2, 3, 4, 5), 8)]


def test_chdb_client_returns_python_values_like_clickhouse_connect(empty_store: ChdbClient) -> None:
    result = empty_store.query(
        "SELECT toUInt64(18446744073709551615) AS big, CAST(NULL, 'Nullable(Float64)') AS missing, "
        "map('k', 'v') AS m, [1, 2] AS arr, toDateTime64('2024-05-06 07:08:09.123456789', 9) AS ts"
    )
    assert result.column_names == ("big", "missing", "m", "arr", "ts")
    assert result.result_rows == [(2**64 - 1, None, {"k": "v"}, [1, 2], datetime(2024, 5, 6, 7, 8, 9, 123456))]


def test_chdb_client_query_df_returns_a_dataframe(empty_store: ChdbClient) -> None:
    df = empty_store.query_df("SELECT number AS n FROM numbers({k:UInt8})", parameters={"k": 3})
    assert list(df["n"]) == [0, 1, 2]


def test_chdb_client_errors_are_clickhouse_connect_database_errors(empty_store: ChdbClient) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError, match=r"UNKNOWN_TABLE|does not exist"):
        empty_store.query("SELECT * FROM no_such_table")


def test_chdb_client_inserts_ints_into_datetime64_as_raw_ticks(store: ChdbClient) -> None:
    ts = (time.time_ns() // 10**9) * 10**9 + 123_456_789  # recent: older rows would fall to the TTL
    columns = ["Timestamp", "TraceId", "SpanId", "Name", "Value", "StringValue", "Source", "Comment"]
    store.insert("llm_scores", [(ts, "t1", "s1", "helpful", 1.0, "", "user", "tab\t'q'")], column_names=columns)
    got = store.query("SELECT toUnixTimestamp64Nano(Timestamp), Comment FROM llm_scores").result_rows
    assert got == [(ts, "tab\t'q'")]


def test_chdb_url_connects_to_the_named_database(store_url: str, store: ChdbClient) -> None:
    client = connect(store_url)
    try:
        assert client.command("SELECT currentDatabase()") == store.database
    finally:
        client.close()


# --- OTLP -> rows ---------------------------------------------------------------------------
def sdk_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "service.version": "2.0"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("llmtrace.test", "0.1")
    with tracer.start_as_current_span("agent") as parent:
        link = Link(parent.get_span_context(), {"why": "retry"})
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, links=[link]) as span:
            span.set_attributes({"tokens": 42, "temperature": 0.7, "stream": True, "finish": ["stop", "a<b"],
                                 "ints": [1, 2], "floats": [1.0, 2.5], "name": "x"})  # fmt: skip
            span.add_event("exception", {"exception.type": "ValueError"})
            span.set_status(Status(StatusCode.ERROR, "boom"))
    return list(exporter.get_finished_spans())


def test_sdk_spans_become_collector_shaped_rows() -> None:
    spans = sdk_spans()
    rows = [dict(zip(OTEL_TRACES_COLUMNS, r, strict=True)) for r in rows_from_request(encode_spans(spans))]
    child = next(r for r in rows if r["SpanName"] == "chat gpt-4o")
    parent = next(r for r in rows if r["SpanName"] == "agent")
    sdk_child = next(s for s in spans if s.name == "chat gpt-4o")
    assert child["TraceId"] == format(sdk_child.context.trace_id, "032x")
    assert child["SpanId"] == format(sdk_child.context.span_id, "016x")
    assert (child["ParentSpanId"], parent["ParentSpanId"]) == (parent["SpanId"], "")
    assert (child["SpanKind"], parent["SpanKind"]) == ("Client", "Internal")
    assert (child["StatusCode"], child["StatusMessage"], parent["StatusCode"]) == ("Error", "boom", "Unset")
    assert (child["ServiceName"], child["ScopeName"], child["ScopeVersion"]) == ("checkout", "llmtrace.test", "0.1")
    assert child["ResourceAttributes"]["service.version"] == "2.0"
    assert child["Timestamp"] == sdk_child.start_time
    assert child["Duration"] == sdk_child.end_time - sdk_child.start_time
    assert (child["Events.Name"], child["Events.Attributes"]) == (["exception"], [{"exception.type": "ValueError"}])
    assert (child["Links.SpanId"], child["Links.Attributes"]) == ([parent["SpanId"]], [{"why": "retry"}])


def test_attribute_values_are_stored_as_the_collector_writes_them() -> None:
    rows = rows_from_request(encode_spans(sdk_spans()))
    attrs = next(dict(zip(OTEL_TRACES_COLUMNS, r, strict=True)) for r in rows if r[5] == "chat gpt-4o")
    assert attrs["SpanAttributes"] == {
        "tokens": "42",
        "temperature": "0.7",
        "stream": "true",
        "finish": '["stop","a\\u003cb"]',
        "ints": "[1,2]",
        "floats": "[1,2.5]",
        "name": "x",
    }


def test_bytes_and_kvlist_values_are_base64_and_sorted_json() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    kvlist = KeyValueList(values=[KeyValue(key="z", value=AnyValue(int_value=1)),
                                  KeyValue(key="a", value=AnyValue(bool_value=False))])  # fmt: skip
    span.attributes.extend([
        KeyValue(key="b", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(key="m", value=AnyValue(kvlist_value=kvlist)),
        KeyValue(key="nested", value=AnyValue(array_value=ArrayValue(values=[AnyValue(kvlist_value=kvlist)]))),
        KeyValue(key="empty", value=AnyValue()),
    ])  # fmt: skip
    attrs = rows_from_request(request)[0][OTEL_TRACES_COLUMNS.index("SpanAttributes")]
    assert attrs == {"b": "AP8=", "m": '{"a":false,"z":1}', "nested": '[{"a":false,"z":1}]', "empty": ""}


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.5, "1.5"), (3.0, "3"), (1e-7, "1e-7"), (1e21, "1e+21"), (1e16, "10000000000000000"), (0.00001, "0.00001"),
     (-0.0, "-0"), (0.1 + 0.2, "0.30000000000000004")],
)  # fmt: skip
def test_doubles_use_go_shortest_formatting(value: float, text: str) -> None:
    assert format_double(value) == text


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, object]:
    """The OTLP/JSON form of a request: protobuf JSON mapping, but ids as hex."""
    payload = MessageToDict(request)
    for resource in payload["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for holder in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return payload


def test_otlp_json_with_hex_ids_gives_the_same_rows_as_protobuf() -> None:
    request = encode_spans(sdk_spans())
    assert rows_from_json(otlp_json(request)) == rows_from_request(request)


@pytest.mark.parametrize(
    "payload",
    [[], {"resourceSpans": {}}, {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]},
     {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "kind": "NOPE"}]}]}]}],
)  # fmt: skip
def test_malformed_otlp_json_raises_a_decode_error(payload: object) -> None:
    with pytest.raises(OtlpDecodeError):
        rows_from_json(payload)  # type: ignore[arg-type]


def test_converted_rows_insert_and_reach_llm_calls(store: ChdbClient) -> None:
    request = encode_spans(sdk_spans())
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
    store.insert("otel_traces", rows_from_request(request), column_names=OTEL_TRACES_COLUMNS)
    assert store.query("SELECT count() FROM otel_traces").result_rows == [(2,)]
    assert store.query("SELECT SpanName FROM llm_calls").result_rows == [(span.name,)]


# --- prices ---------------------------------------------------------------------------------
def test_prices_file_entries_without_prices_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([{"model": "m", "input_mtok": 1}]))
    with pytest.raises(ValueError, match="entry 1 lacks output_mtok"):
        read_overrides(path)


# --- CLI ------------------------------------------------------------------------------------
def test_migrate_command_applies_the_schema_then_reports_up_to_date(
    empty_store: ChdbClient, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"chdb://{chdb_path}?database={empty_store.database}"
    assert cli(["migrate", "--url", url, "--no-prices"]) == 0
    assert "applied" in capsys.readouterr().out
    assert cli(["migrate", "--url", url, "--no-prices"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_migrate_command_creates_a_missing_database(chdb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = f"fresh_{time.time_ns()}"
    assert cli(["migrate", "--url", f"chdb://{chdb_path}?database={database}", "--no-prices"]) == 0
    client = ChdbClient.open(str(chdb_path), database=database)
    try:
        assert client.query("EXISTS TABLE llm_calls").result_rows == [(1,)]
    finally:
        client.command(f"DROP DATABASE {database} SYNC")
        client.close()


@pytest.mark.usefixtures("engine_overrides")  # the command installs its prices in this process (tests/conftest.py)
def test_migrate_command_loads_a_prices_file(store_url: str, store: ChdbClient, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps([{"model": "house-model", "input_mtok": 1.5, "output_mtok": 3}]))
    assert cli(["migrate", "--url", store_url, "--prices-file", str(prices)]) == 0
    got = store.query("SELECT InputPerMTok, OutputPerMTok FROM model_prices WHERE Source = 'override'")
    assert got.result_rows == [(1.5, 3.0)]


def test_sql_command_prints_an_aligned_table(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sql", "--url", store_url, "SELECT 'gpt-4o' AS model, 12 AS calls"]) == 0
    assert capsys.readouterr().out.splitlines() == ["model   calls", "------  -----", "gpt-4o     12", "(1 row)"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("csv", 'a,b\n1,"x,y"\n'), ("json", '[\n  {\n    "a": 1,\n    "b": "x,y"\n  }\n]\n')],
)
def test_sql_command_writes_csv_and_json(
    store_url: str, capsys: pytest.CaptureFixture[str], fmt: str, expected: str
) -> None:
    assert cli(["sql", "--url", store_url, "--format", fmt, "SELECT 1 AS a, 'x,y' AS b"]) == 0
    assert capsys.readouterr().out.replace("\r\n", "\n") == expected


def test_sql_command_is_read_only_unless_asked(
    store_url: str, store: ChdbClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["sql", "--url", store_url, "CREATE TABLE scratch (x UInt8) ENGINE = Memory"]) == 1
    err = capsys.readouterr().err
    assert "readonly" in err.lower() and "--write" in err
    assert store.query("EXISTS TABLE scratch").result_rows == [(0,)]
    assert cli(["sql", "--url", store_url, "--write", "CREATE TABLE scratch (x UInt8) ENGINE = Memory"]) == 0
    try:
        assert store.query("EXISTS TABLE scratch").result_rows == [(1,)]
    finally:
        store.command("DROP TABLE scratch")


def test_sql_command_reports_a_bad_query_and_exits_1(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sql", "--url", store_url, "SELECT nope"]) == 1
    assert "UNKNOWN_IDENTIFIER" in capsys.readouterr().err


def test_sql_command_names_the_url_when_the_database_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sql", "--url", "http://127.0.0.1:1", "SELECT 1"]) == 1
    assert "http://default@127.0.0.1:1/default" in capsys.readouterr().err

"""docker-compose.yml validated statically (no Docker engine here): structure, embedded configs, and
that the llmtrace commands it runs parse with our own CLI."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmtrace.cli import build_parser

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())


def service(name: str) -> dict[str, Any]:
    return COMPOSE["services"][name]  # type: ignore[no-any-return]


def llmtrace_argv(name: str) -> list[str]:
    command = service(name)["command"]
    return shlex.split(command.split("&&", 1)[1].strip().rstrip('"'))[1:]


def test_compose_has_clickhouse_collector_migrate_and_dashboard() -> None:
    assert set(COMPOSE["services"]) == {"clickhouse", "otel-collector", "migrate", "dashboard"}
    assert "4318:4318" in service("otel-collector")["ports"]
    assert "8123:8123" in service("clickhouse")["ports"]
    assert service("otel-collector")["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_collector_writes_into_tables_llmtrace_created() -> None:
    config = yaml.safe_load(COMPOSE["configs"]["collector"]["content"])
    exporter = config["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False
    assert exporter["traces_table_name"] == "otel_traces"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["clickhouse"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_clickhouse_system_logs_get_a_ttl() -> None:
    root = ET.fromstring(COMPOSE["configs"]["clickhouse-system-logs"]["content"])
    ttls = {child.tag: child.findtext("ttl") for child in root}
    assert {"query_log", "trace_log", "part_log", "metric_log"} <= set(ttls)
    assert all(ttl and "INTERVAL 7 DAY" in ttl for ttl in ttls.values())


@pytest.mark.parametrize(("name", "command"), [("migrate", "migrate"), ("dashboard", "dashboard")])
def test_the_llmtrace_commands_in_compose_parse_with_our_cli(name: str, command: str) -> None:
    argv = llmtrace_argv(name)
    assert argv[0] == command
    args = build_parser([command]).parse_args(argv)
    assert args.url == "http://clickhouse:8123"

"""docker-compose.yml validated statically (no Docker engine here): structure, embedded configs, and
that the llmtrace commands it runs parse with our own CLI."""

from __future__ import annotations

import re
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


# ---- docker-compose.cluster.yml: 2 shards x 2 replicas, Keeper, load-balancing Collector ----------

CLUSTER_COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.cluster.yml").read_text())
CLICKHOUSE_NODES = {n: s for n, s in CLUSTER_COMPOSE["services"].items() if "clickhouse-server" in s.get("image", "")}
KEEPERS = {n: s for n, s in CLUSTER_COMPOSE["services"].items() if "clickhouse-keeper" in s.get("image", "")}


def cluster_config(name: str) -> str:
    return CLUSTER_COMPOSE["configs"][name]["content"]  # type: ignore[no-any-return]


def cluster_argv(name: str) -> list[str]:
    command = CLUSTER_COMPOSE["services"][name]["command"]
    return shlex.split(command.split("&&", 1)[1].strip().rstrip('"'))[1:]


def remote_servers() -> dict[str, list[list[str]]]:
    """Cluster name -> shards -> replica hosts, as ClickHouse reads them."""
    root = ET.fromstring(cluster_config("clickhouse-cluster"))
    clusters = {}
    for cluster in root.find("remote_servers") or []:
        clusters[cluster.tag] = [[r.findtext("host") or "" for r in shard.findall("replica")]
                                 for shard in cluster.findall("shard")]  # fmt: skip
    return clusters


def cluster_ddl(cluster: str) -> dict[str, str]:
    from llmtrace.store.migrations import render, schema_files, split_statements

    statements = [s for p in schema_files() for s in split_statements(render(p.read_text(), cluster=cluster))]
    return {m.group(1): s for s in statements if (m := re.match(r"^CREATE \w+(?: \w+)? IF NOT EXISTS (\w+)", s))}


def test_cluster_compose_has_four_servers_three_keepers_collectors_migrate_and_dashboard() -> None:
    assert len(CLICKHOUSE_NODES) == 4 and len(KEEPERS) == 3
    assert {"migrate", "dashboard", "otel-collector"} <= set(CLUSTER_COMPOSE["services"])
    assert "4318:4318" in CLUSTER_COMPOSE["services"]["otel-collector"]["ports"]
    assert "8501:8501" in CLUSTER_COMPOSE["services"]["dashboard"]["ports"]
    # The single-node file is untouched by the cluster one: same image versions for both.
    assert {s["image"] for s in CLICKHOUSE_NODES.values()} == {service("clickhouse")["image"]}
    assert CLUSTER_COMPOSE["services"]["otel-collector"]["image"] == service("otel-collector")["image"]


def test_remote_servers_are_two_shards_of_two_replicas_that_are_the_compose_services() -> None:
    (name, shards), *others = remote_servers().items()
    assert name == "llmtrace"
    assert not others
    assert [len(replicas) for replicas in shards] == [2, 2]
    for number, replicas in enumerate(shards, start=1):
        for host in replicas:
            env = CLICKHOUSE_NODES[host]["environment"]
            assert CLICKHOUSE_NODES[host]["hostname"] == host
            assert env["SHARD"] == str(number), f"{host} is in shard {number} of remote_servers"
    replica_names = [s["environment"]["REPLICA"] for s in CLICKHOUSE_NODES.values()]
    assert len(set(replica_names)) == 4, "replica names must be unique across the cluster (shared Keeper paths)"
    root = ET.fromstring(cluster_config("clickhouse-cluster"))
    servers = root.find("remote_servers")
    assert servers is not None
    assert all(s.findtext("internal_replication") == "true" for s in servers.iter("shard"))
    assert {p.text for p in servers.iter("port")} == {"9000"}


def test_macros_define_what_the_rendered_engines_use() -> None:
    root = ET.fromstring(cluster_config("clickhouse-cluster"))
    macros = root.find("macros")
    assert macros is not None
    assert macros.find("shard").get("from_env") == "SHARD"  # type: ignore[union-attr]
    assert macros.find("replica").get("from_env") == "REPLICA"  # type: ignore[union-attr]
    (name,) = remote_servers()
    assert macros.findtext("cluster") == name
    # Default Replicated path (/clickhouse/tables/{uuid}/{shard}, {replica}) and the all-nodes path.
    used = {m for s in cluster_ddl(name).values() for m in re.findall(r"\{(\w+)\}", s)}
    assert used <= {"uuid", "shard", "replica"}


def test_keeper_ensemble_matches_the_servers_zookeeper_section() -> None:
    keeper = ET.fromstring(cluster_config("keeper")).find("keeper_server")
    assert keeper is not None
    raft = {s.findtext("id"): s.findtext("hostname") for s in keeper.iter("server")}
    assert raft == {s["environment"]["KEEPER_ID"]: n for n, s in KEEPERS.items()}
    assert keeper.find("server_id").get("from_env") == "KEEPER_ID"  # type: ignore[union-attr]
    zookeeper = ET.fromstring(cluster_config("clickhouse-cluster")).find("zookeeper")
    assert zookeeper is not None
    nodes = {(n.findtext("host"), n.findtext("port")) for n in zookeeper.findall("node")}
    assert nodes == {(host, keeper.findtext("tcp_port")) for host in KEEPERS}


def test_migrate_creates_the_cluster_the_servers_know() -> None:
    argv = cluster_argv("migrate")
    args = build_parser(["migrate"]).parse_args(argv)
    (name,) = remote_servers()
    assert args.cluster == name
    assert args.url.split("//")[1].split(":")[0] in CLICKHOUSE_NODES
    ddl = cluster_ddl(args.cluster)
    assert f"Distributed('{name}', 'default', 'otel_traces_local'" in ddl["otel_traces"]
    depends = CLUSTER_COMPOSE["services"]["migrate"]["depends_on"]
    assert set(depends) == set(CLICKHOUSE_NODES), "ON CLUSTER DDL waits for every node"


def test_dashboard_reads_a_cluster_node_with_its_cli() -> None:
    args = build_parser(["dashboard"]).parse_args(cluster_argv("dashboard"))
    assert args.url.split("//")[1].split(":")[0] in CLICKHOUSE_NODES


def test_front_collector_routes_by_trace_id_to_the_backend_collectors() -> None:
    config = yaml.safe_load(cluster_config("collector-lb"))
    lb = config["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID"
    assert "otlp" in lb["protocol"]
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["loadbalancing"]
    services = CLUSTER_COMPOSE["services"]
    for hostname in lb["resolver"]["static"]["hostnames"]:
        host, port = hostname.split(":")
        backend = services[host]
        (config_ref,) = backend["configs"]
        backend_config = yaml.safe_load(cluster_config(config_ref["source"]))
        assert backend_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(f":{port}")


def test_backend_collectors_write_the_distributed_otel_traces_the_migration_creates() -> None:
    (name,) = remote_servers()
    ddl = cluster_ddl(name)
    backends = [n for n in CLUSTER_COMPOSE["configs"] if n.startswith("collector-clickhouse")]
    assert len(backends) == 2
    hosts = set()
    for config_name in backends:
        exporter = yaml.safe_load(cluster_config(config_name))["exporters"]["clickhouse"]
        assert exporter["create_schema"] is False
        table = exporter["traces_table_name"]
        assert "ENGINE = Distributed" in ddl[table], f"{table} must be the Distributed table"
        assert exporter["database"] == "default"
        host, port = exporter["endpoint"].split("//")[1].split("?")[0].split(":")
        assert host in CLICKHOUSE_NODES and port == "9000"
        hosts.add(CLICKHOUSE_NODES[host]["environment"]["SHARD"])
    assert hosts == {"1", "2"}, "one backend per shard spreads the Distributed inserts"


def test_cluster_profile_lets_joins_over_two_distributed_tables_run() -> None:
    """traces.trace_spans joins otel_traces with a subquery on llm_calls: both Distributed, which
    ClickHouse refuses under the default distributed_product_mode ('deny')."""
    root = ET.fromstring(cluster_config("clickhouse-profile"))
    assert root.findtext("profiles/default/distributed_product_mode") == "global"
    assert root.findtext("profiles/default/distributed_foreground_insert") == "1"
    for node in CLICKHOUSE_NODES.values():
        targets = {c["source"]: c["target"] for c in node["configs"]}
        assert targets["clickhouse-profile"].startswith("/etc/clickhouse-server/users.d/")
        assert targets["clickhouse-cluster"].startswith("/etc/clickhouse-server/config.d/")

"""`llmtrace migrate --cluster`'s Distributed layer, checked without a cluster.

What is proven here: the rendered cluster DDL has, for every table, its Replicated ``_local`` and
its Distributed twin (or one Keeper path for the tables every node holds); views read and write
the locals; every statement parses with ClickHouse's own parser (chDB); and every dashboard, drift
and anomaly query gives the single-node answer when its table names resolve to the union of two
shards whose views ran per shard (stand-ins: the cluster DDL with ``Merge`` tables in place of
``Distributed``, see ``standin``). What is not: chDB has no clusters, Keeper or ``Distributed``
engine, so replication, the Distributed insert path and distributed query planning (two-stage
aggregation, ``distributed_product_mode``) are only checked as configuration (test_docker_compose).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llmtrace.analytics import anomalies, cost, drift, latency, overview, traces
from llmtrace.analytics.filters import Filter
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import (
    ALL_NODES,
    SHARDING_KEYS,
    MigrationError,
    render,
    schema_files,
    split_statements,
)
from tests.cluster_standins import CLUSTER, NODES, cluster_ddl, created, shard_standins

# The latest 17:12 UTC: the week's detector answer was empty with an END of 18:12 (the demo's daily
# curve), so the hour is pinned, as the other tests built on "now" were.
_NOW = datetime.now(timezone.utc)
END = _NOW.replace(hour=17, minute=12, second=5, microsecond=0) - timedelta(days=int(_NOW.hour < 18))
DAY = Filter.last(timedelta(days=1), now=END)
WEEK = Filter.last(timedelta(days=7), now=END)

_ENGINE = re.compile(r"ENGINE\s*=\s*(\w+)(?:\((.*?)\))?\s*(?:$|\n)", re.S)


def single_ddl() -> list[str]:
    return [s for p in schema_files() for s in split_statements(render(p.read_text()))]


def engine(statement: str) -> tuple[str, str]:
    m = _ENGINE.search(statement)
    assert m, statement[:80]
    return m.group(1), m.group(2) or ""


def merge_tree_tables(statements: list[str]) -> set[str]:
    return {name for name, s in created(statements).items() if s.startswith("CREATE TABLE")
            and engine(s)[0].endswith("MergeTree")}  # fmt: skip


# ---- structure of the rendered DDL -------------------------------------------------------------


def test_every_merge_tree_table_is_either_sharded_or_on_every_node() -> None:
    """A new table file must choose: a key in SHARDING_KEYS, or ALL_NODES (else it gets neither)."""
    tables = merge_tree_tables(single_ddl())
    assert tables == set(SHARDING_KEYS) | ALL_NODES
    assert not set(SHARDING_KEYS) & ALL_NODES


@pytest.mark.parametrize("table", sorted(SHARDING_KEYS))
def test_a_sharded_table_is_a_replicated_local_under_a_distributed_table_of_its_name(table: str) -> None:
    ddl = created(cluster_ddl("llm"))
    local_engine, _ = engine(ddl[f"{table}_local"])
    assert local_engine.startswith("Replicated") and local_engine.endswith("MergeTree")
    assert engine(created(single_ddl())[table])[0] == local_engine.removeprefix("Replicated")
    distributed = ddl[table]
    assert f" AS {table}_local\n" in distributed and "ON CLUSTER `llmtrace`" in distributed
    assert engine(distributed) == ("Distributed", f"'{CLUSTER}', 'llm', '{table}_local', {SHARDING_KEYS[table]}")
    assert list(ddl).index(f"{table}_local") < list(ddl).index(table)


def test_a_trace_and_everything_derived_from_it_stay_on_one_shard() -> None:
    for table in ("otel_traces", "otel_traces_trace_id_ts", "llm_calls", "llm_scores"):
        assert SHARDING_KEYS[table] == "cityHash64(TraceId)", table


@pytest.mark.parametrize("table", sorted(SHARDING_KEYS))
def test_sharding_keys_use_columns_of_their_table(table: str) -> None:
    statement = created(single_ddl())[table]
    for column in re.findall(r"\b([A-Z]\w+)\b", SHARDING_KEYS[table].removeprefix("cityHash64")):
        assert re.search(rf"^\s+{column} ", statement, re.M), f"{table} has no column {column}"


@pytest.mark.parametrize("table", sorted(ALL_NODES))
def test_reference_tables_are_one_replicated_table_across_every_node(table: str) -> None:
    name, args = engine(created(cluster_ddl())[table])
    assert name.startswith("Replicated")
    path, replica = [a.strip().strip("'") for a in args.split(",")[:2]]
    assert "{shard}" not in path and "{uuid}" in path, "one Keeper path for all shards"
    assert "{shard}" in replica and "{replica}" in replica, "replica names unique across the cluster"
    assert f"{table}_local" not in created(cluster_ddl())


def test_materialized_views_read_and_write_the_shard_locals() -> None:
    views = {n: s for n, s in created(cluster_ddl()).items() if s.startswith("CREATE MATERIALIZED VIEW")}
    assert set(views) == {n for n, s in created(single_ddl()).items() if s.startswith("CREATE MATERIALIZED VIEW")}
    for name, statement in views.items():
        target = re.search(r"^TO (\w+)", statement, re.M)
        assert target and target.group(1).endswith("_local"), name
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", statement)
        assert sources and all(s.endswith("_local") and s.removesuffix("_local") in SHARDING_KEYS for s in sources), (
            f"{name} reads {sources}"
        )


def test_a_views_new_query_reads_the_shard_locals_too() -> None:
    """026 and 030 replace a view's SELECT with ALTER ... MODIFY QUERY (no gap, unlike a drop and create)."""
    modified = [s for s in cluster_ddl() if re.match(r"ALTER TABLE \w+_mv ON CLUSTER `\w+`\s+MODIFY QUERY", s)]
    assert {re.match(r"ALTER TABLE (\w+)", s).group(1) for s in modified} >= {"llm_calls_mv", "otel_traces_content_mv"}
    for statement in modified:
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", statement)
        assert sources and all(s.endswith("_local") for s in sources), statement[:60]


def test_plain_views_read_the_distributed_names() -> None:
    views = {n: s for n, s in created(cluster_ddl()).items() if s.startswith("CREATE VIEW")}
    assert "llm_calls_priced" not in views  # dropped by 015: one cost engine, llmtrace.pricing
    assert all("_local" not in s for s in views.values())


def test_every_cluster_statement_is_on_cluster_and_the_single_node_one_is_not() -> None:
    """DDL goes to every node; a one-time backfill (INSERT ... SELECT) runs once, through the Distributed names."""
    ddl = [s for s in cluster_ddl() if not s.startswith("INSERT INTO")]
    assert ddl and all("ON CLUSTER `llmtrace`" in s for s in ddl)
    assert all("_local" not in s for s in cluster_ddl() if s.startswith("INSERT INTO"))
    assert not any("ON CLUSTER" in s or "Distributed" in s or "_local" in s for s in single_ddl())


def test_a_new_table_without_a_cluster_layout_is_refused_in_cluster_mode_only() -> None:
    new = "CREATE TABLE IF NOT EXISTS new_table {on_cluster} (a UInt8) ENGINE = {replicated}MergeTree ORDER BY a;"
    with pytest.raises(MigrationError, match="new_table has no cluster layout"):
        render(new, cluster=CLUSTER)
    assert render(new).startswith("CREATE TABLE IF NOT EXISTS new_table  (a UInt8) ENGINE = MergeTree")


def test_a_later_alter_targets_the_locals_and_column_changes_reach_both() -> None:
    ttl = render("ALTER TABLE llm_calls {on_cluster} MODIFY TTL toDateTime(Timestamp) + toIntervalDay(9);",
                 cluster=CLUSTER)  # fmt: skip
    assert split_statements(ttl) == [
        "ALTER TABLE llm_calls_local ON CLUSTER `llmtrace` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(9)"
    ]
    add = split_statements(render("ALTER TABLE otel_traces {on_cluster} ADD COLUMN IF NOT EXISTS X String;",
                                  cluster=CLUSTER))  # fmt: skip
    assert add == [
        "ALTER TABLE otel_traces_local ON CLUSTER `llmtrace` ADD COLUMN IF NOT EXISTS X String",
        "ALTER TABLE otel_traces ON CLUSTER `llmtrace` ADD COLUMN IF NOT EXISTS X String",
    ]
    other = "ALTER TABLE model_prices {on_cluster} MODIFY SETTING index_granularity = 8192"
    assert render(other, cluster=CLUSTER) == other.replace("{on_cluster}", "ON CLUSTER `llmtrace`")


# ---- chDB: parse, then run the analytics over two shards ---------------------------------------


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cluster")
    anchor = ChdbClient.open(str(path))
    try:
        yield path
    finally:
        anchor.close()


@pytest.fixture(scope="module")
def stores(chdb_dir: Path) -> Iterator[dict[str, ChdbClient]]:
    """``single``: the single-node schema with demo history and prices; ``node_a``/``node_b``: the
    cluster DDL per shard, fed the same spans split by the Distributed key (cityHash64(TraceId) % 2)."""
    with shard_standins(chdb_dir, 4000, 14, int(END.timestamp() * 1e9), model_prices=True) as clients:
        yield clients


def test_every_cluster_statement_parses_with_clickhouse(stores: dict[str, ChdbClient]) -> None:
    client = stores["single"]
    for statement in cluster_ddl():
        formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert "ON CLUSTER" in formatted or formatted.startswith("INSERT INTO")


def test_the_standins_are_what_the_cluster_ddl_makes_per_node(stores: dict[str, ChdbClient]) -> None:
    rows = (
        stores[NODES[0]].query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
    )
    engines = dict(rows)
    for table in SHARDING_KEYS:
        assert engines[table] == "Merge" and engines[f"{table}_local"].endswith("MergeTree"), table
    assert set(engines) == set(created(cluster_ddl()))


def test_each_shard_holds_part_of_the_data_and_its_own_rollup_states(stores: dict[str, ChdbClient]) -> None:
    total = stores["single"].query("SELECT count() FROM llm_calls").result_rows[0][0]
    parts = [stores[n].query("SELECT count() FROM llm_calls_local").result_rows[0][0] for n in NODES]
    assert all(p > 0 for p in parts) and sum(parts) == total
    for node in NODES:
        assert stores[node].query("SELECT count() FROM llm_calls_1m_local").result_rows[0][0] > 0
        # no trace is split across shards
        assert stores[node].query(
            f"SELECT count() FROM llm_calls_local WHERE cityHash64(TraceId) % 2 != {NODES.index(node)}"
        ).result_rows == [(0,)]
    # the same minute and group has a partial state on both shards: reads must merge them
    overlap = (
        stores[NODES[0]]
        .query(
            f"SELECT count() FROM (SELECT Bucket, ServiceName, RequestModel FROM {NODES[0]}.llm_calls_1m_local "
            f"INTERSECT SELECT Bucket, ServiceName, RequestModel FROM {NODES[1]}.llm_calls_1m_local)"
        )
        .result_rows[0][0]
    )
    assert overlap > 0


def same(single: pd.DataFrame, cluster: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Equal frames, up to row order and float noise (sums in another order)."""
    assert list(single.columns) == list(cluster.columns)
    assert len(single) == len(cluster)
    if single.empty:
        return
    keys = [c for c in single.columns if not pd.api.types.is_float_dtype(single[c])]
    sortable = [c for c in keys if single[c].map(lambda v: isinstance(v, (str, int, pd.Timestamp))).all()]
    if sortable:
        single = single.sort_values(sortable, kind="stable").reset_index(drop=True)
        cluster = cluster.sort_values(sortable, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(single, cluster, check_dtype=False, check_exact=False, rtol=rtol)


# Percentiles: exact-quantile functions give the same answer; t-digest states merged from two
# shards are a different (equally valid) approximation, so those columns get a tolerance.
_DIGEST = 0.1

QUERIES: dict[str, Any] = {
    "overview.summary day (raw)": lambda c: overview.summary(c, DAY),
    "overview.summary week (rollup)": lambda c: overview.summary(c, WEEK),
    "overview.summary_with_previous": lambda c: overview.summary_with_previous(c, WEEK),
    "overview.timeseries": lambda c: overview.timeseries(c, WEEK),
    "overview.breakdown model": lambda c: overview.breakdown(c, WEEK, "model"),
    "overview.store_counts": lambda c: pd.DataFrame([overview.store_counts(c)]),
    "traces.list_traces": lambda c: traces.list_traces(c, DAY),
    "traces.list_traces text (3-gram index)": lambda c: traces.list_traces(c, DAY, text="REQUEST 1"),
    # Two characters: the index's dictionary on one node; the shards' Merge table has none (full read).
    "traces.list_traces text without 3-grams": lambda c: traces.list_traces(c, DAY, text="77", limit=5_000),
    "cost.totals": lambda c: cost.totals(c, WEEK),
    "cost.spend_by model": lambda c: cost.spend_by(c, WEEK, "model"),
    "cost.spend_per_day": lambda c: cost.spend_per_day(c, WEEK),
    "cost.most_expensive_calls": lambda c: cost.most_expensive_calls(c, WEEK),
    "cost.unpriced": lambda c: cost.unpriced(c, WEEK),
    "latency.by_model": lambda c: latency.by_model(c, DAY),
    "latency.tokens_per_second": lambda c: latency.tokens_per_second(c, DAY),
    "latency.histogram": lambda c: latency.histogram(c, DAY),
    "latency.over_time": lambda c: latency.over_time(c, WEEK),
    "latency.slowest_calls": lambda c: latency.slowest_calls(c, DAY),
    "drift.compare": lambda c: drift.compare(c, drift.Comparison.of_filter(DAY)).to_frame(),
    "drift.compare by model": lambda c: drift.compare(c, drift.Comparison.of_filter(DAY), by="model").to_frame(),
    "drift.distribution": lambda c: drift.distribution(c, drift.Comparison.of_filter(DAY), "latency_ms"),
    "anomalies.detect week (episodes)": lambda c: _anomalies(c, WEEK),
    "anomalies.detect 3 days (calls too)": lambda c: _anomalies(c, Filter.last(timedelta(days=3), now=END)),
}


def _anomalies(client: Any, f: Filter) -> pd.DataFrame:
    return pd.DataFrame([a.__dict__ for a in anomalies.detect(client, f, now=END).anomalies])


@pytest.mark.parametrize("name", list(QUERIES))
def test_analytics_give_the_single_node_answer_over_two_shards(stores: dict[str, ChdbClient], name: str) -> None:
    single = QUERIES[name](stores["single"])
    cluster = QUERIES[name](stores[NODES[0]])
    assert not single.empty, "the demo history should give every query rows to compare"
    same(single, cluster, rtol=_DIGEST if name.startswith(("overview", "latency", "drift")) else 1e-9)


def test_a_trace_reads_whole_from_the_shard_it_lives_on(stores: dict[str, ChdbClient]) -> None:
    trace_id = stores["single"].query("SELECT any(TraceId) FROM llm_calls").result_rows[0][0]
    same(traces.trace_spans(stores["single"], trace_id), traces.trace_spans(stores[NODES[1]], trace_id))


def test_a_text_without_3_grams_uses_the_index_dictionary_on_one_node_and_reads_content_on_shards(
    stores: dict[str, ChdbClient],
) -> None:
    single = traces._dictionary_tokens(stores["single"], "77")
    assert single is not None and len(single) == 1 and len(single[0]) > 0
    assert traces._dictionary_tokens(stores[NODES[0]], "77") is None  # no dictionary behind a Distributed table
